"""The decision, table-driven: no threads, no processes, no clock but the one passed in."""

import datetime
from collections.abc import Sequence
from dataclasses import replace

import pytest

from pvmonit_exporter.config.schema import Comparison, Condition, RuleConfig
from pvmonit_exporter.control.decide import (
    HOUR,
    Entry,
    Memory,
    Now,
    Position,
    Reading,
    confirm,
    decide,
    evaluate,
    evaluate_all,
    faulted,
    in_window,
    started,
    switched,
)

SOC = "summary.battery_soc"
CS = "mppt.CS"
NOON = datetime.datetime(2026, 6, 21, 12, 0, 0)
T0 = NOON.timestamp()


def at(seconds: float) -> Now:
    """`seconds` after T0, on a wall clock that keeps time (both clocks read the same)."""
    return Now(T0 + seconds, T0 + seconds)

# The water heater: on in absorption or float with the battery at 95 %, off below 90 %.
HEATER = RuleConfig(
    actuator="water_heater",
    on_when=Condition("all", (Comparison(CS, "in", choices=("Absorption", "Float")),
                              Comparison(SOC, "at_least", 0.95))),
    off_when=Comparison(SOC, "below", 0.90),
)


def soc(value: float, charger: str = "Float", age: float = 1.0) -> dict[str, Reading]:
    return {SOC: Reading(value, age), CS: Reading(charger, age)}


def walk(rule: RuleConfig, steps: Sequence[tuple[float, dict[str, Reading]]], safe: Position = "off",
         memory: Memory | None = None) -> list[Position]:
    """Evaluate at each (seconds after T0, readings), switching whenever the decision says so; the position
    after each step."""
    memory = memory or started(safe, at(-10 * HOUR))
    positions: list[Position] = []
    for seconds, readings in steps:
        now = at(seconds)
        decision = decide(rule, safe, readings, memory, now, datetime.datetime.fromtimestamp(now.wall))
        memory = decision.memory
        if decision.target is not None:
            memory = switched(memory, decision.target, now)
        positions.append(memory.position)
    return positions


@pytest.mark.parametrize(
    ("socs", "expected"),
    [
        # off: 94 % stays off, 95 % switches on, 96 % stays on
        ([0.94, 0.95, 0.96], ["off", "on", "on"]),
        # on: down to 94 % (above the off threshold) it stays on; below 90 % it goes off; back to 94 % stays off
        ([0.96, 0.94, 0.90, 0.89, 0.94], ["on", "on", "on", "off", "off"]),
        # 95 % but not in absorption or float is not enough — tested below; 96 % twice: one switch
        ([0.96, 0.96], ["on", "on"]),
    ],
)
def test_hysteresis_between_the_on_and_off_thresholds(socs: list[float], expected: list[str]) -> None:
    assert walk(HEATER, [(10 * i, soc(value)) for i, value in enumerate(socs)]) == expected


def test_on_when_needs_every_condition_of_all() -> None:
    assert walk(HEATER, [(0, soc(0.99, "Bulk")), (10, soc(0.99, "Absorption"))]) == ["off", "on"]


def test_off_when_wins_when_both_hold() -> None:
    rule = replace(HEATER, off_when=Comparison("summary.pv_power", "below", 150))
    readings = {**soc(0.99), "summary.pv_power": Reading(100.0, 1.0)}
    assert walk(rule, [(0, readings)]) == ["off"]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        # on_for 120: the condition must hold 120 s without a break
        ([(0, 0.96), (60, 0.96), (119, 0.96), (120, 0.96)], ["off", "off", "off", "on"]),
        # a break (92 %: neither on nor off) restarts the count
        ([(0, 0.96), (60, 0.92), (100, 0.96), (200, 0.96), (220, 0.96)], ["off", "off", "off", "off", "on"]),
    ],
)
def test_on_for(steps: list[tuple[float, float]], expected: list[str]) -> None:
    rule = replace(HEATER, on_for=120)
    assert walk(rule, [(t, soc(v)) for t, v in steps]) == expected


