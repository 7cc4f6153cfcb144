"""Probes against real processes, real files and real pseudo-terminals: what a Pi's sensors actually do."""

import json
import logging
import os
import sys
import threading
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pvmonit_exporter.config import ProbeConfig
from pvmonit_exporter.sources.probes import (
    ProbeError,
    ProbeRunner,
    SerialMeter,
    calibrate,
    parse_number,
    parse_serial_line,
    read_command,
    read_file,
    read_w1,
    w1_slave_path,
)
from pvmonit_exporter.state import ProbeView, State

PYTHON = sys.executable
LOGGER = "pvmonit_exporter.sources.probes"
# Appends its pid to argv[1] as one line, then hangs: a probe command that never answers. Appending (never
# truncating) means a command killed while starting cannot leave the file empty after an earlier one wrote it.
HANG = "import os, sys, time\nopen(sys.argv[1], 'a').write(f'{os.getpid()}\\n')\ntime.sleep(60)"
W1_GOOD = "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"


def make_probe(**overrides: Any) -> ProbeConfig:
    settings: dict[str, Any] = {"name": "probe", "type": "file", "quantity": "temperature"}
    settings.update(overrides)
    return ProbeConfig(**settings)


def view(state: State, name: str) -> ProbeView:
    return next(v for v in state.probes() if v.name == name)


