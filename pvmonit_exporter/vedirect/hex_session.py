"""Requests to one device over HEX: one in flight, a timeout, a bounded retry, replies matched by what was
asked. Pure: the caller passes the time, sends the bytes and feeds in the messages the decoder cut out.

A device may answer late (after a retry went out), send async messages in between, or repeat an old reply:
a reply counts only when it answers the request in flight (same command, same register id); anything else is
an async update or a stale reply, never a result. The device sends nothing back when it has no HEX at all:
that is a timeout after the retries, and the caller decides what it means.
"""

import enum
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from pvmonit_exporter.vedirect import hex as vehex

# A device answers within tens of milliseconds; at 19200 baud a 34-byte record takes 40 ms to send.
DEFAULT_TIMEOUT = 0.5
# go-victron retries a get up to 8 times; a few are enough on a cable, and a device without HEX costs little.
DEFAULT_ATTEMPTS = 3


class Kind(enum.Enum):
    PING = "ping"
    APP_VERSION = "app version"
    PRODUCT_ID = "product id"
    GET = "get"
    SET = "set"


@dataclass(frozen=True)
class Request:
    kind: Kind
    register: int | None = None  # for GET and SET
    data: bytes = b""  # for SET: the value

    def encode(self) -> bytes:
        if self.kind is Kind.SET and self.register is not None:
            return vehex.set_register(self.register, self.data)
        if self.register is not None:
            return vehex.get(self.register)
        return {Kind.PING: vehex.ping, Kind.APP_VERSION: vehex.app_version,
                Kind.PRODUCT_ID: vehex.product_id}[self.kind]()

    def answered_by(self, reply: vehex.Reply) -> bool:
        if isinstance(reply, vehex.RefusedReply):
            return True  # "unknown command" or "frame error" can only be about what is in flight
        if self.kind is Kind.PING:
            return isinstance(reply, vehex.PingReply)
        if self.kind in (Kind.GET, Kind.SET):
            answer = vehex.Response.GET if self.kind is Kind.GET else vehex.Response.SET
            return (isinstance(reply, vehex.RegisterReply) and reply.command is answer
                    and reply.register == self.register)
        return isinstance(reply, vehex.DoneReply)


def get(register: int) -> Request:
    return Request(Kind.GET, register)


def set_(register: int, data: bytes) -> Request:
    """A set of a register the exporter may write (`registers.WRITABLE`; encoding refuses any other)."""
    return Request(Kind.SET, register, data)


PING = Request(Kind.PING)


class Result(enum.Enum):
    """How a request ended: the `result` label of vedirect_hex_requests_total."""

    OK = "ok"
    UNKNOWN_ID = "unknown_id"
    NOT_SUPPORTED = "not_supported"
    PARAMETER_ERROR = "parameter_error"
    REFUSED = "refused"  # unknown command, frame error, other flags
    TIMEOUT = "timeout"


_FLAG_RESULTS = {0x01: Result.UNKNOWN_ID, 0x02: Result.NOT_SUPPORTED, 0x04: Result.PARAMETER_ERROR}


@dataclass(frozen=True)
class Outcome:
    request: Request
    result: Result
    reply: vehex.Reply | None = None  # None after a timeout
    attempts: int = 1

    @property
    def error(self) -> str | None:
        """The words for a failed request: `not supported`, `timeout`…; None when it succeeded."""
        if self.result is Result.OK:
            return None
        if self.result is Result.TIMEOUT:
            return "timeout"
        if isinstance(self.reply, vehex.RegisterReply):
            return self.reply.error
        if isinstance(self.reply, vehex.RefusedReply):
            return self.reply.error
        return str(self.result.value)


def _result_of(reply: vehex.Reply) -> Result:
    if isinstance(reply, vehex.RefusedReply):
        return Result.REFUSED
    if isinstance(reply, vehex.RegisterReply) and reply.flags:
        return _FLAG_RESULTS.get(reply.flags, Result.REFUSED)
    return Result.OK


@dataclass
class _InFlight:
    request: Request
    sent_at: float
    attempts: int


class HexSession:
    """The queue of requests to one device and the one in flight."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT, attempts: int = DEFAULT_ATTEMPTS) -> None:
        self.timeout, self.attempts = timeout, attempts
        self._queue: deque[Request] = deque()
        self._in_flight: _InFlight | None = None
        self.stale_replies = 0

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing in flight."""
        return self._in_flight is None and not self._queue

    def submit(self, *requests: Request) -> None:
        self._queue.extend(requests)

    def clear(self) -> None:
        """Forget everything (the port was closed): nothing in flight can be answered any more."""
        self._queue.clear()
        self._in_flight = None

    def due(self, now: float) -> tuple[bytes | None, list[Outcome]]:
        """What to write now (a new request, a retry, or None) and the requests that timed out for good."""
        ended: list[Outcome] = []
        flight = self._in_flight
        if flight is not None and now - flight.sent_at >= self.timeout:
            if flight.attempts < self.attempts:
                flight.sent_at, flight.attempts = now, flight.attempts + 1
                return flight.request.encode(), ended
            ended.append(Outcome(flight.request, Result.TIMEOUT, None, flight.attempts))
            self._in_flight = flight = None
        if flight is None and self._queue:
            request = self._queue.popleft()
            self._in_flight = _InFlight(request, now, 1)
            return request.encode(), ended
        return None, ended

    def receive(self, reply: vehex.Reply) -> Outcome | None:
        """A message from the device: the outcome of the request in flight when it answers it; None for an
        async message (the caller applies it) or a stale reply (counted, ignored)."""
        flight = self._in_flight
        if flight is not None and flight.request.answered_by(reply):
            self._in_flight = None
            return Outcome(flight.request, _result_of(reply), reply, flight.attempts)
        if not (isinstance(reply, vehex.RegisterReply) and reply.command is vehex.Response.ASYNC):
            self.stale_replies += 1
        return None

    def receive_messages(self, bodies: Iterable[bytes]) -> tuple[list[Outcome], list[vehex.RegisterReply]]:
        """The HEX message bodies the decoder cut out, in order: the outcomes they end, and the async register
        messages among them (for the caller to apply). A body that does not parse is skipped."""
        outcomes: list[Outcome] = []
        async_replies: list[vehex.RegisterReply] = []
        for body in bodies:
            reply = vehex.parse_message(body)
            if reply is None:
                continue
            outcome = self.receive(reply)
            if outcome is not None:
                outcomes.append(outcome)
            elif isinstance(reply, vehex.RegisterReply) and reply.command is vehex.Response.ASYNC:
                async_replies.append(reply)
        return outcomes, async_replies