def test_off_for() -> None:
    rule = replace(HEATER, off_for=60)
    steps = [(0, 0.96), (10, 0.85), (40, 0.85), (69, 0.85), (70, 0.85)]
    assert walk(rule, [(t, soc(v)) for t, v in steps]) == ["on", "on", "on", "on", "off"]


def test_min_on_and_min_off() -> None:
    rule = replace(HEATER, min_on=1200, min_off=600)
    steps = [(0, 0.96), (10, 0.80), (1199, 0.80), (1200, 0.80), (1300, 0.99), (1799, 0.99), (1800, 0.99)]
    assert walk(rule, [(t, soc(v)) for t, v in steps]) == ["on", "on", "on", "off", "off", "off", "on"]


def test_a_guard_says_what_holds_it_and_for_how_long() -> None:
    rule = replace(HEATER, min_on=1200)
    memory = switched(started("off", at(-100)), "on", at(-480))
    decision = decide(rule, "off", soc(0.80), memory, at(0), NOON)
    assert (decision.wanted, decision.target, decision.veto, decision.guard_left) == ("off", None, "min_on", 720)


@pytest.mark.parametrize(
    ("window", "time", "inside"),
    [
        (("10:00", "18:00"), "09:59", False),
        (("10:00", "18:00"), "10:00", True),
        (("10:00", "18:00"), "17:59", True),
        (("10:00", "18:00"), "18:00", False),
        (("22:00", "06:00"), "21:59", False),
        (("22:00", "06:00"), "22:00", True),
        (("22:00", "06:00"), "00:00", True),
        (("22:00", "06:00"), "05:59", True),
        (("22:00", "06:00"), "06:00", False),
        (("22:00", "06:00"), "12:00", False),
    ],
)
def test_the_window_runs_across_midnight(window: tuple[str, str], time: str, inside: bool) -> None:
    hours, minutes = map(int, time.split(":"))
    assert in_window(window, datetime.datetime(2026, 6, 21, hours, minutes)) is inside


def test_outside_its_window_the_rule_wants_off() -> None:
    rule = replace(HEATER, window=("22:00", "06:00"))
    midnight = datetime.datetime(2026, 6, 22, 0, 0).timestamp() - T0
    steps = [(0, soc(0.99)), (midnight, soc(0.99)), (midnight + 6 * HOUR, soc(0.99))]
    assert walk(rule, steps) == ["off", "on", "off"]


def test_max_on_per_day_switches_off_and_keeps_off_until_the_next_day() -> None:
    rule = replace(HEATER, max_on_per_day=3600, min_on=7200)  # the day's limit wins over min_on
    midnight = datetime.datetime(2026, 6, 22, 0, 0).timestamp() - T0
    steps = [(0, soc(0.99)), (1800, soc(0.99)), (3600, soc(0.99)), (4000, soc(0.99)), (midnight + 60, soc(0.99))]
    assert walk(rule, steps) == ["on", "on", "off", "off", "on"]


def test_max_on_per_day_vetoes_an_on_with_its_name() -> None:
    rule = replace(HEATER, max_on_per_day=600)
    memory = replace(started("off", at(-3600)), on_today=600, day=NOON.date().toordinal(), evaluated_at=T0 - 10)
    decision = decide(rule, "off", soc(0.99), memory, at(0), NOON)
    assert (decision.wanted, decision.target, decision.veto) == ("on", None, "max_on_per_day")


def test_an_input_oscillating_every_evaluation_switches_at_most_six_times_an_hour() -> None:
    """Incident: over 100 relay switches an hour with a slow meter."""
    rule = HEATER  # max_switches_per_hour defaults to 6
    steps = [(10 * i, soc(0.99 if i % 2 else 0.80)) for i in range(3 * 360)]  # three hours every 10 s
    positions = walk(rule, steps)
    changes = [i for i in range(1, len(positions)) if positions[i] != positions[i - 1]]
    times = [10 * i for i in changes]
    assert max(sum(1 for t in times if start <= t < start + HOUR) for start in range(0, 3 * 3600, 10)) == 6
    assert len(changes) >= 3 * 6 - 1  # and it does switch: the guard delays, it does not stop the rule


