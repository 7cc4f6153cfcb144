"""One reader thread per VE.Direct port: chunked reads, reconnect with capped backoff, `auto` discovery.

A reader never dies: every failure (missing port, permission, unplug, silence, garbage) becomes a state
change that is logged once, and the reader retries. A failing port never delays another's reading; only
`auto` readers wait for each other, as one scan at a time opens the candidate ports.
"""

import glob
import logging
import os
import termios
import threading
import time
from collections.abc import Callable, Collection, Sequence

import serial

from pvmonit_exporter.config import DEFAULT_AUTO_PORT_PATTERNS, DeviceConfig
from pvmonit_exporter.state import State
from pvmonit_exporter.vedirect.framing import Block, Decoder

log = logging.getLogger(__name__)

BAUD_RATE = 19200
# pyserial's timeout bounds a whole read(): a block reaches the state at most this long after its last byte.
READ_TIMEOUT = 0.1
READ_SIZE = 4096
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
# Data flowing for this long without one valid block means the wrong device or the wrong speed.
GARBAGE_WARNING_AFTER = 10.0
# How long discovery listens to a candidate port: devices send a block every second.
IDENTIFY_SECONDS = 3.0
# A block with one of these names its device (a BMV-60x sends only BMV, its model).
_IDENTITY_LABELS = frozenset({"SER#", "PID", "BMV"})

SerialFactory = Callable[[str], serial.Serial]
# What opening or reading a port may raise: pyserial wraps most errors, but not termios' (a plain file).
PORT_ERRORS = (OSError, serial.SerialException, ValueError, termios.error)


def open_port(path: str) -> serial.Serial:
    """Open a VE.Direct port: 19200 8N1, no flow control, reads bounded by READ_TIMEOUT."""
    return serial.Serial(path, BAUD_RATE, bytesize=8, parity="N", stopbits=1, timeout=READ_TIMEOUT)


def describe_error(path: str, exc: BaseException) -> str:
    """The reason a port cannot be used, in words a user can act on."""
    cause = exc.__context__ if isinstance(exc.__context__, termios.error) else exc
    errno = cause.args[0] if isinstance(cause, termios.error) else getattr(exc, "errno", None)
    reasons = {
        2: "no such port (is the cable plugged in?)",
        13: "permission denied (is the user in the dialout group?)",
        16: "port busy",
        25: "not a serial port",
    }
    return f"{path}: {reasons.get(errno, str(exc))}" if isinstance(errno, int) else f"{path}: {exc}"


