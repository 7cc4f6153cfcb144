"""What the daemon asks a device over HEX, and when. Pure: the reader passes the time and the outcomes.

Per connection: nothing until the device's first text block is published (HEX never delays a device coming
up), then one probe — the capabilities register. No answer: the device is taken to have no HEX, and is asked
again after PROBE_AGAIN_FIRST, then at doubling intervals up to PROBE_AGAIN_MAX (a device that speaks HEX but
missed the probe — a loaded machine, a busy bus at boot — must not lose its history and load output until it
is replugged; one that has none costs one unanswered question an hour). Otherwise the settings and the
charger's temperature now and every SETTINGS_INTERVAL; and when the device keeps history (capability bit 2)
and the configuration allows it, the totals and every day it holds now, then today and yesterday every
HISTORY_INTERVAL.

A charger's days are known by their day sequence number: when today's number moves on, yesterday's record
is the old today and the others shift by one, so a short read keeps the whole month in step. When the numbers
do not fit (a gap, the charger reset), the whole history is read again.
"""

import enum
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from pvmonit_exporter.vedirect import hex as vehex
from pvmonit_exporter.vedirect.hex_session import HexSession, Kind, Outcome, Request, Result, get
from pvmonit_exporter.vedirect.history import HISTORY_DAYS, HistoryDay, HistoryTotal
from pvmonit_exporter.vedirect.registers import (
    CAPABILITIES,
    CAPABILITY_HISTORY,
    HISTORY_DAY_0,
    HISTORY_TOTAL,
    REGISTERS,
    decode_value,
)
from pvmonit_exporter.workers import capped_doubling

SETTINGS_INTERVAL = 600.0  # settings and temperature: every 10 minutes
# Back-to-back writes were dropped by chargers without a 1 s gap (krahabb/esphome-victron-vedirect#6).
WRITE_GAP = 1.0
HISTORY_INTERVAL = 900.0  # today's and yesterday's records: every 15 minutes
PROBE_AGAIN_FIRST = 30.0  # no answer to the capabilities probe: ask again after this, then doubling…
PROBE_AGAIN_MAX = 3600.0  # …up to once an hour


class Stage(enum.Enum):
    WAITING = "waiting for the first block"
    PROBING = "probing"
    NO_HEX = "no HEX"
    READY = "ready"


def metric_registers(kind: str) -> tuple[int, ...]:
    """The registers behind metrics that a device of `kind` has (settings, temperature, yields, capacity)."""
    return tuple(reg.id for reg in REGISTERS.values() if reg.metric and kind in reg.kinds)


def merge_days(stored: Sequence[HistoryDay], fresh: Sequence[HistoryDay]) -> list[HistoryDay] | None:
    """The month after a short read (`fresh`: today first, then yesterday…), or None when it does not fit
    the stored month and everything must be read again. Matching is by day sequence number."""
    if not stored or not fresh:
        return None
    today, known_today = fresh[0].day_sequence, stored[0].day_sequence
    if today is None or known_today is None:
        return None
    shift = (today - known_today) % 65536
    if shift > 1:
        return None
    moved = [replace(day, days_ago=day.days_ago + shift) for day in stored]
    by_age = {day.days_ago: day for day in moved if day.days_ago < HISTORY_DAYS}
    for day in fresh:
        by_age[day.days_ago] = day
    return [by_age[age] for age in sorted(by_age)]


