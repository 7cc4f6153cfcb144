"""Who may open a port, and whose values it carries: exclusive opens, identity changes under a configured serial
number, and scans that leave other programs' ports alone. Real pseudo-terminals, real pyserial, real subprocesses;
symlinks stand for /dev/serial/by-id."""

import errno
import fcntl
import logging
import os
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from pvmonit_exporter.config import DEFAULT_AUTO_PORT_PATTERNS, DeviceConfig
from pvmonit_exporter.sources.probes import ProbeError, SerialMeter
from pvmonit_exporter.sources.serialport import Discovery, PortClaims, SerialReader, open_port
from pvmonit_exporter.state import State
from pvmonit_exporter.vedirect.framing import encode_block
from tests.config import NOBODY, ROOT, assert_one_line_error, run_cli
from tests.helpers import FakeDevicePort, wait_for
from tests.vedirect_samples import MPPT

LOGGER = "pvmonit_exporter.sources.serialport"


@pytest.fixture
def port(tmp_path: Path) -> Iterator[FakeDevicePort]:
    fake = FakeDevicePort(tmp_path / "usb-VictronEnergy_BV_VE_Direct_cable_A-if00-port0")
    yield fake
    fake.close()


def speed(path: str) -> int:
    """The port's output speed (a termios Bxxx constant), read without changing anything."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        return int(termios.tcgetattr(fd)[5])
    finally:
        os.close(fd)


def set_speed(path: str, baud: int) -> None:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        attributes = termios.tcgetattr(fd)
        attributes[4] = attributes[5] = baud
        termios.tcsetattr(fd, termios.TCSANOW, attributes)
    finally:
        os.close(fd)


class Recording:
    """An opener that remembers what it opened: what a scan touched."""

    def __init__(self) -> None:
        self.opened: list[str] = []

    def __call__(self, path: str) -> serial.Serial:
        self.opened.append(path)
        return open_port(path)


def held_by_another(path: str) -> bool:
    """Whether another opener holds the port's exclusive lock (pyserial's flock), tried without taking it."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def send_until(port: FakeDevicePort, frame: bytes, condition: Callable[[], bool], timeout: float = 20) -> None:
    """Send `frame` about 5 times a second, as a device does on its own, until `condition()` holds."""
    def sent_then(check: Callable[[], bool]) -> bool:
        port.write(frame)
        time.sleep(0.2)
        return check()

    wait_for(lambda: sent_then(condition), timeout=timeout)


def voltages_while_sending(port: FakeDevicePort, frame: bytes, state: State, seconds: float = 4) -> set[str]:
    """Send `frame` 10 times a second for `seconds`, collecting every V the device's state showed meanwhile."""
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        port.write(frame)
        seen.add(state.devices()[0].fields.get("V", ""))
        time.sleep(0.1)
    return seen


def auto_reader(tmp_path: Path, device: DeviceConfig, wanted_serial: str) -> tuple[SerialReader, State]:
    """A reader for `device` (port `auto`) scanning tmp_path's usb-VictronEnergy* links, in a configuration
    where some entry asks for `wanted_serial`; and the state it feeds."""
    state = State([device])
    discovery = Discovery(PortClaims(), (str(tmp_path / "usb-VictronEnergy*"),), identify_seconds=1.5,
                          wanted_serials=[wanted_serial])
    return SerialReader(device, state, discovery), state


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


# --- exclusive opens (issue 10, item 10) -------------------------------------------------------------------


@pytest.mark.slow
def test_read_beside_a_holder_says_in_use(port: FakeDevicePort) -> None:
    with open_port(port.path):  # the daemon, say
        result = run_cli("read", port.path)
    line = assert_one_line_error(result, port.path)
    assert line == f"pvmonit-exporter: {port.path} is in use by another program"


