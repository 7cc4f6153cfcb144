"""One reader thread per VE.Direct port: chunked reads, reconnect with capped backoff, `auto` discovery.

A reader never dies: every failure (missing port, permission, unplug, silence, garbage) becomes a state
change that is logged once, and the reader retries. A failing port never delays another's reading; only
`auto` readers wait for each other, as one scan at a time opens the candidate ports.
"""

import errno
import fcntl
import glob
import logging
import os
import termios
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import serial

from pvmonit_exporter.config import DEFAULT_AUTO_PORT_PATTERNS, DeviceConfig
from pvmonit_exporter.config.schema import hex_timeout, is_remote
from pvmonit_exporter.safe_text import escape_control
from pvmonit_exporter.sources.block_watch import BlockWatch, NoValidBlock, Report
from pvmonit_exporter.sources.hex_plan import Conversation, Stage
from pvmonit_exporter.sources.load_link import LoadLink
from pvmonit_exporter.state import State
from pvmonit_exporter.vedirect.device import device_kind, names_serial_number
from pvmonit_exporter.vedirect.framing import Block, Decoder
from pvmonit_exporter.vedirect.hex_session import HexSession
from pvmonit_exporter.vedirect.products import parse_pid
from pvmonit_exporter.workers import Backoff, Worker, capped_doubling

log = logging.getLogger(__name__)

BAUD_RATE = 19200
# pyserial's timeout bounds a whole read(): a block reaches the state at most this long after its last byte.
READ_TIMEOUT = 0.1
READ_SIZE = 4096
BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
# A remote port (a TCP bridge) that sends nothing this long is reconnected: a bridge that lost power or its
# network leaves a half-open connection that would otherwise stay silent for ever.
REMOTE_SILENCE_RECONNECT = 15.0
# How long discovery listens to a candidate port: devices send a block every second.
IDENTIFY_SECONDS = 3.0
# A candidate port that gave discovery nothing it wanted is left alone this long, doubling up to the maximum:
# a scan opens ports other programs may use. A newly plugged cable (a new device node) is looked at at once.
SCAN_RETRY_START = 30.0
SCAN_RETRY_MAX = 600.0
# A block with one of these names its device (a BMV-60x sends only BMV, its model).
_IDENTITY_LABELS = frozenset({"SER#", "PID", "BMV"})

SerialFactory = Callable[[str], serial.Serial]
# What opening or reading a port may raise: pyserial wraps most errors, but not termios' (a plain file).
PORT_ERRORS = (OSError, serial.SerialException, ValueError, termios.error)


class ExclusiveSerial(serial.Serial):
    """A serial port no other program can read beside us, as far as the kernel allows.

    pyserial's `exclusive` takes flock() before any setting changes: another opener that asks for the lock
    (another exporter, `read`, `hex`) fails. flock is advisory, though: a program that does not ask (PvMonit's
    vedirect.py, a plain `serial.Serial()`) would still open the port and take part of the blocks. TIOCEXCL
    closes that gap: the kernel refuses any further open() of the terminal with EBUSY — except to root (a
    process with CAP_SYS_ADMIN), which it lets through. The flag belongs to the terminal, not to our
    descriptor: it is cleared on close, or the next opener (ourselves after a reconnect) would be refused.
    """

    def open(self) -> None:
        super().open()
        try:
            fcntl.ioctl(self.fileno(), termios.TIOCEXCL)
        except OSError:
            super().close()
            raise

    def close(self) -> None:
        if self.is_open:
            with suppress(OSError):  # the port is gone (unplugged): nothing left to clear
                fcntl.ioctl(self.fileno(), termios.TIOCNXCL)
        super().close()


def open_port(path: str) -> serial.Serial:
    """Open a VE.Direct port: 19200 8N1, no flow control, reads bounded by READ_TIMEOUT.

    Exclusively (see ExclusiveSerial): two readers of one port would each get part of the blocks, and another
    program holding the port makes this fail instead of stealing its bytes. A remote port (`socket://`,
    `rfc2217://`) is a TCP connection: a bridge serves one client at a time itself.
    """
    if is_remote(path):
        port: serial.Serial = serial.serial_for_url(path, BAUD_RATE, bytesize=8, parity="N", stopbits=1,
                                                    timeout=READ_TIMEOUT)
        return port
    return ExclusiveSerial(path, BAUD_RATE, bytesize=8, parity="N", stopbits=1, timeout=READ_TIMEOUT,
                           exclusive=True)


_IN_USE = (errno.EAGAIN, errno.EBUSY)  # flock held by another opener; TIOCEXCL set by another program