def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def alive(pid: int) -> bool:
    """A killed process may linger as a zombie until its parent reaps it; that counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def read_pids(file: Path) -> list[int]:
    assert eventually(lambda: file.exists() and file.read_text().strip() != ""), "the command never started"
    return [int(pid) for pid in file.read_text().split()]


def probe_error(call: Callable[[], float]) -> ProbeError:
    with pytest.raises(ProbeError) as info:
        call()
    return info.value


# --- parsing -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("21.37\n", 21.37), ("Temperature: -3.5 C\n", -3.5), ("1e3", 1000.0), (".5", 0.5), ("42500\n", 42500.0)],
)
def test_parse_number_takes_the_first_number(text: str, expected: float) -> None:
    assert parse_number(text) == pytest.approx(expected)


def test_parse_number_without_a_number_is_a_parse_error() -> None:
    assert probe_error(lambda: parse_number("sensor not found")).kind == "parse"


@pytest.mark.parametrize(("line", "expected"), [("00.1A", 0.1), ("12.34", 12.34), ("0.5 A", 0.5)])
def test_parse_serial_line(line: str, expected: float) -> None:
    assert parse_serial_line(line) == pytest.approx(expected)


@pytest.mark.parametrize("line", ["00.1A00.2A", "A", "ERR 3"])
def test_garbled_serial_line_is_a_parse_error(line: str) -> None:
    assert probe_error(lambda: parse_serial_line(line)).kind == "parse"


# --- command -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_command_reads_the_first_number_of_its_output() -> None:
    assert read_command([PYTHON, "-c", "print('Device: 21.37 C')"], timeout=10) == pytest.approx(21.37)


@pytest.mark.slow
def test_hanging_command_is_killed_at_its_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    # 2 s, not less: the command must have started and written its pid before it is killed, on a loaded machine
    error = probe_error(lambda: read_command([PYTHON, "-c", HANG, str(pid_file)], timeout=2.0))
    elapsed = time.monotonic() - started
    assert error.kind == "timeout"
    assert 2.0 <= elapsed < 30.0  # killed at its timeout, not after its 60 s sleep
    (pid,) = read_pids(pid_file)
    assert not alive(pid)


@pytest.mark.slow
def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    script = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "open(sys.argv[1], 'w').write(f'{os.getpid()} {child.pid}')\n"
        "time.sleep(60)"
    )
    assert probe_error(lambda: read_command([PYTHON, "-c", script, str(pid_file)], timeout=1.0)).kind == "timeout"
    pids = read_pids(pid_file)
    assert len(pids) == 2
    assert eventually(lambda: not any(alive(pid) for pid in pids), timeout=5.0)


@pytest.mark.slow
def test_non_zero_exit_fails_with_the_first_line_of_stderr() -> None:
    script = "import sys; sys.stderr.write('sensor not found\\nsecond line\\n'); print(12); sys.exit(3)"
    error = probe_error(lambda: read_command([PYTHON, "-c", script], timeout=10))
    assert error.kind == "failed"
    assert "exit status 3" in error.message
    assert "sensor not found" in error.message
    assert "second line" not in error.message


@pytest.mark.slow
def test_command_without_a_number_is_a_parse_error() -> None:
    assert probe_error(lambda: read_command([PYTHON, "-c", "print('no sensor')"], timeout=10)).kind == "parse"


@pytest.mark.slow
def test_missing_executable_fails(tmp_path: Path) -> None:
    error = probe_error(lambda: read_command([str(tmp_path / "temperv14"), "-c"], timeout=10))
    assert error.kind == "failed"
    assert "temperv14" in error.message


# --- 1-Wire and files --------------------------------------------------------------------------------------


def test_w1_reads_millidegrees(tmp_path: Path) -> None:
    slave = tmp_path / "w1_slave"
    slave.write_text(W1_GOOD)
    assert read_w1(str(slave)) == pytest.approx(23.125)


def test_w1_sensor_id_and_directory_resolve_to_w1_slave(tmp_path: Path) -> None:
    sensor = tmp_path / "28-0316a2795eff"
    sensor.mkdir()
    (sensor / "w1_slave").write_text(W1_GOOD.replace("t=23125", "t=-1250"))
    assert w1_slave_path("28-0316a2795eff") == Path("/sys/bus/w1/devices/28-0316a2795eff/w1_slave")
    assert read_w1("28-0316a2795eff", devices_dir=tmp_path) == pytest.approx(-1.25)
    assert read_w1(str(sensor)) == pytest.approx(-1.25)


def test_w1_bad_crc_fails(tmp_path: Path) -> None:
    slave = tmp_path / "w1_slave"
    slave.write_text(W1_GOOD.replace("YES", "NO"))
    error = probe_error(lambda: read_w1(str(slave)))
    assert error.kind == "failed"
    assert "CRC" in error.message


def test_w1_power_on_value_fails_and_is_never_published(tmp_path: Path) -> None:
    slave = tmp_path / "w1_slave"
    slave.write_text(W1_GOOD.replace("t=23125", "t=85000"))
    assert probe_error(lambda: read_w1(str(slave))).kind == "failed"
    config = make_probe(type="w1", path=str(slave))
    state = State([], [config])
    ProbeRunner(config, state).poll()
    probe = view(state, "probe")
    assert probe.value is None
    assert probe.readings_total == 0
    assert probe.errors_total == {"failed": 1}


def test_w1_unplugged_sensor_is_unavailable(tmp_path: Path) -> None:
    assert probe_error(lambda: read_w1("28-000000000000", devices_dir=tmp_path)).kind == "unavailable"


def test_file_probe_reads_a_sysfs_style_number_scaled_by_config(tmp_path: Path) -> None:
    zone = tmp_path / "temp"
    zone.write_text("42500\n")
    assert read_file(str(zone)) == pytest.approx(42500.0)
    config = make_probe(path=str(zone), scale=0.001)
    state = State([], [config])
    ProbeRunner(config, state).poll()
    assert view(state, "probe").value == pytest.approx(42.5)


def test_file_probe_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_text("n/a\n")
    assert probe_error(lambda: read_file(str(tmp_path / "missing"))).kind == "unavailable"
    assert probe_error(lambda: read_file(str(garbage))).kind == "parse"
    assert probe_error(lambda: read_file(str(tmp_path))).kind == "failed"  # a directory


# --- calibration -------------------------------------------------------------------------------------------


def test_calibration_applies_scale_then_offset() -> None:
    assert calibrate(make_probe(scale=0.5, offset=-1.0), 20.0) == pytest.approx(9.0)


@pytest.mark.slow
def test_command_probe_publishes_the_calibrated_value() -> None:
    config = make_probe(type="command", command=(PYTHON, "-c", "print(20)"), scale=0.5, offset=-1.0)
    state = State([], [config])
    ProbeRunner(config, state).poll()
    probe = view(state, "probe")
    assert probe.value == pytest.approx(9.0)
    assert probe.up


def test_out_of_range_is_dropped_and_counted_while_in_range_is_published(tmp_path: Path) -> None:
    file = tmp_path / "watts"
    config = make_probe(quantity="power", path=str(file), scale=10.0, min=-10.0, max=3000.0)
    state = State([], [config])
    runner = ProbeRunner(config, state)
    file.write_text("400\n")  # 4000 W after calibration: above the ceiling
    runner.poll()
    assert view(state, "probe").value is None
    file.write_text("25\n")
    runner.poll()
    assert view(state, "probe").value == pytest.approx(250.0)
    file.write_text("-2\n")
    runner.poll()
    probe = view(state, "probe")
    assert probe.value is None  # the implausible -20 W is never published, and 250 W is no longer known
    assert not probe.up
    assert probe.readings_total == 1
    assert probe.errors_total == {"out_of_range": 2}
    assert probe.error is not None
    assert "below the minimum" in probe.error


# --- serial ------------------------------------------------------------------------------------------------


class Pty:
    """A pseudo-terminal standing in for a USB meter: the test writes the meter's lines to the master side."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self._streaming = threading.Event()
        self._thread: threading.Thread | None = None

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def stream(self, line: bytes, every: float = 0.02) -> None:
        """Send `line` over and over, as the meter does on its own."""
        self._streaming.set()

        def send() -> None:
            while self._streaming.is_set():
                self.write(line)
                time.sleep(every)

        self._thread = threading.Thread(target=send, daemon=True)
        self._thread.start()

    def stop_stream(self) -> None:
        self._streaming.clear()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def unplug(self) -> None:
        self.stop_stream()
        os.close(self.master)
        self.master = -1

    def close(self) -> None:
        self.stop_stream()
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)


