"""Auxiliary probes (PvMonit's temperature and consumption sensors): one reading function per probe type, and a
`ProbeRunner` thread per probe that calibrates each reading and records it in the state.

A reading function returns the raw number or raises `ProbeError`, whose `kind` is the label the failure is
counted under. Probes are slow, optional hardware: a command may hang, a USB clamp may be unplugged, a
1-Wire sensor may answer garbage. Each probe therefore has its own thread, so that one failing probe never
delays the others or the VE.Direct readers.
"""

import contextlib
import logging
import math
import os
import re
import selectors
import signal
import subprocess
import termios
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import serial

from pvmonit_exporter.config import ProbeConfig
from pvmonit_exporter.safe_text import escape_control
from pvmonit_exporter.sources.probe_kinds import ProbeErrorKind
from pvmonit_exporter.sources.serialport import describe_error
from pvmonit_exporter.state import State
from pvmonit_exporter.workers import Worker

logger = logging.getLogger(__name__)


# How often a blocking read looks at its cancel event: the longest stop() waits for a command or serial read.
CANCEL_CHECK_SECONDS = 0.1
W1_DEVICES_DIR = Path("/sys/bus/w1/devices")
# A DS18B20 answers 85 °C after a power-on reset, before its first conversion: not a temperature.
W1_RESET_MILLIDEGREES = 85000
# A meter that never ends a line must not grow the buffer forever; no meter line is anywhere near this long.
SERIAL_MAX_LINE = 256
# A command probe prints a number; one printing more than this (on stdout or stderr) is killed.
MAX_OUTPUT_BYTES = 64 * 1024
READ_CHUNK = 65536

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
# A whole meter line: a number and an optional unit (`00.1A`, `0.5 A`, `12.34`). Stricter than a command's
# output on purpose: two lines run together by a lost line end must fail rather than yield half a number.
_SERIAL_LINE_RE = re.compile(rf"\s*({_NUMBER})\s*[A-Za-z]*\s*")
_W1_TEMPERATURE_RE = re.compile(r"t=(-?\d+)")