@dataclass
class HexPlan:
    history_enabled: bool
    stage: Stage = Stage.WAITING
    has_history: bool = False
    capabilities: int | None = None  # 0x0140, once the device answered it
    days: list[HistoryDay] = field(default_factory=list)  # newest first
    total: HistoryTotal | None = None
    _settings_at: float | None = None
    _history_at: float | None = None
    _full_read: bool = True  # the next history read is the whole month
    _unanswered_probes: int = 0  # capabilities probes in a row that timed out
    _probed_at: float = 0.0
    _probe_again_at: float | None = None

    def requests(self, now: float, kind: str, text_seen: bool) -> list[Request]:
        """What to ask now; called when nothing is in flight. Empty when nothing is due."""
        if self.stage is Stage.NO_HEX and self._probe_again_at is not None and now >= self._probe_again_at:
            self.stage = Stage.WAITING
        if self.stage is Stage.WAITING:
            if not text_seen or kind == "unknown":
                return []
            self.stage = Stage.PROBING
            self._probed_at = now
            return [get(CAPABILITIES)]
        if self.stage is not Stage.READY:
            return []
        if self.has_history and (self._history_at is None or now - self._history_at >= HISTORY_INTERVAL):
            self._history_at = now
            if self._full_read:
                return [get(HISTORY_TOTAL)]
            return [get(HISTORY_DAY_0), get(HISTORY_DAY_0 + 1)]
        if self._settings_at is None or now - self._settings_at >= SETTINGS_INTERVAL:
            self._settings_at = now
            return [get(register) for register in metric_registers(kind)]
        return []

    def on_outcome(self, outcome: Outcome, fresh_days: list[HistoryDay]) -> list[Request]:
        """Take in one outcome; `fresh_days` collects the day records of the current history read. The
        follow-up requests (the days after the totals) are returned."""
        request, reply = outcome.request, outcome.reply
        if self.stage is Stage.PROBING and request.register == CAPABILITIES:
            if outcome.result is Result.TIMEOUT:
                self.stage = Stage.NO_HEX
                self._unanswered_probes += 1
                wait = capped_doubling(self._unanswered_probes, PROBE_AGAIN_FIRST, PROBE_AGAIN_MAX)
                self._probe_again_at = self._probed_at + wait
                return []
            self.stage = Stage.READY
            self._unanswered_probes, self._probe_again_at = 0, None
            if isinstance(reply, vehex.RegisterReply) and outcome.result is Result.OK:
                capabilities, _ = decode_value(REGISTERS[CAPABILITIES], reply.data)
                self.capabilities = capabilities if isinstance(capabilities, int) else None
                self.has_history = self.history_enabled and isinstance(capabilities, int) and bool(
                    capabilities & CAPABILITY_HISTORY)
            return []
        if not isinstance(reply, vehex.RegisterReply) or outcome.result is not Result.OK:
            return []
        value, _ = decode_value(REGISTERS[reply.register], reply.data) if reply.register in REGISTERS else (None, None)
        if isinstance(value, HistoryTotal):
            self.total = value
            return [get(HISTORY_DAY_0 + days_ago) for days_ago in range(value.days_to_read)]
        if isinstance(value, HistoryDay):
            fresh_days.append(value)
        return []

    def history_read_done(self, fresh_days: list[HistoryDay]) -> None:
        """A history read ended (nothing more in flight): keep what it brought."""
        if not fresh_days:
            return
        fresh = sorted(fresh_days, key=lambda day: day.days_ago)
        if self._full_read:
            self.days, self._full_read = fresh, False
            return
        merged = merge_days(self.days, fresh)
        if merged is None:
            self._full_read, self._history_at = True, None  # read everything again, now
        else:
            self.days = merged


@dataclass(frozen=True)
class Step:
    """What one turn of the conversation gives the reader: bytes to write, requests that ended, async
    register values to apply, and the history when a read of it just ended."""

    write: bytes | None
    outcomes: list[Outcome]
    async_replies: list[vehex.RegisterReply]
    history: list[HistoryDay] | None


class Conversation:
    """The HEX side of one connection: the plan and the session that carries it out. Pure: the reader calls
    `step` after every read with the messages the decoder cut out, and writes what it returns."""

    def __init__(self, history_enabled: bool, session: HexSession | None = None) -> None:
        self.plan = HexPlan(history_enabled)
        self.session = session or HexSession()
        self._fresh_days: list[HistoryDay] = []
        self._extra: deque[Request] = deque()  # asked by others (control's load output), once the device is ready
        self._last_write: float | None = None

    def ask(self, requests: Iterable[Request]) -> None:
        """Requests from outside the plan (a load output's set and read-back): sent in order once the device is
        ready, before the plan's own, a set at most once per WRITE_GAP."""
        self._extra.extend(requests)

    def _next_extra(self, now: float) -> Request | None:
        if not self._extra or self.plan.stage is not Stage.READY:
            return None
        head = self._extra[0]
        if head.kind is Kind.SET:
            if self._last_write is not None and now - self._last_write < WRITE_GAP:
                return None
            self._last_write = now
        return self._extra.popleft()

    def step(self, now: float, messages: Sequence[bytes], kind: str, text_seen: bool) -> Step:
        outcomes, async_replies = self.session.receive_messages(messages)
        write, ended = self.session.due(now)
        outcomes += ended
        for outcome in outcomes:
            self.session.submit(*self.plan.on_outcome(outcome, self._fresh_days))
        history = None
        if self.session.idle:
            if self._fresh_days:
                self.plan.history_read_done(self._fresh_days)
                self._fresh_days, history = [], list(self.plan.days)
            extra = self._next_extra(now)
            if extra is not None:
                self.session.submit(extra)
            elif not self._extra or self.plan.stage is not Stage.READY:
                self.session.submit(*self.plan.requests(now, kind, text_seen))
        if write is None:
            write, _ = self.session.due(now)  # nothing can time out here: the call above ended it
        return Step(write, outcomes, async_replies, history)