@pytest.fixture
def make_pty() -> Iterator[Callable[[], Pty]]:
    ptys: list[Pty] = []

    def make() -> Pty:
        ptys.append(Pty())
        return ptys[-1]

    yield make
    for pty in ptys:
        pty.close()


def test_serial_meter_reads_an_aviosys_line(make_pty: Callable[[], Pty]) -> None:
    pty = make_pty()
    pty.stream(b"00.1A\r\n")
    meter = SerialMeter(pty.path, 9600)
    try:
        assert meter.read(timeout=5.0) == pytest.approx(0.1)
    finally:
        meter.close()


def test_serial_meter_takes_the_latest_complete_line(make_pty: Callable[[], Pty]) -> None:
    pty = make_pty()
    meter = SerialMeter(pty.path, 9600)
    try:
        pty.stream(b"9.9A\r\n")
        assert meter.read(timeout=5.0) == pytest.approx(9.9)  # the port is open from now on
        pty.stop_stream()
        pty.write(b"1.5A\r\n2.5A\r\n3.5A\r\n4.")
        time.sleep(0.1)
        assert meter.read(timeout=5.0) == pytest.approx(3.5)
        pty.write(b"5A\r\n")
        assert meter.read(timeout=5.0) == pytest.approx(4.5)  # the unfinished line was kept, not lost
    finally:
        meter.close()


def test_serial_meter_ignores_the_tail_of_a_line_cut_by_opening(make_pty: Callable[[], Pty]) -> None:
    pty = make_pty()
    meter = SerialMeter(pty.path, 9600)
    try:
        assert probe_error(lambda: meter.read(timeout=0.2)).kind == "timeout"  # opened, nothing sent yet
        pty.write(b"5A\r\n")  # the end of `12.5A`, whose start was sent before the port opened
        assert probe_error(lambda: meter.read(timeout=0.3)).kind == "timeout"
        pty.write(b"00.1A\r\n")
        assert meter.read(timeout=5.0) == pytest.approx(0.1)
    finally:
        meter.close()


def test_silent_serial_meter_times_out(make_pty: Callable[[], Pty]) -> None:
    meter = SerialMeter(make_pty().path, 9600)
    started = time.monotonic()
    try:
        assert probe_error(lambda: meter.read(timeout=0.3)).kind == "timeout"
    finally:
        meter.close()
    assert time.monotonic() - started < 5.0


def test_missing_serial_port_is_unavailable(tmp_path: Path) -> None:
    meter = SerialMeter(str(tmp_path / "ttyUSB9"), 9600)
    assert probe_error(lambda: meter.read(timeout=1.0)).kind == "unavailable"