class ProbeError(Exception):
    """A reading that failed; `kind` is what it is counted under, the message says why in words."""

    def __init__(self, kind: ProbeErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ProbeErrorKind = kind
        self.message = message


def parse_number(text: str) -> float:
    """The first number in `text`: probe commands print it with all sorts of decoration around it."""
    match = _NUMBER_RE.search(text)
    if match is None:
        raise ProbeError("parse", f"no number in {_excerpt(text)!r}")
    return float(match.group())


def _excerpt(text: str) -> str:
    """The start of some output, short enough for a log line and a metric label, control characters escaped:
    a command's output must not forge log lines or reach a terminal raw."""
    text = text.strip()
    return escape_control(text if len(text) <= 60 else text[:57] + "...")


# --- command -----------------------------------------------------------------------------------------------


def read_command(argv: Sequence[str], timeout: float, cancel: threading.Event | None = None) -> float:
    """Run `argv` without a shell and return the first number it prints.

    The command runs in its own session so that, at `timeout` or when `cancel` is set, the whole process
    group is killed: a wrapper script's children would otherwise keep the pipes, and this thread, waiting.
    """
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        raise ProbeError("failed", f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    deadline = time.monotonic() + timeout
    with process:
        stdout, stderr = _bounded_output(process, _Limits(deadline, timeout, cancel))
    if process.returncode != 0:
        lines = stderr.decode("utf-8", "replace").strip().splitlines()
        how = (
            f"killed by signal {-process.returncode}" if process.returncode < 0 else f"exit status {process.returncode}"
        )
        raise ProbeError("failed", f"{how}: {_excerpt(lines[0])}" if lines else how)
    return parse_number(stdout.decode("utf-8", "replace"))


@dataclass(frozen=True)
class _Limits:
    deadline: float  # time.monotonic()
    timeout: float
    cancel: threading.Event | None

    def check(self, process: subprocess.Popen[bytes]) -> float:
        """The time left; kills the command's group and raises when it is cancelled or out of time."""
        if self.cancel is not None and self.cancel.is_set():
            _kill_group(process)
            raise ProbeError("timeout", "cancelled: the probe is stopping")
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            _kill_group(process)
            raise ProbeError("timeout", f"no answer within {self.timeout:g} s; killed")
        return min(CANCEL_CHECK_SECONDS, remaining)


def _bounded_output(process: subprocess.Popen[bytes], limits: _Limits) -> tuple[bytes, bytes]:
    """The command's stdout and stderr once it has exited. Either growing past MAX_OUTPUT_BYTES kills it: a
    probe prints a number, and reading everything a runaway command prints would take all the memory."""
    pipes = [stream.fileno() for stream in (process.stdout, process.stderr) if stream is not None]
    outputs = {fd: bytearray() for fd in pipes}
    with selectors.DefaultSelector() as selector:
        for fd in outputs:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            for key, _ in selector.select(limits.check(process)):
                chunk = os.read(key.fd, READ_CHUNK)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                outputs[key.fd] += chunk
                if len(outputs[key.fd]) > MAX_OUTPUT_BYTES:
                    _kill_group(process)
                    raise ProbeError("failed", f"printed more than {MAX_OUTPUT_BYTES // 1024} KiB; killed")
    while process.poll() is None:  # both pipes closed, but the command may still run
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(limits.check(process))
    stdout, stderr = pipes
    return bytes(outputs[stdout]), bytes(outputs[stderr])


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the command and everything it started, then reap it so that no zombie is left behind."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# --- serial ------------------------------------------------------------------------------------------------


def parse_serial_line(line: str) -> float:
    """The number on one meter line such as the Aviosys 8870's `00.1A`."""
    match = _SERIAL_LINE_RE.fullmatch(line)
    if match is None:
        raise ProbeError("parse", f"unexpected line {_excerpt(line)!r}")
    return float(match.group(1))


class SerialMeter:
    """A line-oriented serial meter, read on demand while it streams lines on its own.

    The port stays open between readings, so the meter's lines queue up in the kernel and a reading takes the
    newest complete one without waiting for the next. After any port error the port is closed and the next
    reading reopens it: that is how an unplugged and replugged USB meter comes back.
    """

    def __init__(self, port: str, baud: int) -> None:
        self.port = port
        self.baud = baud
        self._connection: serial.Serial | None = None
        self._buffer = b""
        # False until a line end has been seen since opening: the bytes before it may be the tail of a line.
        self._synced = False

    def read(self, timeout: float, cancel: threading.Event | None = None) -> float:
        """The value on the latest complete line, waiting up to `timeout` seconds for one."""
        deadline = time.monotonic() + timeout
        try:
            port = self._connection if self._connection is not None else self._open()
            self._buffer += port.read(port.in_waiting)  # everything queued since the last reading
            while (line := self._latest_line()) is None:
                if cancel is not None and cancel.is_set():
                    raise ProbeError("timeout", "cancelled: the probe is stopping")
                if time.monotonic() >= deadline:
                    raise ProbeError("timeout", f"{self.port}: no complete line within {timeout:g} s")
                self._buffer += port.read(max(1, port.in_waiting))  # blocks up to CANCEL_CHECK_SECONDS
        except (serial.SerialException, OSError, termios.error) as exc:
            self.close()
            raise ProbeError("unavailable", describe_error(self.port, exc)) from None
        return parse_serial_line(line)

    def close(self) -> None:
        """Release the port; the next reading reopens it."""
        if self._connection is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                self._connection.close()
            self._connection = None

    def _open(self) -> serial.Serial:
        # Exclusively, as VE.Direct ports are: another reader would take some of the meter's lines.
        self._connection = serial.Serial(self.port, self.baud, timeout=CANCEL_CHECK_SECONDS, exclusive=True)
        self._buffer, self._synced = b"", False
        return self._connection

    def _latest_line(self) -> str | None:
        """Take the newest non-blank complete line out of the buffer, keeping an unfinished one for later."""
        complete, newline, partial = self._buffer.rpartition(b"\n")
        if not newline:
            if len(self._buffer) > SERIAL_MAX_LINE:
                self._buffer, self._synced = b"", False
            return None
        lines = complete.split(b"\n")
        if not self._synced:
            lines, self._synced = lines[1:], True
        self._buffer = partial
        text = [stripped for raw in lines if (stripped := raw.strip())]
        return text[-1].decode("ascii", "replace") if text else None


# --- 1-Wire and files --------------------------------------------------------------------------------------


def w1_slave_path(path: str, devices_dir: Path = W1_DEVICES_DIR) -> Path:
    """The `w1_slave` file of a sensor given as its id (`28-0316a2795eff`), its directory or the file."""
    if "/" not in path:
        return devices_dir / path / "w1_slave"
    candidate = Path(path)
    return candidate / "w1_slave" if candidate.is_dir() else candidate


def read_w1(path: str, devices_dir: Path = W1_DEVICES_DIR) -> float:
    """A DS18B20's temperature in °C, from the kernel's two-line `w1_slave` report.

    The first line ends in YES only when the CRC matched; the second carries `t=` in millidegrees. A bad CRC
    and the power-on value 85 °C are failures, never temperatures: PvMonit graphed both as real spikes.
    """
    file = w1_slave_path(path, devices_dir)
    text = _read_text(file)
    lines = text.splitlines()
    if len(lines) < 2:
        raise ProbeError("parse", f"{file}: expected two lines, got {_excerpt(text)!r}")
    if not lines[0].rstrip().endswith("YES"):
        raise ProbeError("failed", f"{file}: CRC check failed")
    match = _W1_TEMPERATURE_RE.search(lines[1])
    if match is None:
        raise ProbeError("parse", f"{file}: no t= in {_excerpt(lines[1])!r}")
    millidegrees = int(match.group(1))
    if millidegrees == W1_RESET_MILLIDEGREES:
        raise ProbeError("failed", f"{file}: 85 °C is the sensor's power-on value, not a reading")
    return millidegrees / 1000


def read_file(path: str) -> float:
    """The first number in a file, such as a sysfs attribute; units are the config's `scale`, not ours."""
    return parse_number(_read_text(Path(path)))


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        # A 1-Wire sensor's directory disappears when it is unplugged: the hardware is gone, not broken.
        raise ProbeError("unavailable", f"{file}: no such file") from None
    except OSError as exc:
        raise ProbeError("failed", f"{file}: {exc.strerror or exc}") from None


# --- calibration and the runner ----------------------------------------------------------------------------


def calibrate(config: ProbeConfig, raw: float) -> float:
    """raw × scale + offset (PvMonit's sensor correction), rejected outside the plausibility bounds.

    The bounds apply to the calibrated value, the one users know, and `power_max` to the power it makes
    (amperes × power_voltage): an implausible reading is dropped rather than published, as PvMonit's
    consumption ceiling (`$CONSO_PLAFOND`, in watts) did.
    """
    value = raw * config.scale + config.offset
    if not math.isfinite(value):  # `1e999` parses as infinity; no sensor measures that
        raise ProbeError("parse", f"{raw:g} is not a finite number")
    if config.min is not None and value < config.min:
        raise ProbeError("out_of_range", f"{value:g} is below the minimum {config.min:g}")
    if config.max is not None and value > config.max:
        raise ProbeError("out_of_range", f"{value:g} is above the maximum {config.max:g}")
    if config.power_voltage is not None and not math.isfinite(value * config.power_voltage):
        raise ProbeError("out_of_range", f"{value:g} A × {config.power_voltage:g} V is not a finite power")
    if config.power_max is not None and config.power_voltage is not None:
        watts = value * config.power_voltage
        if watts > config.power_max:
            raise ProbeError("out_of_range", f"{value:g} A × {config.power_voltage:g} V = {watts:g} W is above "
                                             f"power_max {config.power_max:g} W")
    return value


class ProbeRunner(Worker):
    """Reads one probe every `interval` seconds on its own daemon thread and records it in the state.

    Health changes are logged once (a WARNING when the probe starts failing, an INFO when it reads again), not
    at every retry. Nothing a probe does ends the thread: unexpected exceptions are logged and counted as
    `failed`.

    `stop()` ends the wait between readings at once and kills a running command within CANCEL_CHECK_SECONDS;
    only a file read stuck in the kernel (a hung 1-Wire bus) can outlast its timeout.
    """

    def __init__(self, config: ProbeConfig, state: State) -> None:
        self.config = config
        self._state = state
        super().__init__(f"probe-{config.name}", self._run)
        self._meter = SerialMeter(config.port, config.baud) if config.type == "serial" else None
        self._failing = False
        self._unexpected_logged = False

    def poll(self) -> None:
        """Take one reading, calibrate it and record it, or record why it failed. Never raises."""
        name = self.config.name
        try:
            value = calibrate(self.config, self._read_raw())
        except ProbeError as exc:
            kind, message = exc.kind, exc.message
        except Exception as exc:  # a probe bug must not end the thread; logged with its traceback, once
            if not self._unexpected_logged:
                logger.exception("probe %s: unexpected error while reading", name)
                self._unexpected_logged = True
            kind, message = "failed", f"unexpected error: {exc!r}"
        else:
            self._state.record_probe(name, value)
            self._unexpected_logged = False
            if self._failing:
                self._failing = False
                logger.info("probe %s: reading again (%g)", name, value)
            return
        if self._stop.is_set():
            return  # cut short by stop(): not the probe's failure
        self._state.record_probe(name, None, kind, message)
        if self._failing:
            logger.debug("probe %s: still failing: %s: %s", name, kind, message)
        else:
            self._failing = True
            logger.warning("probe %s failing: %s: %s", name, kind, message)

    def _read_raw(self) -> float:
        config = self.config
        if self._meter is not None:
            return self._meter.read(config.timeout, self._stop)
        if config.type == "command":
            return read_command(config.command, config.timeout, self._stop)
        if config.type == "w1":
            return read_w1(config.path)
        return read_file(config.path)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    self.poll()
                except Exception as exc:  # noqa: BLE001 - recording or logging failed: the loop must go on
                    logger.error("probe %s: unexpected error, reading again at the next interval: %s",  # noqa: TRY400
                                 self.config.name, escape_control(repr(exc)))
                self._stop.wait(max(0.0, started + self.config.interval - time.monotonic()))
        finally:
            if self._meter is not None:
                self._meter.close()
