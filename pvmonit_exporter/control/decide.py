"""The decision: what each actuator should be now. Pure — a function of (rule, inputs with their ages, the
actuator's memory, the clocks); no I/O, no threads, no logging. The loop in `loop.py` carries it out.

Two clocks (`Now`): every duration (on_for, off_for, min_on, min_off, data_loss_after, max_switches_per_hour's
hour, the seconds counted by max_on_per_day, confirm_timeout) is measured on the monotonic one; the wall clock
only says what time and day it is (the window, the day of max_on_per_day) and what is shown. A Raspberry Pi has
no real-time clock: its wall clock may jump by months at an NTP sync, and must neither cut a guard short nor
hold one for ever.

Order of precedence, for one actuator:
1. a fault (a read-back that disagreed twice) holds it in its safe state;
2. no rule: its safe state; a forced mode (`on`, `off`): the user's decision, with no guard and no data check;
3. an input missing or older than `max_age`: no decision, the actuator holds; after `data_loss_after` without
   fresh inputs it goes to its safe state (PvMonit #25: "if a value is missing, don't touch the relays");
4. on for the day's `max_on_per_day`: off, whatever `min_on` says;
5. outside the window the rule wants off; `off_when` wins over `on_when` (the one that stops a drain); between
   the two (hysteresis) the actuator stays as it is;
6. a change the rule wants waits for `on_for`/`off_for`, `min_on`/`min_off`, `max_switches_per_hour`.
Across actuators, at most one switches per evaluation (the first in the configuration's order).
"""

import datetime
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from pvmonit_exporter.config.schema import Comparison, Condition, RuleConfig

Position = Literal["on", "off", "auto"]  # auto: a charger's own load control (vedirect_load's safe state)
# Where each kind of actuator is left when nothing may decide: off, or the charger's own automatic mode.
SAFE_STATES: dict[str, Position] = {"command": "off", "gpio": "off", "mqtt": "off", "vedirect_load": "auto"}

HOUR = 3600.0
DAY = 86_400.0

# Why a change the rule wants is held back: the `reason` label of pvmonit_control_vetoes_total.
Veto = Literal["stale_input", "on_for", "off_for", "min_on", "min_off", "max_switches_per_hour",
               "max_on_per_day", "fault", "one_per_evaluation"]
VETOES: tuple[Veto, ...] = ("stale_input", "on_for", "off_for", "min_on", "min_off", "max_switches_per_hour",
                            "max_on_per_day", "fault", "one_per_evaluation")

# Why the actuator is (or is to be) where it is.
Why = Literal["start", "no_rule", "mode", "on_when", "off_when", "hold", "stale_input", "window", "data_loss",
              "max_on_per_day", "fault", "stop"]


@dataclass(frozen=True)
class Now:
    """The moment of an evaluation on both clocks: `wall` (Unix seconds: the time of day, the date, what is
    shown) and `monotonic` (seconds from any origin, never set: what durations are measured on). `control
    replay` gives its CSV's time as both."""

    wall: float
    monotonic: float


@dataclass(frozen=True)
class Reading:
    """One input now: its value (a number in SI units, or an enumeration's text) and its age in seconds."""

    value: float | str
    age: float
    text: str | None = None  # the words of a number that has some (ON/OFF: 1.0 is "ON"), for `in`


@dataclass(frozen=True)
class Check:
    """One comparison as evaluated: the input it saw (None: missing or too old) and whether it holds."""

    comparison: Comparison
    input: float | str | None
    age: float | None
    holds: bool | None  # None: no usable input

    def as_json(self) -> dict[str, object]:
        threshold: object = list(self.comparison.choices) if self.comparison.op == "in" else self.comparison.threshold
        return {"value": self.comparison.value, self.comparison.op: threshold, "input": self.input,
                "age": None if self.age is None else round(self.age, 1), "holds": self.holds}


@dataclass(frozen=True)
class Memory:
    """What the decision remembers of one actuator between evaluations."""

    position: Position  # where it was put (in a dry run: where it would be)
    since: float  # when it got there, on the wall clock: shown ("on since 11:42"), never measured from
    # The times below are on the monotonic clock.
    since_tick: float  # when it got there: min_on, min_off and confirm_timeout count from here
    fresh_at: float  # the last evaluation with every input fresh (at first: when control started)
    switches: tuple[float, ...] = ()  # switch times within the last hour
    on_today: float = 0.0  # seconds on during the local day `day`
    day: int | None = None  # local date's ordinal (wall clock)
    on_met_since: float | None = None  # on_when has held without a break since
    off_met_since: float | None = None  # off_when (or: on_when no longer) has held since
    evaluated_at: float | None = None
    wanted: Position | None = None  # last evaluation's: the audit records a held-back change once, not each time
    veto: Veto | None = None
    fault: bool = False
    disagreements: int = 0  # read-backs in a row that disagreed


