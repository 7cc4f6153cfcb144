"""Serial readers on real pseudo-terminals with real pyserial: frames in, device state out."""

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from pvmonit_exporter.config import DeviceConfig
from pvmonit_exporter.sources.serialport import Discovery, PortClaims, SerialReader, describe_error, open_port
from pvmonit_exporter.state import State
from pvmonit_exporter.vedirect.framing import encode_block
from tests.forwarder.fake_emoncms import ManualClock
from tests.helpers import FakeDevicePort, wait_for
from tests.vedirect_samples import MPPT


@pytest.fixture
def port(tmp_path: Path) -> Iterator[FakeDevicePort]:
    fake = FakeDevicePort(tmp_path / "usb-VictronEnergy_BV_VE_Direct_cable_TEST-if00-port0")
    yield fake
    fake.close()


def _reader(state: State, device: DeviceConfig, patterns: tuple[str, ...] = ()) -> SerialReader:
    reader = SerialReader(device, state, Discovery(PortClaims(), patterns, identify_seconds=1.5))
    reader.start()
    return reader


def _fields(state: State, name: str = "mppt") -> dict[str, str]:
    return dict(next(v for v in state.devices() if v.name == name).fields)


def test_frames_reach_the_state(port: FakeDevicePort) -> None:
    device = DeviceConfig("mppt", port.path, stale_timeout=3)
    state = State([device])
    reader = _reader(state, device)
    try:
        wait_for(lambda: next(iter(state.devices())).connected)
        port.write(encode_block(MPPT))
        assert wait_for(lambda: _fields(state)) == MPPT
        view = state.devices()[0]
        assert view.up
        assert view.identity.product == "BlueSolar MPPT 100/30 rev2"
        assert view.stats.blocks_valid == 1
    finally:
        reader.stop()


def test_corrupted_frames_never_change_a_value(port: FakeDevicePort) -> None:
    device = DeviceConfig("mppt", port.path)
    state = State([device])
    reader = _reader(state, device)
    try:
        wait_for(lambda: state.devices()[0].connected)
        port.write(encode_block(MPPT))
        wait_for(lambda: _fields(state))
        bad = bytearray(encode_block(dict(MPPT, V="11111", CS="5")))
        bad[20] ^= 0x04  # one flipped bit: the checksum fails
        port.write(bytes(bad))
        port.write(encode_block(dict(MPPT, PPV="113")))  # a good block after it proves the bad one was read
        wait_for(lambda: _fields(state).get("PPV") == "113")
        fields = _fields(state)
        assert fields["V"] == "26180"
        assert fields["CS"] == "3"
        assert state.devices()[0].stats.checksum_errors == 1
    finally:
        reader.stop()


def test_unplug_goes_down_after_timeout_and_replug_comes_back(port: FakeDevicePort) -> None:
    device = DeviceConfig("mppt", port.path, stale_timeout=1.0)
    state = State([device])
    reader = _reader(state, device)
    try:
        wait_for(lambda: state.devices()[0].connected)
        port.write(encode_block(MPPT))
        wait_for(lambda: state.devices()[0].up)
        port.unplug()
        wait_for(lambda: not state.devices()[0].connected)
        view = wait_for(lambda: None if (v := state.devices()[0]).up else v)
        assert view.fields == {}
        assert view.error is not None
        port.replug()
        wait_for(lambda: state.devices()[0].connected, timeout=15)
        port.write(encode_block(dict(MPPT, V="27000")))
        assert wait_for(lambda: _fields(state).get("V")) == "27000"
        assert state.devices()[0].up
    finally:
        reader.stop()