@pytest.mark.slow
def test_reader_reports_a_port_held_by_another_program_once_then_takes_it(
    port: FakeDevicePort, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    # Another program: `read` in a real subprocess, holding the port and printing its blocks.
    holder = subprocess.Popen([sys.executable, "-m", "pvmonit_exporter", "read", "--json", port.path],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    device = DeviceConfig("mppt", port.path)
    state = State([device])
    reader = SerialReader(device, state, Discovery(PortClaims(), ()))
    try:
        wait_for(lambda: held_by_another(port.path) or holder.poll() is not None, timeout=30)
        assert holder.poll() is None
        reader.start()
        view = wait_for(lambda: v if (v := state.devices()[0]).error else None)
        assert view.error == f"{port.path} is in use by another program"
        assert not view.connected
        for _ in range(10):  # blocks keep flowing to the holder, none to the reader, over several retries
            port.write(encode_block(MPPT))
            time.sleep(0.3)
        assert state.devices()[0].stats.bytes_received == 0
        assert len(messages(caplog, "is in use by another program")) == 1
        holder.terminate()
        holder.wait(timeout=10)
        wait_for(lambda: state.devices()[0].connected, timeout=40)
        port.write(encode_block(MPPT))
        wait_for(lambda: state.devices()[0].up)
    finally:
        reader.stop()
        if holder.poll() is None:
            holder.kill()
        stdout, _ = holder.communicate(timeout=10)
    assert stdout.count(b'"SER#"') >= 5  # the holder got the blocks it was reading


# --- a different device under a configured serial number (issue 10, item 11) -------------------------------


def test_another_serial_number_on_the_port_takes_the_device_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    first = FakeDevicePort(tmp_path / "usb-VictronEnergy_A")
    reader, state = auto_reader(tmp_path, DeviceConfig("Mppt", "auto", serial_number="HQ1111AAAAA"), "HQ1111AAAAA")
    ours = encode_block(dict(MPPT, **{"SER#": "HQ1111AAAAA", "V": "11111"}))
    theirs = encode_block(dict(MPPT, **{"SER#": "HQ9999ZZZZZ", "V": "99999"}))
    second = None
    reader.start()
    try:
        send_until(first, ours, lambda: state.devices()[0].fields.get("V") == "11111")
        # The cable now leads to another MPPT: for several seconds only its blocks arrive.
        assert "99999" not in voltages_while_sending(first, theirs, state)
        view = state.devices()[0]
        assert not view.up
        assert view.fields == {}
        lines = messages(caplog, "now answers with")
        assert lines == [f"device Mppt: {first.path} now answers with serial number HQ9999ZZZZZ, not HQ1111AAAAA; "
                         "looking for it again"]
        # Ours turns up on another cable: found there.
        second = FakeDevicePort(tmp_path / "usb-VictronEnergy_B")
        send_until(second, ours, lambda: state.devices()[0].fields.get("V") == "11111"
                   and state.devices()[0].port == second.path, timeout=40)
        assert len(messages(caplog, "now answers with")) == 1
        assert not messages(caplog, "no port answers")  # the one line stood while it was looked for
    finally:
        reader.stop()
        first.close()
        if second is not None:
            second.close()


# --- scans that leave other programs' ports alone (issue 10, item 11) ---------------------------------------


def test_a_reserved_link_that_appears_after_start_up_is_never_scanned(tmp_path: Path) -> None:
    link = tmp_path / "usb-FTDI_meter-if00-port0"
    claims = PortClaims()
    claims.reserve(str(link))  # the configuration names it; the cable is plugged in later
    meter = FakeDevicePort(link)
    try:
        set_speed(meter.path, termios.B9600)
        meter.write(encode_block(MPPT))  # even a port that would answer
        opener = Recording()
        discovery = Discovery(claims, (str(tmp_path / "usb-*"),), opener=opener, identify_seconds=0.5)
        assert discovery.find(DeviceConfig("any", "auto"), threading.Event()) is None
        assert opener.opened == []
        assert speed(meter.path) == termios.B9600
    finally:
        meter.close()


def test_a_scan_restores_the_speed_of_a_port_it_does_not_take(port: FakeDevicePort) -> None:
    set_speed(port.path, termios.B9600)
    opener = Recording()
    discovery = Discovery(PortClaims(), (port.path,), opener=opener, identify_seconds=0.5)
    port.write(b"00.1A\r\n" * 20)  # a current meter's lines: no VE.Direct block
    assert discovery.find(DeviceConfig("any", "auto"), threading.Event()) is None
    assert opener.opened == [port.path]  # it did listen...
    assert speed(port.path) == termios.B9600  # ...and left the port as it was


def test_a_scan_skips_a_port_another_program_holds(port: FakeDevicePort) -> None:
    set_speed(port.path, termios.B9600)
    with serial.Serial(port.path, 9600, timeout=0.5, exclusive=True) as holder:
        port.write(encode_block(MPPT))
        discovery = Discovery(PortClaims(), (port.path,), identify_seconds=1.0)
        assert discovery.find(DeviceConfig("any", "auto"), threading.Event()) is None
        assert speed(port.path) == termios.B9600
        assert holder.read(len(encode_block(MPPT))) == encode_block(MPPT)  # the holder lost nothing


def test_a_scan_that_finds_nothing_backs_off_until_a_cable_is_plugged(port: FakeDevicePort) -> None:
    opener = Recording()
    discovery = Discovery(PortClaims(), (str(port.link),), opener=opener, identify_seconds=0.3)
    device = DeviceConfig("any", "auto")
    stop = threading.Event()
    assert discovery.find(device, stop) is None
    assert discovery.find(device, stop) is None  # a retry soon after: the silent port is left alone
    assert opener.opened == [port.path]
    port.unplug()
    port.replug()  # a cable plugged in: a new device node behind the same name, listened to at once
    sending = threading.Event()

    def device_sends() -> None:
        while not sending.wait(0.1):
            port.write(encode_block(MPPT))

    writer = threading.Thread(target=device_sends)
    writer.start()
    try:
        assert discovery.find(device, stop) == port.path
    finally:
        sending.set()
        writer.join()
    assert opener.opened == [port.path, port.path]


def test_a_serial_probe_never_shares_its_port(port: FakeDevicePort) -> None:
    """A current meter read beside another program would lose lines to it: the probe says the port is taken."""
    with serial.Serial(port.path, 9600, timeout=0.5, exclusive=True):
        meter = SerialMeter(port.path, 9600)
        port.write(b"00.1A\r\n" * 3)
        with pytest.raises(ProbeError) as failure:
            meter.read(timeout=1.0)
        meter.close()
    assert failure.value.kind == "unavailable"
    assert str(failure.value) == f"{port.path} is in use by another program"


def test_a_device_without_serial_number_never_publishes_one_another_entry_asks_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Cables swapped: the `auto` BMV's port now carries the inverter that `Onduleur` is configured with."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    cable = FakeDevicePort(tmp_path / "usb-VictronEnergy_A")
    reader, state = auto_reader(tmp_path, DeviceConfig("Bmv", "auto"), "HQ1328Y6TF6")
    bmv = encode_block({"PID": "0x204", "V": "12500", "SOC": "800"})
    inverter = encode_block({"PID": "0xA202", "SER#": "HQ1328Y6TF6", "V": "25000", "MODE": "2"})
    reader.start()
    try:
        send_until(cable, bmv, lambda: state.devices()[0].fields.get("SOC") == "800")
        assert "25000" not in voltages_while_sending(cable, inverter, state)
        assert not state.devices()[0].up
        assert messages(caplog, "now answers with") == [
            f"device Bmv: {cable.path} now answers with serial number HQ1328Y6TF6, which another device is "
            "configured with; looking for it again"]
    finally:
        reader.stop()
        cable.close()


# --- exclusive mode against programs that ignore the lock (issue 16, contract 6) ---------------------------


def open_as_another_program(path: str) -> int:
    """Open `path` with a plain `serial.Serial()` (no lock asked for, as PvMonit's vedirect.py did) in a forked
    child that is not root (root ignores TIOCEXCL): 0 when it opened, else the errno it got."""
    pid = os.fork()
    if pid == 0:  # the child: it must never return into pytest
        code = 99
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
            try:
                serial.Serial(path, 19200, timeout=0.1).close()
                code = 0
            except serial.SerialException as exc:
                code = exc.errno if isinstance(exc.errno, int) else 98
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.slow
def test_a_program_that_ignores_the_lock_is_refused_while_the_exporter_reads(port: FakeDevicePort) -> None:
    tty = os.ttyname(port.slave)
    if os.geteuid() == 0:
        os.chown(tty, NOBODY, -1)  # the other program may open the port (as a member of dialout would)
    assert open_as_another_program(tty) == 0  # nobody holds it: it opens
    device = DeviceConfig("mppt", port.path)
    state = State([device])
    reader = SerialReader(device, state, Discovery(PortClaims(), ()))
    reader.start()
    try:
        wait_for(lambda: state.devices()[0].connected)
        assert open_as_another_program(tty) == errno.EBUSY
    finally:
        reader.stop()
    assert open_as_another_program(tty) == 0  # the exporter let it go: the port is free again


# --- `port: auto` scans Victron's cables only, unless told (issue 16, contract 6) --------------------------


def test_auto_scans_only_victron_cables_unless_other_ports_are_listed(tmp_path: Path) -> None:
    """A GPS on a USB serial adapter beside a Victron cable: the default patterns, rooted in tmp_path instead of
    /dev/serial/by-id, never open it; listing it makes the scan listen to it (and put its speed back)."""
    patterns = [p.replace("/dev/serial/by-id", str(tmp_path)) for p in DEFAULT_AUTO_PORT_PATTERNS]
    assert patterns != list(DEFAULT_AUTO_PORT_PATTERNS)  # the defaults do live in /dev/serial/by-id
    gps = FakeDevicePort(tmp_path / "usb-u-blox_AG_-_www.u-blox.com_u-blox_7_-_GPS_GNSS_Receiver-if00")
    cable = None
    try:
        set_speed(gps.path, termios.B9600)
        gps.write(b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n" * 20)
        opener = Recording()
        discovery = Discovery(PortClaims(), patterns, opener=opener, identify_seconds=0.5)
        assert discovery.find(DeviceConfig("any", "auto"), threading.Event()) is None
        assert opener.opened == []
        assert speed(gps.path) == termios.B9600
        cable = FakeDevicePort(tmp_path / "usb-VictronEnergy_BV_VE_Direct_cable_VE123456-if00-port0")
        sending = threading.Event()

        def device_sends(port: FakeDevicePort = cable) -> None:
            while not sending.wait(0.1):
                port.write(encode_block(MPPT))

        writer = threading.Thread(target=device_sends)
        writer.start()
        try:
            assert discovery.find(DeviceConfig("any", "auto"), threading.Event()) == str(cable.link)
        finally:
            sending.set()
            writer.join()
        assert opener.opened == [str(cable.link)]
        listed = Discovery(PortClaims(), [*patterns, str(tmp_path / "usb-u-blox*")], opener=opener,
                           identify_seconds=0.5)
        assert listed.find(DeviceConfig("other", "auto", serial_number="HQ0000AAAAA"), threading.Event()) is None
        assert opener.opened[-1] == gps.path  # listed: listened to...
        assert speed(gps.path) == termios.B9600  # ...and left as it was
    finally:
        gps.close()
        if cable is not None:
            cable.close()