def started(safe: Position, now: Now) -> Memory:
    """An actuator just driven to its safe state (start, or a new definition after a reload)."""
    return Memory(position=safe, since=now.wall, since_tick=now.monotonic, fresh_at=now.monotonic)


def moved(memory: Memory, position: Position, now: Now) -> Memory:
    """The memory once the actuator was put in `position` at `now`, without counting a switch (the safe state at
    start and stop)."""
    return replace(memory, position=position, since=now.wall, since_tick=now.monotonic)


@dataclass(frozen=True)
class Decision:
    wanted: Position | None  # what the rules want (None: no decision: inputs stale)
    target: Position | None  # switch to this now (None: stay)
    why: Why
    veto: Veto | None  # the guard holding back a change the rules want
    guard_left: float | None  # seconds until that guard lets go (timed guards)
    checks: tuple[Check, ...]  # on_when's then off_when's comparisons
    memory: Memory  # after this evaluation, before any switch (see `switched`)

    @property
    def notable(self) -> bool:
        """Worth an audit line: a switch, or a change held back by a guard that did not hold it last time."""
        held = self.veto is not None and (self.veto, self.wanted) != (self._previous_veto, self._previous_wanted)
        return self.target is not None or held

    # The previous evaluation's wanted and veto, to tell a new veto from one that goes on.
    _previous_wanted: Position | None = None
    _previous_veto: Veto | None = None


def switched(memory: Memory, position: Position, now: Now) -> Memory:
    """The memory once the actuator switched to `position` at `now`."""
    return replace(moved(memory, position, now), switches=(*memory.switches, now.monotonic), disagreements=0)


def faulted(memory: Memory, safe: Position, now: Now) -> Memory:
    """A fault: the actuator was driven to its safe state and is not switched again until it agrees. (The fault
    is its own audit line: the evaluations it holds back are not new vetoes.)"""
    return replace(switched(memory, safe, now), fault=True, wanted=safe, veto="fault")


# --- comparisons -------------------------------------------------------------------------------------------


def compare(comparison: Comparison, value: float | str, text: str | None = None) -> bool:
    op = comparison.op
    if op == "in":
        if isinstance(value, str) or (text is not None and any(isinstance(c, str) for c in comparison.choices)):
            return (value if isinstance(value, str) else text) in comparison.choices
        return any(isinstance(choice, float | int) and value == choice for choice in comparison.choices)
    if isinstance(value, str) or math.isnan(value):
        return False
    threshold = comparison.threshold
    return {"at_least": value >= threshold, "above": value > threshold, "below": value < threshold,
            "at_most": value <= threshold}[op]


def comparisons(condition: Comparison | Condition | None) -> list[Comparison]:
    if condition is None:
        return []
    if isinstance(condition, Comparison):
        return [condition]
    return [c for item in condition.items for c in comparisons(item)]


def _holds(condition: Comparison | Condition, results: Mapping[Comparison, bool]) -> bool:
    if isinstance(condition, Comparison):
        return results[condition]
    values = [_holds(item, results) for item in condition.items]
    return all(values) if condition.combine == "all" else any(values)


def inputs_of(rule: RuleConfig) -> list[str]:
    """The values a rule reads, in order, once each."""
    return list(dict.fromkeys(c.value for c in comparisons(rule.on_when) + comparisons(rule.off_when)))


def evaluate(rule: RuleConfig, readings: Mapping[str, Reading]) -> tuple[tuple[Check, ...], bool | None, bool | None]:
    """Every comparison of the rule, then whether on_when and off_when hold (None: an input is missing or
    older than max_age: no decision)."""
    checks: list[Check] = []
    results: dict[Comparison, bool] = {}
    fresh = True
    for comparison in comparisons(rule.on_when) + comparisons(rule.off_when):
        reading = readings.get(comparison.value)
        if reading is None or reading.age > rule.max_age:
            fresh = False
            checks.append(Check(comparison, None if reading is None else reading.value,
                                None if reading is None else reading.age, None))
            continue
        holds = compare(comparison, reading.value, reading.text)
        results[comparison] = holds
        checks.append(Check(comparison, reading.value, reading.age, holds))
    if not fresh or rule.on_when is None:
        return tuple(checks), None, None
    on = _holds(rule.on_when, results)
    off = _holds(rule.off_when, results) if rule.off_when is not None else not on
    return tuple(checks), on, off


