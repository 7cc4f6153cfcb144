"""The daemon's log as an operator reads it (`journalctl -u pvmonit-exporter`): a device that stops sending and
comes back, each said once. `pvmonit-exporter run` in a subprocess, the device on a real pseudo-terminal."""

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pvmonit_exporter.config import DeviceConfig
from pvmonit_exporter.sources.serialport import Discovery, PortClaims, SerialReader
from pvmonit_exporter.state import State
from pvmonit_exporter.vedirect.framing import encode_block
from pvmonit_exporter.vedirect.hex import Response, encode_register
from tests.daemon.test_exporter import Daemon, is_up, write_config
from tests.helpers import FakeDevicePort, wait_for
from tests.vedirect_samples import MPPT


@contextmanager
def sending(port: FakeDevicePort, frame: bytes) -> Iterator[None]:
    """A device sending `frame` 5 times a second, for as long as the block lasts."""
    done = threading.Event()

    def send() -> None:
        while not done.wait(0.2):
            port.write(frame)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        yield
    finally:
        done.set()
        sender.join()


@pytest.mark.slow
def test_silence_and_return_are_logged_once_each(tmp_path: Path) -> None:
    """The daemon's wiring of BlockWatch (whose decisions test_block_watch.py tables with a fake clock: once,
    not again however long the silence lasts): blocks keep it quiet past the timeout, silence is said, the
    return is said."""
    port = FakeDevicePort(tmp_path / "cable-mppt")
    daemon = Daemon(write_config(tmp_path, f"devices:\n  - name: mppt\n    port: {port.path}\n"
                                           "    stale_timeout: 1\n"), tmp_path)
    log = daemon.stderr_path.read_text
    try:
        wait_for(lambda: "device mppt: reading" in log(), timeout=30)
        with sending(port, encode_block(MPPT)):
            wait_for(lambda: is_up(daemon.base, "mppt"), timeout=30)
            time.sleep(1.5)  # longer than the stale timeout, with a block every 0.2 s: nothing to say
            assert "no valid block" not in log()
        wait_for(lambda: "no valid block" in log(), timeout=30)
        with sending(port, encode_block(MPPT)):
            wait_for(lambda: "receiving again" in log(), timeout=30)
            assert daemon.stop() == 0  # still sending: no second silence in the log
    finally:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait()
        port.close()
    lines = log().splitlines()
    silent = [line for line in lines if "no valid block" in line]
    assert silent == [f"WARNING pvmonit_exporter.sources.serialport: device mppt: {port.path}: no valid block for "
                      "1 s: nothing arrived (check the cable and the port; is the device asleep?)"]
    back = [line for line in lines if "receiving again" in line]
    assert back == [f"INFO pvmonit_exporter.sources.serialport: device mppt: {port.path}: receiving again"]
    assert not [line for line in lines if "wrong device" in line]


def test_hex_answers_while_the_text_pauses_are_no_silence(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A device answering HEX requests pauses its text: its valid HEX messages keep the reader from calling the
    port silent or at the wrong speed."""
    caplog.set_level(logging.INFO, logger="pvmonit_exporter.sources.serialport")
    port = FakeDevicePort(tmp_path / "cable-mppt")
    device = DeviceConfig("mppt", port.path, stale_timeout=1.0, history=False)
    state = State([device])
    reader = SerialReader(device, state, Discovery(PortClaims(), ()))
    reader.start()
    try:
        wait_for(lambda: state.devices()[0].connected)
        port.write(encode_block(MPPT))
        wait_for(lambda: state.devices()[0].stats.blocks_valid == 1)
        answer = encode_register(Response.ASYNC, 0xEDD5, 0, (2618).to_bytes(2, "little"))  # battery voltage
        for _ in range(15):  # 3 s of HEX only, three times the stale timeout
            port.write(answer)
            time.sleep(0.2)
        assert state.devices()[0].stats.hex_valid >= 10
        assert not [r for r in caplog.records if "no valid block" in r.getMessage()]
        wait_for(lambda: [r for r in caplog.records if "nothing arrived" in r.getMessage()])  # then real silence
    finally:
        reader.stop()
        port.close()
