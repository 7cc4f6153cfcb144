"""HEX requests over an open port that also carries the text stream, waiting for each answer (the `hex`
command). The decisions — one request in flight, timeout, retries, matching — are the pure HexSession's; this
is the loop around it that writes, reads and decodes.
"""

import time
from collections.abc import Sequence
from typing import Protocol, TypeVar

from pvmonit_exporter.vedirect import hex as vehex
from pvmonit_exporter.vedirect.framing import Block, Decoder
from pvmonit_exporter.vedirect.hex_session import HexSession, Outcome, Request, Result, get
from pvmonit_exporter.vedirect.history import HistoryDay, HistoryTotal
from pvmonit_exporter.vedirect.registers import HISTORY_TOTAL, REGISTERS, decode_value, history_day_register

R = TypeVar("R")


class Port(Protocol):
    """What is used of a pyserial port (a serial device or a `socket://` URL)."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...


class HexLink:
    """Requests to the device on `port`, one at a time. Text blocks that arrive meanwhile are kept in
    `blocks` (the text protocol goes on between requests)."""

    def __init__(self, port: Port, session: HexSession | None = None) -> None:
        self.port = port
        self.session = session or HexSession()
        self.decoder = Decoder(keep_hex=True)
        self.blocks: list[Block] = []
        self.async_replies: list[vehex.RegisterReply] = []

    def request(self, requests: Sequence[Request]) -> list[Outcome]:
        """Send `requests` in order, each after the previous one ended; their outcomes, in the same order."""
        self.session.submit(*requests)
        outcomes: list[Outcome] = []
        while len(outcomes) < len(requests):
            to_send, ended = self.session.due(time.monotonic())
            outcomes += ended
            if to_send is not None:
                self.port.write(to_send)
            # Return as soon as anything arrives: a reply is short, and the port's timeout bounds the wait.
            data = self.port.read(max(1, self.port.in_waiting))
            if not data:
                continue
            self.blocks += self.decoder.feed(data)
            answered, async_replies = self.session.receive_messages(self.decoder.take_hex_messages())
            outcomes += answered
            self.async_replies += async_replies
        return outcomes

    def history(self) -> tuple[Outcome, HistoryTotal | None, list[HistoryDay]]:
        """The totals record, then every day the charger says it holds (today first). Days it refuses are
        left out. The first outcome tells why there is no history when the totals are None."""
        (total_outcome,) = self.request([get(HISTORY_TOTAL)])
        total = _record(total_outcome, HistoryTotal)
        if total is None:
            return total_outcome, None, []
        outcomes = self.request([get(history_day_register(days_ago)) for days_ago in range(total.days_to_read)])
        days = [day for outcome in outcomes if (day := _record(outcome, HistoryDay)) is not None]
        return total_outcome, total, days


def _record(outcome: Outcome, kind: type[R]) -> R | None:
    if outcome.result is not Result.OK or not isinstance(outcome.reply, vehex.RegisterReply):
        return None
    value, _ = decode_value(REGISTERS[outcome.reply.register], outcome.reply.data)
    return value if isinstance(value, kind) else None