def describe_error(path: str, exc: BaseException) -> str:
    """The reason a port cannot be used, in words a user can act on."""
    if is_remote(path):  # pyserial says "Could not open port <url>: [Errno 111] Connection refused"
        reason = str(exc).removeprefix(f"Could not open port {path}: ")
        return f"{path}: cannot connect ({reason})"
    cause = exc.__context__ if isinstance(exc.__context__, termios.error) else exc
    code = cause.args[0] if isinstance(cause, termios.error) else getattr(exc, "errno", None)
    if code in _IN_USE:
        return f"{path} is in use by another program"
    reasons = {
        errno.ENOENT: "no such port (is the cable plugged in?)",
        errno.EACCES: "permission denied (is the user in the dialout group?)",
        errno.ENOTTY: "not a serial port",
    }
    return f"{path}: {reasons.get(code, str(exc))}" if isinstance(code, int) else f"{path}: {exc}"


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
        """Kept as given and resolved at each look: a by-id link may appear only after start-up."""
        with self._lock:
            self._reserved.add(path)

    def claim(self, path: str, owner: str) -> bool:
        real = _real(path)
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
        real = _real(path)
        with self._lock:
            return real in self._owners or any(_real(r) == real for r in self._reserved)


def _real(path: str) -> str:
    """What identifies a port: the device node behind its links, or a remote port's URL as written."""
    return path if is_remote(path) else os.path.realpath(path)


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


@contextmanager
def _borrowed(path: str, opener: SerialFactory) -> Iterator[serial.Serial]:
    """`opener(path)`, with the port's line settings (speed above all) put back as they were afterwards.

    Discovery opens ports that may belong to something else (a meter at 9600 baud): it must leave them as
    it found them. The settings are read through a descriptor of our own before pyserial changes them, and
    written back only when our open succeeded: a port another program holds is not touched at all."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        saved = termios.tcgetattr(fd)
        with opener(path) as port:
            try:
                yield port
            finally:
                termios.tcsetattr(fd, termios.TCSANOW, saved)
    finally:
        os.close(fd)


def identify(path: str, opener: SerialFactory, seconds: float, stop: threading.Event) -> Block | None:
    """Listen to `path` until a block that names its device arrives; None when none does (or on `stop`, or
    when another program holds the port). The port's settings are restored afterwards."""
    decoder = Decoder()
    deadline = time.monotonic() + seconds
    try:
        with _borrowed(path, opener) as port:
            while time.monotonic() < deadline and not stop.is_set():
                for block in decoder.feed(port.read(READ_SIZE)):
                    if not _IDENTITY_LABELS.isdisjoint(block):
                        return block
    except PORT_ERRORS:
        return None
    return None


@dataclass(frozen=True)
class _Heard:
    """What a scan heard on a candidate port, and until when that answer stands."""

    node: tuple[int, int, int]  # device number, inode, change time: a replugged cable is a new node
    block: Block | None  # the block that named the device; None: nothing did (silence, garbage, in use)
    retry_at: float
    listens: int  # listens in a row on this node: each one leaves the port alone twice as long


def _node(path: str) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_rdev, info.st_ino, info.st_ctime_ns


class Discovery:
    """Finds the port of a `port: auto` device.

    A device with `serial_number` takes the port whose device sends that SER#. One without takes a port whose
    device sends no SER#, or a SER# that no other entry asks for — never the port another entry is waiting
    for. Ports the configuration names elsewhere are never opened (see PortClaims.reserve), nor ports another
    program holds; what a port said is remembered (SCAN_RETRY_START, doubling), so that every `auto` device
    shares one listen and a scan that finds nothing does not reopen every port every half minute.
    """

    def __init__(self, claims: PortClaims, patterns: Sequence[str] = DEFAULT_AUTO_PORT_PATTERNS,
                 opener: SerialFactory = open_port, identify_seconds: float = IDENTIFY_SECONDS,
                 wanted_serials: Collection[str] = ()) -> None:
        self.claims, self.patterns, self.opener = claims, tuple(patterns), opener
        self.identify_seconds = identify_seconds
        self.wanted_serials = frozenset(wanted_serials)
        self._lock = threading.Lock()  # one scan at a time: two scans would fight over the same ports
        self._heard: dict[str, _Heard] = {}  # by real path; only touched under _lock

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
                heard = self._listen(path, stop)
                if heard is None or heard.block is None or not self._matches(device, heard.block.get("SER#")):
                    continue
                if self.claims.claim(path, device.name):
                    # Whatever the port says next is checked by its reader; once released, listen afresh.
                    self._heard.pop(os.path.realpath(path), None)
                    return path
            return None
        finally:
            self._lock.release()

    def _listen(self, path: str, stop: threading.Event) -> _Heard | None:
        """What `path` says: remembered while that still stands, else listened to now."""
        real = os.path.realpath(path)
        node = _node(real)
        if node is None:
            return None
        known = self._heard.get(real)
        if known is not None and known.node == node and time.monotonic() < known.retry_at:
            return known
        block = identify(path, self.opener, self.identify_seconds, stop)
        if stop.is_set():
            return None
        listens = known.listens + 1 if known is not None and known.node == node else 1
        wait = capped_doubling(listens, SCAN_RETRY_START, SCAN_RETRY_MAX)
        heard = _Heard(node, block, time.monotonic() + wait, listens)
        self._heard[real] = heard
        return heard

    def belongs(self, device: DeviceConfig, block: Block) -> bool | None:
        """Whether `block`, read on the port found for `device`, comes from that device: True; False when it
        names another (another SER#, or a SER# another entry asks for); None when it cannot tell."""
        if device.serial_number is not None:
            return names_serial_number(block, device.serial_number)
        return False if block.get("SER#") in self.wanted_serials else None

    def _matches(self, device: DeviceConfig, serial_number: str | None) -> bool:
        if device.serial_number is not None:
            return serial_number == device.serial_number
        return serial_number not in self.wanted_serials