# --- time of day -------------------------------------------------------------------------------------------


def minutes(text: str) -> int:
    """`HH:MM` → minutes since midnight (the configuration checked the form)."""
    hours, _, mins = text.partition(":")
    return int(hours) * 60 + int(mins)


def in_window(window: tuple[str, str] | None, local: datetime.datetime) -> bool:
    """Whether `local` is within [start, end); a window whose end comes before its start runs across
    midnight (22:00–06:00)."""
    if window is None:
        return True
    start, end = minutes(window[0]), minutes(window[1])
    now = local.hour * 60 + local.minute + local.second / 60
    return start <= now < end if start < end else now >= start or now < end


def _until_midnight(local: datetime.datetime) -> float:
    return DAY - (local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6)


# --- the decision ------------------------------------------------------------------------------------------


def advance(memory: Memory, now: Now, local: datetime.datetime) -> Memory:
    """The bookkeeping of time passing: seconds on today, switches that left the hour. A new local date
    (midnight, or a wall clock set to another day) counts only the seconds on since the last evaluation, no
    more than since its midnight."""
    today = local.date().toordinal()
    on_since_last = 0.0
    if memory.position == "on" and memory.evaluated_at is not None:
        on_since_last = now.monotonic - memory.evaluated_at
    on_today = memory.on_today + on_since_last
    if memory.day is not None and memory.day != today:
        on_today = min(on_since_last, DAY - _until_midnight(local))
    return replace(memory, on_today=on_today, day=today, evaluated_at=now.monotonic,
                   switches=tuple(t for t in memory.switches if now.monotonic - t < HOUR))


def decide(rule: RuleConfig | None, safe: Position, readings: Mapping[str, Reading], memory: Memory, now: Now,
           local: datetime.datetime) -> Decision:
    """What to do with one actuator now. `local` is `now.wall` as the local wall clock reads it (the window and
    the day of max_on_per_day)."""
    previous = (memory.wanted, memory.veto)
    memory = advance(memory, now, local)

    def done(wanted: Position | None, target: Position | None, why: Why, veto: Veto | None = None,
             left: float | None = None, checks: tuple[Check, ...] = ()) -> Decision:
        kept = replace(memory, wanted=wanted, veto=veto)
        return Decision(wanted, target, why, veto, left, checks, kept, previous[0], previous[1])

    position = memory.position
    if memory.fault:
        return done(safe, None if position == safe else safe, "fault", "fault")
    if rule is None:
        return done(safe, None if position == safe else safe, "no_rule")
    if rule.mode != "auto":
        forced: Position = "on" if rule.mode == "on" else "off"
        return done(forced, None if position == forced else forced, "mode")

    checks, on, off = evaluate(rule, readings)
    if on is None or off is None:
        without_data = now.monotonic - memory.fresh_at
        if without_data >= rule.data_loss_after:
            return done(safe, None if position == safe else safe, "data_loss", checks=checks)
        return done(None, None, "stale_input", "stale_input", rule.data_loss_after - without_data, checks)
    tick = now.monotonic
    memory = replace(
        memory,
        fresh_at=tick,
        on_met_since=(memory.on_met_since if memory.on_met_since is not None else tick) if on else None,
        off_met_since=(memory.off_met_since if memory.off_met_since is not None else tick) if off else None,
    )

    spent = rule.max_on_per_day is not None and memory.on_today >= rule.max_on_per_day
    if position == "on" and spent:
        return done("off", "off", "max_on_per_day", checks=checks)

    wanted, why = _wanted(rule, local, position, on=on, off=off)
    if wanted == position:
        return done(wanted, None, why, checks=checks)

    guard = _guard(rule, memory, wanted, why, now, local, spent=spent)
    if guard is not None:
        return done(wanted, None, why, guard[0], guard[1], checks)
    return done(wanted, wanted, why, checks=checks)