def test_port_that_does_not_exist_yet(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    link = tmp_path / "later"
    device = DeviceConfig("mppt", str(link))
    state = State([device])
    caplog.set_level(logging.INFO, logger="pvmonit_exporter.sources.serialport")
    attempts: list[str] = []

    def counting_open(path: str) -> serial.Serial:
        attempts.append(path)
        return open_port(path)

    reader = SerialReader(device, state, Discovery(PortClaims(), ()), opener=counting_open)
    reader.start()
    try:
        view = wait_for(lambda: v if (v := state.devices()[0]).error else None)
        assert "no such port" in (view.error or "")
        wait_for(lambda: len(attempts) >= 3)  # several retries happen meanwhile...
        missing = [r for r in caplog.records if "no such port" in r.getMessage()]
        assert len(missing) == 1  # ...but the state change is logged once
        port = FakeDevicePort(link)
        try:
            port.write(b"")
            wait_for(lambda: state.devices()[0].connected, timeout=15)
            port.write(encode_block(MPPT))
            wait_for(lambda: _fields(state))
        finally:
            port.close()
    finally:
        reader.stop()


def test_silent_device_is_down_but_connected(port: FakeDevicePort) -> None:
    """A device that stops sending is down once its stale timeout has passed, while its port stays open: `up`
    is about the data, `connected` about the cable. A manual clock: no waiting, and the boundary exact."""
    clock = ManualClock(1_700_000_000.0)
    device = DeviceConfig("mppt", port.path, stale_timeout=5)
    state = State([device], clock=clock)
    reader = _reader(state, device)
    try:
        wait_for(lambda: state.devices()[0].connected)
        port.write(encode_block(MPPT))
        wait_for(lambda: state.devices()[0].up)
        clock.advance(5.0)
        assert state.devices()[0].up  # at the timeout, still up
        clock.advance(0.1)
        view = state.devices()[0]
        assert view.connected
        assert not view.up
        assert view.fields == {}
        assert view.last_block_time == 1_700_000_000.0
    finally:
        reader.stop()


def test_garbage_at_the_wrong_speed_yields_nothing_and_is_reported(port: FakeDevicePort) -> None:
    device = DeviceConfig("mppt", port.path, stale_timeout=0.2)
    state = State([device])
    reader = _reader(state, device)
    try:
        wait_for(lambda: state.devices()[0].connected)
        # What 19200 baud frames look like to a port set to another speed: bytes with the high bit set, no CR LF.
        garbage = bytes((b * 37 + 0x80) % 256 for b in range(4000)).replace(b"\r", b"").replace(b"\n", b"")
        for _ in range(3):
            port.write(garbage[:1000])
            time.sleep(0.15)
        view = wait_for(lambda: v if (v := state.devices()[0]).error else None)
        assert "no valid block" in (view.error or "")
        assert view.fields == {}
        assert view.stats.blocks_valid == 0
        assert view.stats.bytes_discarded > 0
    finally:
        reader.stop()


def test_auto_finds_the_device_by_serial_number(tmp_path: Path) -> None:
    other = FakeDevicePort(tmp_path / "usb-VictronEnergy_A")
    wanted = FakeDevicePort(tmp_path / "usb-VictronEnergy_B")
    device = DeviceConfig("mppt", "auto", serial_number="HQ2222ZZZZZ")
    state = State([device])
    reader = _reader(state, device, (str(tmp_path / "usb-VictronEnergy*"),))
    try:
        deadline = time.monotonic() + 20
        while not state.devices()[0].up and time.monotonic() < deadline:
            other.write(encode_block(dict(MPPT, **{"SER#": "HQ1111AAAAA", "V": "11111"})))
            wanted.write(encode_block(dict(MPPT, **{"SER#": "HQ2222ZZZZZ", "V": "22222"})))
            time.sleep(0.2)
        view = state.devices()[0]
        assert view.port == str(tmp_path / "usb-VictronEnergy_B")
        assert view.fields["V"] == "22222"
    finally:
        reader.stop()
        other.close()
        wanted.close()


def test_a_failing_reader_never_blocks_another(port: FakeDevicePort, tmp_path: Path) -> None:
    good = DeviceConfig("mppt", port.path)
    broken = DeviceConfig("gone", str(tmp_path / "missing"))
    state = State([good, broken])
    readers = [_reader(state, broken), _reader(state, good)]
    try:
        wait_for(lambda: state.devices()[0].connected)
        port.write(encode_block(MPPT))
        wait_for(lambda: _fields(state))
        gone = state.devices()[1]
        assert not gone.connected
        assert not gone.up
    finally:
        for reader in readers:
            reader.stop()


@pytest.mark.parametrize(
    ("errno", "words"),
    [(2, "no such port"), (13, "permission denied"), (11, "is in use by another program"),
     (16, "is in use by another program"), (25, "not a serial port")],
)
def test_error_words(errno: int, words: str) -> None:
    assert words in describe_error("/dev/ttyUSB9", OSError(errno, os.strerror(errno)))


def test_auto_without_serial_never_takes_a_port_another_entry_wants(tmp_path: Path) -> None:
    """The README's example: `Bmv: auto` beside `Onduleur: auto, serial_number: …`."""
    inverter = FakeDevicePort(tmp_path / "usb-VictronEnergy_A")
    bmv = FakeDevicePort(tmp_path / "usb-VictronEnergy_B")
    devices = [DeviceConfig("Bmv", "auto"), DeviceConfig("Onduleur", "auto", serial_number="HQ1328Y6TF6")]
    state = State(devices)
    discovery = Discovery(PortClaims(), (str(tmp_path / "usb-VictronEnergy*"),), identify_seconds=1.5,
                          wanted_serials=["HQ1328Y6TF6"])
    readers = [SerialReader(device, state, discovery) for device in devices]
    for reader in readers:
        reader.start()
    try:
        deadline = time.monotonic() + 30
        while not all(v.up for v in state.devices()) and time.monotonic() < deadline:
            inverter.write(encode_block({"PID": "0xA202", "SER#": "HQ1328Y6TF6", "V": "25000"}))
            bmv.write(encode_block({"PID": "0x204", "V": "12500", "SOC": "800"}))
            time.sleep(0.2)
        views = {v.name: v for v in state.devices()}
        assert views["Bmv"].port == str(tmp_path / "usb-VictronEnergy_B")
        assert views["Onduleur"].port == str(tmp_path / "usb-VictronEnergy_A")
        assert views["Bmv"].fields["SOC"] == "800"
    finally:
        for reader in readers:
            reader.stop()
        inverter.close()
        bmv.close()


def test_discovery_never_opens_a_reserved_port(tmp_path: Path) -> None:
    """A serial probe's port is reserved: a scan must not open it (it would set 19200 baud under the probe)."""
    meter = FakeDevicePort(tmp_path / "ttyUSB3")
    claims = PortClaims()
    claims.reserve(meter.path)
    opened: list[str] = []

    def opener(path: str) -> serial.Serial:
        opened.append(path)
        return open_port(path)

    try:
        discovery = Discovery(claims, (str(tmp_path / "ttyUSB*"),), opener=opener, identify_seconds=0.5)
        assert discovery.find(DeviceConfig("any", "auto"), threading.Event()) is None
        assert opened == []
    finally:
        meter.close()


def test_stop_interrupts_a_scan(tmp_path: Path) -> None:
    silent = [FakeDevicePort(tmp_path / f"ttyUSB{n}") for n in range(4)]
    devices = [DeviceConfig(f"auto{n}", "auto") for n in range(3)]
    state = State(devices)
    discovery = Discovery(PortClaims(), (str(tmp_path / "ttyUSB*"),), identify_seconds=3.0)
    readers = [SerialReader(device, state, discovery) for device in devices]
    try:
        for reader in readers:
            reader.start()
        time.sleep(0.5)  # every reader is scanning, or waiting for the scan
        for reader in readers:
            reader.request_stop()
        for reader in readers:
            reader.stop(timeout=10)
        assert not any(reader.running for reader in readers)
    finally:
        for port in silent:
            port.close()


class _RecordingState(State):
    """The real state, remembering every connection change (connected, error) in order."""

    def __init__(self, devices: list[DeviceConfig]) -> None:
        super().__init__(devices)
        self.changes: list[tuple[bool, str | None]] = []

    def set_connection(self, device: str, port: str | None, *, connected: bool, error: str | None) -> None:
        self.changes.append((connected, error))
        super().set_connection(device, port, connected=connected, error=error)


def test_an_unexpected_error_marks_the_device_down_in_one_line_and_the_reader_recovers(
        port: FakeDevicePort, caplog: pytest.LogCaptureFixture) -> None:
    """A bug met while reading (here the decoder raising once) must not leave the device "connected" nor write
    a traceback at every occurrence: one line, the device down, then reading again."""
    caplog.set_level(logging.INFO, logger="pvmonit_exporter.sources.serialport")
    device = DeviceConfig("mppt", port.path, stale_timeout=3)
    state = _RecordingState([device])
    reader = SerialReader(device, state, Discovery(PortClaims(), (), identify_seconds=1.5))
    real_feed = reader.decoder.feed
    failures = [RuntimeError("a bug in the decoder")]

    def feed_failing_once(data: bytes) -> list[dict[str, str]]:
        if failures:
            raise failures.pop()
        return real_feed(data)

    reader.decoder.feed = feed_failing_once  # type: ignore[method-assign]
    reader.start()
    try:
        wait_for(lambda: state.devices()[0].connected)
        port.write(encode_block(MPPT))
        wait_for(lambda: not failures)
        wait_for(lambda: any(not connected and error and "unexpected error" in error
                             for connected, error in state.changes))
        def block_got_through() -> bool:
            # Opening a port flushes what waited in it: a block is written until one gets through.
            port.write(encode_block(MPPT))
            return state.devices()[0].connected and _fields(state) == MPPT

        wait_for(block_got_through, interval=0.3)
    finally:
        reader.stop()
    unexpected = [r for r in caplog.records if "unexpected error" in r.getMessage()]
    assert len(unexpected) == 1
    assert unexpected[0].levelno == logging.ERROR
    assert "a bug in the decoder" in unexpected[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info]


def test_a_pty_whose_master_closes_takes_the_device_down_at_once(port: FakeDevicePort) -> None:
    """The other end of the terminal goes away (a USB cable pulled): down while its last block is fresh."""
    now = 1_000_000.0
    device = DeviceConfig("mppt", port.path, stale_timeout=60)
    state = State([device], clock=lambda: now)  # standing still: a block's age stays 0
    reader = _reader(state, device)
    try:
        wait_for(lambda: state.devices()[0].connected)
        port.write(encode_block(MPPT))
        wait_for(lambda: state.devices()[0].up)
        os.close(port.master)
        port.master = -1
        view = wait_for(lambda: None if (v := state.devices()[0]).connected else v)
        assert view.age_seconds == 0.0
        assert not view.up
        assert view.fields == {}
    finally:
        reader.stop()


@pytest.mark.parametrize(("connected", "up"), [(True, True), (False, False)])
def test_the_hex_pause_is_excused_only_while_the_link_is_open(connected: bool, up: bool) -> None:
    """The device answered a HEX request and holds its text back, longer than its stale timeout."""
    from pvmonit_exporter.state import HEX_TEXT_PAUSE
    from pvmonit_exporter.vedirect import hex as vehex
    from pvmonit_exporter.vedirect.framing import DecoderStats
    from pvmonit_exporter.vedirect.hex_session import PING, Outcome, Result

    now = [1_000_000.0]
    device = DeviceConfig("mppt", "/dev/ttyUSB0", stale_timeout=5)
    state = State([device], clock=lambda: now[0])
    state.set_connection("mppt", "/dev/ttyUSB0", connected=True, error=None)
    state.record_blocks("mppt", [MPPT], DecoderStats(blocks_valid=1))
    state.record_hex("mppt", [Outcome(PING, Result.OK, vehex.PingReply(0x4159))], [])
    now[0] += 5 + HEX_TEXT_PAUSE / 2  # past the stale timeout, inside the pause
    if not connected:
        state.set_connection("mppt", None, connected=False, error="/dev/ttyUSB0: disconnected")
    assert state.devices()[0].up is up