@dataclass
class _Connection:
    """What reading one open port has learnt so far (`SerialReader._read`)."""

    path: str
    checked: bool  # found by a scan: blocks must name the configured serial number
    verified: bool  # a block named it (or there is none to check)
    watch: BlockWatch
    conversation: Conversation
    remote: bool
    last_data: float
    kind: str = "unknown"
    got_block: bool = False


def _latest_kind(blocks: Sequence[Block], kind: str) -> str:
    """The device kind the last identifying block in `blocks` says, else `kind`."""
    for block in blocks:
        if "PID" in block or "BMV" in block:
            kind = device_kind(parse_pid(block.get("PID", "")), block)
    return kind


class SerialReader(Worker):
    """Reads one device's port forever (until `stop()`), feeding valid blocks into the state."""

    def __init__(self, device: DeviceConfig, state: State, discovery: Discovery,
                 opener: SerialFactory = open_port, load_link: LoadLink | None = None) -> None:
        """`load_link`: control's way to the device's load output, carried in this reader's HEX session."""
        self.device, self.state, self.discovery, self.opener = device, state, discovery, opener
        self.load_link = load_link
        self.claims = discovery.claims
        self.decoder = Decoder(keep_hex=True)  # async messages update readings; replies answer our requests
        self._no_hex_logged = False
        super().__init__(f"serial-{device.name}", self._run)
        self._status = ""
        self._lost: str | None = None  # why the device was dropped from its port, while it is looked for

    def _set_status(self, port: str | None, *, connected: bool, error: str | None, level: int,
                    message: str | None = None) -> None:
        """Publish the connection state; log it (or `message`) only when it changes, not at every retry."""
        self.state.set_connection(self.device.name, port, connected=connected, error=error)
        status = message or error or (f"reading {port}" if connected else "disconnected")
        if status != self._status:
            self._status = status
            log.log(level, "device %s: %s", self.device.name, status)

    def _run(self) -> None:
        backoff = Backoff(BACKOFF_START, BACKOFF_MAX)
        while not self._stop.is_set():
            try:
                path = self._resolve()
                if path is not None and self._read(path):
                    backoff.reset()
            except Exception as exc:  # a reader must never die: the device goes down in one log line, and retries
                self._set_status(None, connected=False, level=logging.ERROR,
                                 error=f"unexpected error in the reader ({escape_control(repr(exc))}); retrying")
                log.debug("device %s: the unexpected error", self.device.name, exc_info=True)
            finally:
                self.claims.release(self.device.name)
            self._stop.wait(backoff.next_delay())

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
            # After a wrong device, its one log line stands until the device is found again.
            self._set_status(None, connected=False, level=logging.WARNING,
                             error=self._lost or f"auto: no port answers with {wanted}")
        else:
            self._lost = None
        return path

    def _read(self, path: str) -> bool:
        """Read `path` until it fails, another device shows up on it, or the reader stops; True when at least
        one block of this device arrived."""
        try:
            port = self.opener(path)
        except PORT_ERRORS as exc:
            self._set_status(None, connected=False, error=describe_error(path, exc), level=logging.WARNING)
            return False
        self.decoder.reset()
        # On a port found by a scan, blocks count only once they are known to come from the configured
        # serial number, and only while no block names another device.
        link = _Connection(
            path=path,
            checked=self.device.port == "auto",
            verified=self.device.serial_number is None,
            watch=BlockWatch(self.device.stale_timeout, time.monotonic()),
            conversation=Conversation(self.device.history, HexSession(hex_timeout(path, self.device.hex_timeout))),
            remote=is_remote(path),
            last_data=time.monotonic(),
        )
        self._set_status(path, connected=True, error=None, level=logging.INFO)
        try:
            with port:
                try:
                    while not self._stop.is_set():
                        if not self._turn(port, link):
                            break
                except PORT_ERRORS as exc:
                    # Down before the port is closed: closing a socket:// port waits 0.3 s (pyserial).
                    self._link_lost(path, exc)
        except PORT_ERRORS as exc:  # closing failed: the link is gone all the same
            self._link_lost(path, exc)
        self.decoder.reset()
        if self.load_link is not None:
            self.load_link.disconnected()
        return link.got_block

    def _turn(self, port: serial.Serial, link: _Connection) -> bool:
        """One read from the port and all that follows from it; False when this connection is to end (another
        device on the port, or a remote port silent too long)."""
        data = port.read(READ_SIZE)
        hex_before = self.decoder.stats.hex_valid
        blocks = self.decoder.feed(data) if data else []
        answers = self.decoder.stats.hex_valid - hex_before
        if link.checked and blocks:
            blocks, link.verified, other = self._own_blocks(blocks, link.verified)
            if other is not None:
                self._wrong_device(link.path, other)
                return False
        if data:
            self.state.record_blocks(self.device.name, blocks, self.decoder.stats)
        link.got_block = link.got_block or bool(blocks)
        link.kind = _latest_kind(blocks, link.kind)
        self._talk_hex(port, link.conversation, link.kind, link.got_block)
        now = time.monotonic()
        if data:
            link.last_data = now
        elif link.remote and now - link.last_data > REMOTE_SILENCE_RECONNECT:
            self._set_status(None, connected=False, level=logging.WARNING,
                             error=f"{link.path}: nothing for {REMOTE_SILENCE_RECONNECT:g} s; reconnecting")
            return False
        self._say_watch(link.path, link.watch.observe(now, len(data), len(blocks) + answers))
        return True

    def _say_watch(self, path: str, report: Report | None) -> None:
        """The silent-port rule's news in the status: a port that sends no valid block, or its recovery."""
        if isinstance(report, NoValidBlock):
            self._set_status(path, connected=True, level=logging.WARNING, error=f"{path}: {report.describe()}")
        elif report is not None:
            self._set_status(path, connected=True, error=None, level=logging.INFO,
                             message=f"{path}: {report.describe()}")

    def _link_lost(self, path: str, exc: BaseException) -> None:
        self._set_status(None, connected=False, level=logging.WARNING,
                         error=f"{path}: disconnected ({exc.__class__.__name__}: {exc})")

    def _talk_hex(self, port: serial.Serial, conversation: Conversation, kind: str, text_seen: bool) -> None:
        """One turn of the HEX conversation: take the decoder's messages, write what is due, record results."""
        link = self.load_link
        if link is not None:
            conversation.ask(link.take())
        step = conversation.step(time.monotonic(), self.decoder.take_hex_messages(), kind, text_seen)
        if link is not None:
            link.record(step.outcomes, conversation.plan.capabilities)
        if step.write is not None:
            port.write(step.write)
        if step.outcomes or step.async_replies or step.history is not None:
            self.state.record_hex(self.device.name, step.outcomes, step.async_replies, step.history)
        if conversation.plan.stage is Stage.NO_HEX and not self._no_hex_logged:
            self._no_hex_logged = True
            log.debug("device %s: no answer to HEX requests; reading its text only", self.device.name)

    def _own_blocks(self, blocks: list[Block], verified: bool) -> tuple[list[Block], bool, Block | None]:
        """The blocks that may be published: none before one names the configured serial number, and the
        first block naming another device stops the lot (returned third)."""
        own: list[Block] = []
        for block in blocks:
            verdict = self.discovery.belongs(self.device, block)
            if verdict is False:
                return own, verified, block
            verified = verified or verdict is True
            if verified:
                own.append(block)
        return own, verified, None

    def _wrong_device(self, path: str, block: Block) -> None:
        """Another device answers on this device's port: withdraw its values and look for it again."""
        self.state.withdraw_readings(self.device.name)
        found = block.get("SER#")
        other = f"serial number {found}" if found else "a device without serial number"
        instead = (f"not {self.device.serial_number}" if self.device.serial_number
                   else "which another device is configured with")
        self._lost = f"{path} now answers with {other}, {instead}; looking for it again"
        self._set_status(None, connected=False, level=logging.WARNING, error=self._lost)