def test_unplugged_meter_is_unavailable_then_reopened(tmp_path: Path, make_pty: Callable[[], Pty]) -> None:
    link = tmp_path / "ttyUSB0"  # a stable name, as udev gives the meter
    first = make_pty()
    link.symlink_to(first.path)
    meter = SerialMeter(str(link), 9600)
    try:
        first.stream(b"00.1A\r\n")
        assert meter.read(timeout=5.0) == pytest.approx(0.1)
        first.unplug()
        assert probe_error(lambda: meter.read(timeout=5.0)).kind == "unavailable"
        second = make_pty()
        link.unlink()
        link.symlink_to(second.path)
        second.stream(b"02.5A\r\n")
        assert meter.read(timeout=5.0) == pytest.approx(2.5)
    finally:
        meter.close()


def test_serial_current_probe_publishes_amperes_and_power(make_pty: Callable[[], Pty]) -> None:
    pty = make_pty()
    pty.stream(b"00.1A\r\n")
    config = make_probe(name="clamp", type="serial", quantity="current", port=pty.path, power_voltage=230.0)
    state = State([], [config])
    runner = ProbeRunner(config, state)
    runner.start()
    try:
        assert eventually(lambda: view(state, "clamp").value is not None)
    finally:
        runner.stop()
    clamp = view(state, "clamp")
    assert clamp.value == pytest.approx(0.1)
    assert clamp.power_watts == pytest.approx(0.1 * 230.0)


@pytest.mark.parametrize(("amperes", "kept"), [(6.52, True), (6.53, False), (9.0, False), (0.0, True)])
def test_power_max_is_a_ceiling_in_watts_on_amperes_times_the_voltage(amperes: float, kept: bool) -> None:
    """PvMonit's $CONSO_PLAFOND: 1500 W at 230 V lies between 6.52 A (1499.6 W) and 6.53 A (1501.9 W)."""
    config = make_probe(quantity="current", power_voltage=230.0, power_max=1500.0)
    if kept:
        assert calibrate(config, amperes) == pytest.approx(amperes)
    else:
        error = probe_error(lambda: calibrate(config, amperes))
        assert error.kind == "out_of_range"
        assert f"= {amperes * 230:g} W is above power_max 1500 W" in error.message


def test_a_clamp_reading_above_power_max_is_dropped_and_counted(make_pty: Callable[[], Pty]) -> None:
    pty = make_pty()
    config = make_probe(name="clamp", type="serial", quantity="current", port=pty.path, power_voltage=230.0,
                        power_max=1500.0, timeout=5.0)
    state = State([], [config])
    runner = ProbeRunner(config, state)
    try:
        pty.stream(b"03.2A\r\n")
        runner.poll()
        assert view(state, "clamp").power_watts == pytest.approx(736.0)
        pty.stop_stream()
        pty.stream(b"09.0A\r\n")  # 2070 W: an impossible reading for this house
        time.sleep(0.1)
        runner.poll()
    finally:
        runner.stop()
    clamp = view(state, "clamp")
    assert clamp.value is None
    assert clamp.power_watts is None
    assert clamp.errors_total == {"out_of_range": 1}


# --- runner ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_hanging_probe_does_not_stop_the_others(tmp_path: Path) -> None:
    """One command hangs for good, another times out again and again: the file probe reads on regardless.

    Its ten readings are counted while the hung command is still alive, so they cannot have been taken between
    the hangs, however slowly a loaded machine runs the threads.
    """
    hang_pids, timing_out_pids, value_file = tmp_path / "hang", tmp_path / "timing-out", tmp_path / "value"
    value_file.write_text("21.5\n")
    hang = make_probe(
        name="hang", type="command", command=(PYTHON, "-c", HANG, str(hang_pids)), interval=0.1, timeout=600.0
    )
    timing_out = make_probe(
        name="timing_out", type="command", command=(PYTHON, "-c", HANG, str(timing_out_pids)), interval=0.1,
        timeout=0.5,
    )
    steady = make_probe(name="steady", path=str(value_file), interval=0.05)
    state = State([], [hang, timing_out, steady])
    runners = [ProbeRunner(hang, state), ProbeRunner(timing_out, state), ProbeRunner(steady, state)]
    for runner in runners:
        runner.start()
    try:
        (hung_pid,) = read_pids(hang_pids)
        readings_before = view(state, "steady").readings_total
        assert eventually(lambda: view(state, "steady").readings_total >= readings_before + 10, timeout=60.0)
        assert alive(hung_pid)  # the ten readings above were all taken while it hung
        assert view(state, "steady").value == pytest.approx(21.5)
        assert eventually(lambda: view(state, "timing_out").errors_total.get("timeout", 0) >= 2, timeout=60.0)
        assert view(state, "steady").value == pytest.approx(21.5)
        hang_view = view(state, "hang")
        assert (hang_view.value, hang_view.readings_total, hang_view.errors_total) == (None, 0, {})
        assert view(state, "timing_out").value is None
    finally:
        started = time.monotonic()
        for runner in runners:
            runner.stop()
        stop_seconds = time.monotonic() - started
    assert stop_seconds < 3.0
    assert not any(runner.running for runner in runners)
    commands = read_pids(hang_pids) + read_pids(timing_out_pids)
    assert eventually(lambda: not any(alive(pid) for pid in commands), timeout=5.0)