def _wanted(rule: RuleConfig, local: datetime.datetime, position: Position, *, on: bool,
            off: bool) -> tuple[Position, Why]:
    """The position the rule asks for, and why: the window first, then off_when over on_when, else hold."""
    if not in_window(rule.window, local):
        return "off", "window"
    if off:
        return "off", "off_when"
    if on:
        return "on", "on_when"
    return ("on" if position == "on" else "off"), "hold"


def _guard(rule: RuleConfig, memory: Memory, wanted: Position, why: Why, now: Now, local: datetime.datetime,
           *, spent: bool) -> tuple[Veto, float | None] | None:
    """The first guard that holds back a switch to `wanted`, with the seconds until it lets go."""
    tick = now.monotonic
    held = tick - memory.since_tick
    if wanted == "on":
        if spent:
            return "max_on_per_day", _until_midnight(local)
        # Wanted on means on_when holds, so its start is known; were it not, count it as holding from now: the
        # on_for guard then holds back, the safe side (an assert would vanish under python -O).
        met_since = memory.on_met_since if memory.on_met_since is not None else tick
        if tick - met_since < rule.on_for:
            return "on_for", rule.on_for - (tick - met_since)
        if memory.position != "on" and held < rule.min_off:
            return "min_off", rule.min_off - held
    else:
        if why == "off_when" and memory.off_met_since is not None and tick - memory.off_met_since < rule.off_for:
            return "off_for", rule.off_for - (tick - memory.off_met_since)
        if memory.position == "on" and held < rule.min_on:
            return "min_on", rule.min_on - held
    if len(memory.switches) >= rule.max_switches_per_hour:
        return "max_switches_per_hour", HOUR - (tick - memory.switches[0]) if memory.switches else None
    return None


# --- one evaluation of every actuator ---------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One actuator as the evaluation sees it."""

    name: str
    rule: RuleConfig | None
    safe: Position
    memory: Memory


@dataclass(frozen=True)
class Round:
    decisions: Mapping[str, Decision]
    memories: Mapping[str, Memory]  # after the round, with the switch made (or, in a dry run, pretended)
    commands: tuple[tuple[str, Position], ...]  # what to switch now: none in a dry run


def evaluate_all(entries: Sequence[Entry], readings: Mapping[str, Reading], now: Now, local: datetime.datetime,
                 *, dry_run: bool) -> Round:
    """Every actuator's decision; at most one switches (the first in order that wants to), the others are
    held back until a later evaluation. In a dry run every decision is made and remembered as if carried
    out, and nothing is to be switched."""
    decisions: dict[str, Decision] = {}
    memories: dict[str, Memory] = {}
    commands: list[tuple[str, Position]] = []
    switched_one = False
    for entry in entries:
        decision = decide(entry.rule, entry.safe, readings, entry.memory, now, local)
        if decision.target is not None and switched_one:
            decision = replace(decision, target=None, veto="one_per_evaluation", guard_left=None,
                               memory=replace(decision.memory, veto="one_per_evaluation"))
        memory = decision.memory
        if decision.target is not None:
            switched_one = True
            memory = switched(memory, decision.target, now)
            if not dry_run:
                commands.append((entry.name, decision.target))
        decisions[entry.name], memories[entry.name] = decision, memory
    return Round(decisions, memories, tuple(commands))


# --- read-back ---------------------------------------------------------------------------------------------

Confirmation = Literal["fault", "cleared"]


def confirm(memory: Memory, read: bool | None, now: Now,
            confirm_timeout: float) -> tuple[Memory, Confirmation | None]:
    """Take in a read-back (`read`: on or off; None when the actuator could not be read). A state that
    disagrees twice in a row once `confirm_timeout` has passed since the switch is a fault; a faulted actuator
    that reads back its safe state agrees again. A charger's automatic mode (`auto`) expects nothing: it
    agrees with anything, and a fault it was put in for lasts until the configuration is reloaded."""
    if read is None or now.monotonic - memory.since_tick < confirm_timeout or memory.position == "auto":
        return memory, None
    if read == (memory.position == "on"):
        if memory.fault:
            return replace(memory, fault=False, disagreements=0), "cleared"
        return replace(memory, disagreements=0), None
    if memory.fault:
        return memory, None
    count = memory.disagreements + 1
    if count >= 2:
        return replace(memory, disagreements=count, fault=True), "fault"
    return replace(memory, disagreements=count), None