def test_a_stale_input_holds_then_the_safe_state_after_data_loss_after() -> None:
    """PvMonit #25: a missing value must not switch relays; then, without data, the safe state."""
    stale = soc(0.80, age=61)  # older than max_age 60: as good as missing
    steps = [(0, soc(0.99)), (10, stale), (100, stale), (119, {}), (120, {}), (140, soc(0.99))]
    assert walk(HEATER, steps) == ["on", "on", "on", "on", "off", "on"]


def test_a_stale_input_is_a_veto_with_the_time_left_before_the_safe_state() -> None:
    memory = switched(started("off", at(-100)), "on", at(-50))
    decision = decide(HEATER, "off", {}, replace(memory, fresh_at=T0 - 20), at(0), NOON)
    assert (decision.wanted, decision.target, decision.veto, decision.guard_left) == (None, None, "stale_input", 100)
    assert [check.holds for check in decision.checks] == [None, None, None]


def test_data_loss_puts_a_charger_back_in_automatic() -> None:
    steps = [(0, soc(0.99)), (200, {})]
    assert walk(HEATER, steps, safe="auto") == ["on", "auto"]


@pytest.mark.parametrize("mode", ["on", "off"])
def test_a_forced_mode_stays_without_data_and_without_guards(mode: str) -> None:
    rule = replace(HEATER, mode=mode, min_off=3600, min_on=3600)  # type: ignore[arg-type]
    steps = [(0, soc(0.50)), (10, {}), (500, {}), (1000, soc(0.99))]
    assert walk(rule, steps, memory=started("off" if mode == "on" else "on", at(0))) == [mode] * 4


def test_an_actuator_without_a_rule_goes_to_its_safe_state() -> None:
    memory = switched(started("auto", at(-100)), "on", at(-50))
    decision = decide(None, "auto", {}, memory, at(0), NOON)
    assert (decision.target, decision.why) == ("auto", "no_rule")


def entries(*memories: Memory) -> list[Entry]:
    return [Entry(f"load{i}", replace(HEATER, actuator=f"load{i}"), "off", memory) for i, memory in enumerate(memories)]


def test_at_most_one_actuator_switches_per_evaluation() -> None:
    first = evaluate_all(entries(started("off", at(-HOUR)), started("off", at(-HOUR))), soc(0.99), at(0), NOON,
                         dry_run=False)
    assert first.commands == (("load0", "on"),)
    assert first.decisions["load1"].veto == "one_per_evaluation"
    assert first.memories["load1"].position == "off"
    second = evaluate_all([replace(e, memory=first.memories[e.name]) for e in entries(*first.memories.values())],
                          soc(0.99), at(10), NOON, dry_run=False)
    assert second.commands == (("load1", "on"),)


def test_a_dry_run_decides_and_remembers_but_switches_nothing() -> None:
    live = evaluate_all(entries(started("off", at(-HOUR))), soc(0.99), at(0), NOON, dry_run=False)
    dry = evaluate_all(entries(started("off", at(-HOUR))), soc(0.99), at(0), NOON, dry_run=True)
    assert live.commands == (("load0", "on"),)
    assert dry.commands == ()
    assert dry.decisions == live.decisions
    assert dry.memories == live.memories  # the next evaluation goes on from the pretended switch


def test_a_held_back_change_is_notable_once() -> None:
    rule = replace(HEATER, min_off=600)
    memory = started("off", at(0))
    notable = []
    for step in range(5):
        decision = decide(rule, "off", soc(0.99), memory, at(10 * step), NOON)
        memory = decision.memory
        notable.append(decision.notable)
    assert notable == [True, False, False, False, False]


@pytest.mark.parametrize(
    ("reads", "expected_fault", "events"),
    [
        ([True, True], False, [None, None]),  # agrees
        ([False, True], False, [None, None]),  # one disagreement is forgiven
        ([False, False], True, [None, "fault"]),  # twice in a row: a fault
        ([None, False, None, False], True, [None, None, None, "fault"]),  # no read-back is no evidence
    ],
)
def test_a_read_back_disagreeing_twice_is_a_fault(reads: list[bool | None], expected_fault: bool,
                                                  events: list[str | None]) -> None:
    memory = switched(started("off", at(-100)), "on", at(0))
    seen = []
    for i, read in enumerate(reads):
        memory, event = confirm(memory, read, at(5 + i), confirm_timeout=5)
        seen.append(event)
    assert memory.fault is expected_fault
    assert seen == events