@pytest.mark.slow
def test_stop_is_prompt_and_kills_a_running_command(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    config = make_probe(type="command", command=(PYTHON, "-c", HANG, str(pid_file)), interval=60.0, timeout=30.0)
    state = State([], [config])
    runner = ProbeRunner(config, state)
    runner.start()
    (pid,) = read_pids(pid_file)
    started = time.monotonic()
    runner.stop()
    assert time.monotonic() - started < 3.0
    assert not runner.running
    assert not alive(pid)
    assert view(state, "probe").errors_total == {}  # cut short by stop(): not the probe's failure


def test_first_reading_is_immediate_and_stop_ends_the_wait(tmp_path: Path) -> None:
    file = tmp_path / "temp"
    file.write_text("19.0\n")
    config = make_probe(path=str(file), interval=60.0)
    state = State([], [config])
    runner = ProbeRunner(config, state)
    runner.start()
    assert eventually(lambda: view(state, "probe").readings_total == 1, timeout=5.0)
    started = time.monotonic()
    runner.stop()
    assert time.monotonic() - started < 2.0
    assert not runner.running
    with pytest.raises(RuntimeError):
        runner.start()


def test_health_changes_are_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    file = tmp_path / "temp"
    config = make_probe(name="attic", path=str(file))
    state = State([], [config])
    runner = ProbeRunner(config, state)
    caplog.set_level(logging.DEBUG, logger=LOGGER)

    def logged(level: int) -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]

    for _ in range(3):
        runner.poll()
    assert len(logged(logging.WARNING)) == 1
    assert "attic" in logged(logging.WARNING)[0]
    assert "unavailable" in logged(logging.WARNING)[0]
    file.write_text("18.5\n")
    runner.poll()
    runner.poll()
    assert len(logged(logging.INFO)) == 1
    assert "attic" in logged(logging.INFO)[0]
    file.unlink()
    runner.poll()
    assert len(logged(logging.WARNING)) == 2
    assert view(state, "attic").errors_total == {"unavailable": 4}


def test_unexpected_exception_is_logged_once_counted_and_survived(caplog: pytest.LogCaptureFixture) -> None:
    # pyserial refuses a negative baud rate with ValueError: nothing a probe expects, so a stand-in for a bug.
    config = make_probe(name="clamp", type="serial", quantity="current", port="/dev/null", baud=-1, interval=0.01)
    state = State([], [config])
    runner = ProbeRunner(config, state)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    runner.poll()
    runner.poll()
    errors = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert "clamp" in errors[0].getMessage()
    assert view(state, "clamp").errors_total == {"failed": 2}
    runner.start()
    try:
        assert eventually(lambda: view(state, "clamp").errors_total["failed"] >= 5)
        assert runner.running
    finally:
        runner.stop()
    assert not runner.running


def test_an_infinite_reading_is_a_parse_error_and_api_state_stays_valid(tmp_path: Path) -> None:
    """`1e999` is a number to float(): it must never reach /api/state, whose JSON cannot carry it."""
    from pvmonit_exporter.config import WebConfig
    from pvmonit_exporter.web.api import state_document

    file = tmp_path / "value"
    file.write_text("1e999\n")
    config = make_probe(path=str(file))
    state = State([], [config])
    ProbeRunner(config, state).poll()
    probe = view(state, "probe")
    assert probe.value is None
    assert probe.errors_total == {"parse": 1}
    json.dumps(state_document(state, WebConfig()), allow_nan=False)