class PortClaims:
    """Which real ports are in use, so that discovery never opens a port another reader is reading.

    `reserve()` is for ports the configuration names (fixed device ports, serial probes): discovery never
    touches them, even while their reader is between two attempts; opening a probe's port at 19200 baud
    would change its speed under it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[str, str] = {}
        self._reserved: set[str] = set()

    def reserve(self, path: str) -> None:
        with self._lock:
            self._reserved.add(os.path.realpath(path))

    def claim(self, path: str, owner: str) -> bool:
        real = os.path.realpath(path)
        with self._lock:
            if self._owners.get(real, owner) != owner:
                return False
            self._owners[real] = owner
            return True

    def release(self, owner: str) -> None:
        with self._lock:
            for real in [r for r, o in self._owners.items() if o == owner]:
                del self._owners[real]

    def is_taken(self, path: str) -> bool:
        real = os.path.realpath(path)
        with self._lock:
            return real in self._owners or real in self._reserved


def candidate_ports(patterns: Sequence[str]) -> list[str]:
    """Paths matching `patterns`, in pattern order, each real port once."""
    seen: set[str] = set()
    ports: list[str] = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            real = os.path.realpath(path)
            if real not in seen and os.path.exists(real):
                seen.add(real)
                ports.append(path)
    return ports


def identify(path: str, opener: SerialFactory, seconds: float, stop: threading.Event) -> Block | None:
    """Listen to `path` until a block that names its device arrives; None when none does (or on `stop`)."""
    decoder = Decoder()
    deadline = time.monotonic() + seconds
    try:
        with opener(path) as port:
            while time.monotonic() < deadline and not stop.is_set():
                for block in decoder.feed(port.read(READ_SIZE)):
                    if not _IDENTITY_LABELS.isdisjoint(block):
                        return block
    except PORT_ERRORS:
        return None
    return None


class Discovery:
    """Finds the port of a `port: auto` device.

    A device with `serial_number` takes the port whose device sends that SER#. One without takes a port whose
    device sends no SER#, or a SER# that no other entry asks for — never the port another entry is waiting
    for. Ports the configuration names elsewhere are never opened (see PortClaims.reserve).
    """

    def __init__(self, claims: PortClaims, patterns: Sequence[str] = DEFAULT_AUTO_PORT_PATTERNS,
                 opener: SerialFactory = open_port, identify_seconds: float = IDENTIFY_SECONDS,
                 wanted_serials: Collection[str] = ()) -> None:
        self.claims, self.patterns, self.opener = claims, tuple(patterns), opener
        self.identify_seconds = identify_seconds
        self.wanted_serials = frozenset(wanted_serials)
        self._lock = threading.Lock()  # one scan at a time: two scans would fight over the same ports

    def find(self, device: DeviceConfig, stop: threading.Event) -> str | None:
        while not self._lock.acquire(timeout=READ_TIMEOUT):
            if stop.is_set():
                return None
        try:
            for path in candidate_ports(self.patterns):
                if stop.is_set():
                    return None
                if self.claims.is_taken(path):
                    continue
                block = identify(path, self.opener, self.identify_seconds, stop)
                if block is not None and self._matches(device, block.get("SER#")) and self.claims.claim(
                    path, device.name
                ):
                    return path
            return None
        finally:
            self._lock.release()

    def _matches(self, device: DeviceConfig, serial_number: str | None) -> bool:
        if device.serial_number is not None:
            return serial_number == device.serial_number
        return serial_number not in self.wanted_serials


class SerialReader:
    """Reads one device's port forever (until `stop()`), feeding valid blocks into the state."""

    def __init__(self, device: DeviceConfig, state: State, discovery: Discovery,
                 opener: SerialFactory = open_port) -> None:
        self.device, self.state, self.discovery, self.opener = device, state, discovery, opener
        self.claims = discovery.claims
        self.decoder = Decoder()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"serial-{device.name}", daemon=True)
        self._status = ""
        self.garbage_warning_after = GARBAGE_WARNING_AFTER

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to stop without waiting: stopping many readers then takes one wait, not many."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _set_status(self, port: str | None, *, connected: bool, error: str | None, level: int) -> None:
        """Publish the connection state; log it only when it changes (not at every retry)."""
        self.state.set_connection(self.device.name, port, connected=connected, error=error)
        status = error or (f"reading {port}" if connected else "disconnected")
        if status != self._status:
            self._status = status
            log.log(level, "device %s: %s", self.device.name, status)

    def _run(self) -> None:
        backoff = BACKOFF_START
        while not self._stop.is_set():
            try:
                path = self._resolve()
                if path is not None and self._read(path):
                    backoff = BACKOFF_START
            except Exception:  # a reader must never die: log the surprise and retry
                log.exception("device %s: unexpected error in the reader; retrying", self.device.name)
            finally:
                self.claims.release(self.device.name)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _resolve(self) -> str | None:
        if self.device.port != "auto":
            if not self.claims.claim(self.device.port, self.device.name):
                self._set_status(None, connected=False, level=logging.WARNING,
                                 error=f"{self.device.port}: already read by another device")
                return None
            return self.device.port
        path = self.discovery.find(self.device, self._stop)
        if path is None:
            wanted = f"serial number {self.device.serial_number}" if self.device.serial_number else "a device"
            self._set_status(None, connected=False, level=logging.WARNING,
                             error=f"auto: no port answers with {wanted}")
        return path

    def _read(self, path: str) -> bool:
        """Read `path` until it fails or the reader stops; True when at least one block arrived."""
        try:
            port = self.opener(path)
        except PORT_ERRORS as exc:
            self._set_status(None, connected=False, error=describe_error(path, exc), level=logging.WARNING)
            return False
        self.decoder.reset()
        got_block = False
        garbage_since: float | None = None
        self._set_status(path, connected=True, error=None, level=logging.INFO)
        try:
            with port:
                while not self._stop.is_set():
                    data = port.read(READ_SIZE)
                    if not data:
                        continue
                    blocks = self.decoder.feed(data)
                    self.state.record_blocks(self.device.name, blocks, self.decoder.stats)
                    if blocks:
                        got_block, garbage_since = True, None
                        self._set_status(path, connected=True, error=None, level=logging.INFO)
                        continue
                    now = time.monotonic()
                    garbage_since = garbage_since or now
                    if now - garbage_since > self.garbage_warning_after:
                        self._set_status(path, connected=True, level=logging.WARNING,
                                         error=f"{path}: data but no valid block (wrong device or speed?)")
        except PORT_ERRORS as exc:
            self._set_status(None, connected=False, level=logging.WARNING,
                             error=f"{path}: disconnected ({exc.__class__.__name__}: {exc})")
        self.decoder.reset()
        return got_block