def test_a_read_back_before_confirm_timeout_is_not_counted() -> None:
    memory = switched(started("off", at(-100)), "on", at(0))
    for i in range(4):
        memory, _ = confirm(memory, False, at(i), confirm_timeout=5)
    assert memory.disagreements == 0


def test_a_fault_holds_the_safe_state_until_the_read_back_agrees() -> None:
    memory = faulted(switched(started("off", at(-100)), "on", at(-50)), "off", at(0))
    decision = decide(HEATER, "off", soc(0.99), memory, at(10), NOON)
    assert (decision.target, decision.veto) == (None, "fault")
    memory, event = confirm(decision.memory, False, at(10), confirm_timeout=5)
    assert (memory.fault, event) == (False, "cleared")
    assert decide(HEATER, "off", soc(0.99), memory, at(20), NOON).target == "on"


def test_a_charger_in_automatic_after_a_fault_stays_faulted() -> None:
    memory = faulted(switched(started("auto", at(-100)), "on", at(-50)), "auto", at(0))
    memory, event = confirm(memory, True, at(10), confirm_timeout=5)
    assert (memory.fault, event) == (True, None)


@pytest.mark.parametrize(
    ("reading", "choices", "holds"),
    [
        (Reading("Float", 1.0), ("Absorption", "Float"), True),  # an enumeration, by its text
        (Reading("Bulk", 1.0), ("Absorption", "Float"), False),
        (Reading(1.0, 1.0, "ON"), ("ON",), True),  # ON/OFF: a number with words, either may be compared
        (Reading(0.0, 1.0, "OFF"), ("ON",), False),
        (Reading(1.0, 1.0, "ON"), (1.0,), True),
        (Reading(3.0, 1.0), (3.0, 4.0), True),
    ],
)
def test_in_compares_text_or_numbers(reading: Reading, choices: tuple[str | float, ...], holds: bool) -> None:
    rule = RuleConfig("load", on_when=Comparison("mppt.X", "in", choices=choices))
    checks, on, _ = evaluate(rule, {"mppt.X": reading})
    assert on is holds
    assert checks[0].holds is holds


# --- a wall clock that jumps -------------------------------------------------------------------------------
# A Raspberry Pi has no real-time clock: at an NTP sync (or a manual `date`) its wall clock may jump by months,
# either way. The guards measure real time elapsed; only the window and the day of max_on_per_day read the wall.

FORWARD, BACK = 90 * 86_400.0, -86_400.0


def walk_jumping(rule: RuleConfig, steps: Sequence[tuple[float, dict[str, Reading]]], jump_at: int, jump: float,
                 memory: Memory | None = None) -> list[Position]:
    """`walk`, with the wall clock jumping by `jump` seconds before step `jump_at` (real time, the monotonic
    clock's, goes on as the steps say)."""
    memory = memory or started("off", at(-10 * HOUR))
    positions: list[Position] = []
    for index, (seconds, readings) in enumerate(steps):
        now = Now(T0 + seconds + (jump if index >= jump_at else 0.0), T0 + seconds)
        decision = decide(rule, "off", readings, memory, now, datetime.datetime.fromtimestamp(now.wall))
        memory = decision.memory
        if decision.target is not None:
            memory = switched(memory, decision.target, now)
        positions.append(memory.position)
    return positions