@pytest.mark.slow
def test_a_command_printing_without_end_is_killed_after_64_kib(tmp_path: Path) -> None:
    """The issue's 300 MB probe: the old reader kept all of it (959 MB RSS). Now the first 64 KiB are read, then
    the command's group is killed; a 300 MB read would take seconds, this takes one pipe's worth."""
    pid_file = tmp_path / "pid"
    script = f"import os, sys\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\n" \
             "chunk = b'1' * 65536\nfor _ in range(300 * 16):\n    sys.stdout.buffer.write(chunk)\n"
    error = probe_error(lambda: read_command([PYTHON, "-c", script], timeout=60))
    assert error.kind == "failed"
    assert "more than 64 KiB" in error.message
    assert not alive(read_pids(pid_file)[0])


@pytest.mark.slow
def test_a_command_flooding_stderr_is_killed_too() -> None:
    script = "import sys\nwhile True:\n    sys.stderr.write('x' * 65536)\n"
    error = probe_error(lambda: read_command([PYTHON, "-c", script], timeout=60))
    assert (error.kind, "more than 64 KiB" in error.message) == ("failed", True)


@pytest.mark.slow
def test_output_just_under_the_limit_is_read() -> None:
    script = "print('21.5' + ' ' * (64 * 1024 - 10))"
    assert read_command([PYTHON, "-c", script], timeout=30) == pytest.approx(21.5)


@pytest.mark.slow
def test_control_bytes_from_stderr_are_escaped(caplog: pytest.LogCaptureFixture) -> None:
    """A command's stderr must not forge log lines or drive the terminal of whoever reads the journal."""
    script = "import sys\nsys.stderr.write('\\x1b[2J\\x1b[31mfake\\x07ERROR other: forged\\x00\\n')\nsys.exit(3)"
    config = make_probe(name="sensor", type="command", command=(PYTHON, "-c", script), path="")
    state = State([], [config])
    caplog.set_level(logging.WARNING, logger=LOGGER)
    ProbeRunner(config, state).poll()
    error = view(state, "sensor").error
    assert error is not None
    for shown in (error, caplog.records[-1].getMessage()):
        assert shown.isprintable()
        assert "\\x1b[2J\\x1b[31mfake\\x07ERROR other: forged\\x00" in shown


def test_a_current_whose_power_overflows_is_rejected_and_api_state_stays_valid(tmp_path: Path) -> None:
    """1e300 A is finite, but × 1e10 V is not: the issue's /api/state that failed at every request."""
    from pvmonit_exporter.config import WebConfig
    from pvmonit_exporter.web.api import state_document
    from pvmonit_exporter.web.server import encode_json

    file = tmp_path / "value"
    file.write_text("1e300\n")
    config = make_probe(path=str(file), quantity="current", power_voltage=1e10)
    state = State([], [config])
    ProbeRunner(config, state).poll()
    probe = view(state, "probe")
    assert (probe.value, probe.power_watts) == (None, None)
    assert probe.errors_total == {"out_of_range": 1}
    json.loads(encode_json(state_document(state, WebConfig())))


class _StateFailingOnce(State):
    """The real state, whose first recording fails: an error outside the reading that poll() guards."""

    def __init__(self, probes: list[ProbeConfig]) -> None:
        super().__init__([], probes)
        self.failures = [RuntimeError("a bug in the state")]

    def record_probe(self, probe: str, value: float | None, error_kind: str | None = None,
                     error: str | None = None) -> None:
        if self.failures:
            raise self.failures.pop()
        super().record_probe(probe, value, error_kind, error)


def test_the_probe_loop_outlives_an_error_outside_the_reading(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    file = tmp_path / "value"
    file.write_text("21.5\n")
    config = make_probe(path=str(file), interval=0.05)
    state = _StateFailingOnce([config])
    runner = ProbeRunner(config, state)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    runner.start()
    try:
        assert eventually(lambda: view(state, "probe").readings_total >= 2)
        assert runner.running
    finally:
        runner.stop()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "a bug in the state" in errors[0].getMessage()