# guard: (rule, just switched off at T0, steps (seconds of real time, SOC; None: no data), positions)
JUMPING_GUARDS: dict[str, tuple[RuleConfig, bool, list[tuple[float, float | None]], list[Position]]] = {
    # on at 0, off wanted from 10: min_on holds it on until 1200 s of real time
    "min_on": (replace(HEATER, min_on=1200), False, [(0, 0.96), (10, 0.80), (600, 0.80), (1199, 0.80), (1200, 0.80)],
               ["on", "on", "on", "on", "off"]),
    # just switched off at T0: min_off holds it off until 600 s of real time
    "min_off": (replace(HEATER, min_off=600), True, [(0, 0.99), (300, 0.99), (599, 0.99), (600, 0.99)],
                ["off", "off", "off", "on"]),
    # on_when must hold 120 s of real time
    "on_for": (replace(HEATER, on_for=120), False, [(0, 0.96), (60, 0.96), (119, 0.96), (120, 0.96)],
               ["off", "off", "off", "on"]),
    # fresh at 0, then no data: the safe state after 120 s of real time, not before
    "data_loss_after": (HEATER, False, [(0, 0.99), (10, None), (60, None), (119, None), (120, None)],
                        ["on", "on", "on", "on", "off"]),
    # two switches in the first 10 s; a third only once the first left the hour (real time)
    "max_switches_per_hour": (replace(HEATER, max_switches_per_hour=2), False,
                              [(0, 0.99), (10, 0.80), (20, 0.99), (1800, 0.99), (3599, 0.99), (3600, 0.99)],
                              ["on", "off", "off", "off", "off", "on"]),
}


@pytest.mark.parametrize("jump", [FORWARD, BACK], ids=["+90 days", "-1 day"])
@pytest.mark.parametrize("guard", list(JUMPING_GUARDS))
def test_a_wall_clock_jump_neither_shortens_nor_lengthens_a_guard(guard: str, jump: float) -> None:
    rule, just_switched_off, steps, expected = JUMPING_GUARDS[guard]
    memory = started("off", at(0)) if just_switched_off else None
    readings = [(t, {} if value is None else soc(value)) for t, value in steps]
    assert walk_jumping(rule, readings, 0, 0.0, memory) == expected  # the same without a jump
    for jump_at in range(1, len(steps)):  # the jump between any two evaluations
        assert walk_jumping(rule, readings, jump_at, jump, memory) == expected, f"jump before step {jump_at}"


@pytest.mark.parametrize("jump", [2 * HOUR, -2 * HOUR])
def test_a_jump_within_the_day_does_not_count_on_time_that_did_not_pass(jump: float) -> None:
    """max_on_per_day counts real seconds on; only its day's boundary is the wall clock's."""
    rule = replace(HEATER, max_on_per_day=3600)
    steps = [(t, soc(0.99)) for t in (0, 600, 1200, 3599, 3600)]
    assert walk_jumping(rule, steps, 2, jump) == ["on", "on", "on", "on", "off"]


@pytest.mark.parametrize("jump", [FORWARD + 8 * HOUR, BACK - 4 * HOUR], ids=["+90 days to 20:00", "-1 day to 08:00"])
def test_the_window_follows_the_wall_clock_after_a_jump(jump: float) -> None:
    rule = replace(HEATER, window=("10:00", "18:00"))
    steps = [(0, soc(0.99)), (10, soc(0.99)), (20, soc(0.99))]
    assert walk_jumping(rule, steps, 1, jump) == ["on", "off", "off"]  # now outside it: off at once


@pytest.mark.parametrize("jump", [FORWARD, BACK], ids=["+90 days", "-1 day"])
def test_a_jump_to_another_date_starts_its_budget_with_the_real_time_on_since(jump: float) -> None:
    """The day of max_on_per_day is the wall clock's: a new date is a new budget, which counts from the last
    evaluation the seconds that really passed, not the 30 min on before the jump."""
    rule = replace(HEATER, max_on_per_day=3600)
    steps = [(t, soc(0.99)) for t in (0, 1800, 1810, 5399, 5410)]
    assert walk_jumping(rule, steps, 2, jump) == ["on", "on", "on", "on", "off"]


@pytest.mark.parametrize("jump", [FORWARD, BACK], ids=["+90 days", "-1 day"])
def test_confirm_timeout_counts_real_time_across_a_jump(jump: float) -> None:
    """A read-back within confirm_timeout of the switch is not counted, and one after it is, whatever the wall
    clock did in between."""
    memory = switched(started("off", at(-100)), "on", at(0))
    events = []
    for seconds in (1, 4, 5, 6):
        memory, event = confirm(memory, False, Now(T0 + seconds + jump, T0 + seconds), confirm_timeout=5)
        events.append(event)
    assert events == [None, None, None, "fault"]
