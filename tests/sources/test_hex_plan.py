"""The daemon's HEX plan and conversation, pure: what is asked when, and how the month stays in step."""

import itertools
from dataclasses import replace

import pytest

from pvmonit_exporter.demo.devices import BlueSolarMppt, Bmv702, PhoenixInverter, SimulatedDevice, model_for
from pvmonit_exporter.sources.hex_plan import (
    HISTORY_INTERVAL,
    SETTINGS_INTERVAL,
    WRITE_GAP,
    Conversation,
    HexPlan,
    Stage,
    merge_days,
    metric_registers,
)
from pvmonit_exporter.vedirect import hex as vehex
from pvmonit_exporter.vedirect.hex_session import Outcome, Request, Result, get, set_
from pvmonit_exporter.vedirect.history import HistoryDay


def day(days_ago: int, sequence: int | None, yield_kwh: float = 1.0) -> HistoryDay:
    return HistoryDay(days_ago, yield_kwh, 0.0, 14.0, 12.0, 0, (0, 0, 0, 0), 1, 2, 3, 100, 5.0, 40.0, sequence)


MONTH = [day(n, 100 - n) for n in range(31)]


def test_short_read_on_the_same_day_replaces_today_and_yesterday() -> None:
    merged = merge_days(MONTH, [day(0, 100, 2.5), day(1, 99, 3.5)])
    assert merged is not None
    assert [d.yield_kwh for d in merged[:3]] == [2.5, 3.5, 1.0]
    assert len(merged) == 31


def test_short_read_after_the_day_rolled_over_shifts_the_month() -> None:
    merged = merge_days(MONTH, [day(0, 101, 0.1), day(1, 100, 4.2)])
    assert merged is not None
    assert [d.day_sequence for d in merged] == list(range(101, 70, -1))
    assert [d.days_ago for d in merged] == list(range(31))
    assert merged[1].yield_kwh == 4.2  # the old today, now closed, as the charger recorded it


@pytest.mark.parametrize(
    "fresh",
    [[day(0, 103), day(1, 102)], [day(0, None), day(1, 99)], []],
    ids=["gap of days", "no sequence number", "nothing read"],
)
def test_what_does_not_fit_asks_for_a_full_read(fresh: list[HistoryDay]) -> None:
    assert merge_days(MONTH, fresh) is None


def test_sequence_number_wraps() -> None:
    stored = [replace(d, day_sequence=(65535 - d.days_ago) % 65536) for d in MONTH]
    merged = merge_days(stored, [day(0, 0), day(1, 65535)])
    assert merged is not None
    assert merged[1].day_sequence == 65535


def ok(register: int, data: bytes) -> Outcome:
    return Outcome(get(register), Result.OK, vehex.RegisterReply(vehex.Response.GET, register, 0, data))


def test_plan_waits_for_text_then_probes_then_reads_history_then_settings() -> None:
    plan = HexPlan(history_enabled=True)
    assert plan.requests(0.0, "mppt", text_seen=False) == []
    assert plan.requests(0.0, "unknown", text_seen=True) == []
    assert plan.requests(1.0, "mppt", text_seen=True) == [get(0x0140)]
    assert plan.on_outcome(ok(0x0140, (0b101).to_bytes(4, "little")), []) == []
    assert plan.has_history
    assert plan.requests(1.1, "mppt", text_seen=True) == [get(0x104F)]
    assert plan.requests(1.2, "mppt", text_seen=True) == [get(r) for r in metric_registers("mppt")]
    assert plan.requests(1.3, "mppt", text_seen=True) == []
    first = 1000.0  # after HISTORY_INTERVAL
    assert plan.requests(first, "mppt", text_seen=True) == [get(0x104F)]  # no read ended yet: a full one
    plan.history_read_done([day(0, 5)])
    assert plan.requests(first + HISTORY_INTERVAL, "mppt", text_seen=True) == [get(0x1050), get(0x1051)]
    assert SETTINGS_INTERVAL < HISTORY_INTERVAL
    assert plan.requests(first + HISTORY_INTERVAL, "mppt", text_seen=True) == [
        get(r) for r in metric_registers("mppt")]


def test_plan_without_history_when_configured_off_or_not_capable() -> None:
    for enabled, capabilities in ((False, 0b100), (True, 0b001)):
        plan = HexPlan(history_enabled=enabled)
        plan.requests(0.0, "mppt", text_seen=True)
        plan.on_outcome(ok(0x0140, capabilities.to_bytes(4, "little")), [])
        assert plan.requests(0.1, "mppt", text_seen=True) == [get(r) for r in metric_registers("mppt")]


def test_no_answer_to_the_probe_is_asked_again_later_at_doubling_intervals() -> None:
    """A device that missed the probe (a loaded machine) is not without HEX until it is replugged; one that has
    none is asked 30 s, then 60, 120… up to an hour apart."""
    plan = HexPlan(history_enabled=True)
    asked_at = []
    now = 0.0
    while now < 20_000.0:
        if plan.requests(now, "inverter", text_seen=True) == [get(0x0140)]:
            asked_at.append(now)
            plan.on_outcome(Outcome(get(0x0140), Result.TIMEOUT, None, 3), [])
            assert plan.stage is Stage.NO_HEX
        now += 1.0
    gaps = [later - earlier for earlier, later in itertools.pairwise(asked_at)]
    assert gaps == [30.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3600.0, 3600.0, 3600.0, 3600.0]
    # Answered at last: ready, and asked nothing more about capabilities.
    plan.requests(now + 3600.0, "inverter", text_seen=True)
    plan.on_outcome(ok(0x0140, (0).to_bytes(4, "little")), [])
    assert plan.stage is Stage.READY
    assert get(0x0140) not in plan.requests(now + 7200.0, "inverter", text_seen=True)


def test_bmv_settings_are_its_capacity() -> None:
    assert metric_registers("bmv") == (0x1000,)
    assert set(metric_registers("mppt")) == {0xEDDB, 0xEDF7, 0xEDF6, 0xEDF0, 0xEDDD}


def converse(device: SimulatedDevice, seconds: float) -> Conversation:
    """A conversation with a simulated device, its replies fed straight back (no PTY)."""
    model = model_for([device])
    conversation = Conversation(history_enabled=True)
    messages: list[bytes] = []
    now = 0.0
    while now < seconds:
        step = conversation.step(now, messages, "mppt" if isinstance(device, BlueSolarMppt) else "bmv", True)
        answer = device.answer(step.write[1:-1], model) if step.write else None
        messages = [answer[1:-1]] if answer else []
        now += 0.05
    return conversation


def test_conversation_with_the_simulated_mppt_reads_the_month() -> None:
    conversation = converse(BlueSolarMppt("mppt", "HQ1328Y6TF6", 600.0), 5.0)
    assert [d.days_ago for d in conversation.plan.days] == list(range(31))
    assert conversation.session.idle


def test_conversation_with_a_silent_device_gives_up() -> None:
    conversation = converse(PhoenixInverter("inverter", "HQ1709VRT3K"), 10.0)
    assert conversation.plan.stage is Stage.NO_HEX


def test_conversation_with_the_bmv_has_no_history() -> None:
    conversation = converse(Bmv702("bmv"), 3.0)
    assert conversation.plan.stage is Stage.READY
    assert not conversation.plan.has_history


def converse_with_writes(device: BlueSolarMppt, asks: list[tuple[float, list[Request]]],
                         seconds: float) -> tuple[Conversation, list[tuple[float, bytes]], list[Outcome]]:
    """`converse`, with requests from outside the plan asked at given times; every write with its time, and
    every outcome."""
    model = model_for([device])
    conversation = Conversation(history_enabled=False)
    messages: list[bytes] = []
    writes: list[tuple[float, bytes]] = []
    outcomes: list[Outcome] = []
    now = 0.0
    pending = list(asks)
    while now < seconds:
        while pending and pending[0][0] <= now:
            conversation.ask(pending.pop(0)[1])
        step = conversation.step(now, messages, "mppt", True)
        outcomes += step.outcomes
        if step.write:
            writes.append((now, step.write))
        answer = device.answer(step.write[1:-1], model) if step.write else None
        messages = [answer[1:-1]] if answer else []
        now = round(now + 0.05, 2)
    return conversation, writes, outcomes


def test_load_output_sets_go_at_most_once_a_second_after_the_device_is_ready() -> None:
    """krahabb/esphome-victron-vedirect#6: back-to-back writes were dropped without a 1 s gap."""
    charger = BlueSolarMppt("mppt", "HQ1328Y6TF6", 600.0)
    on, off = set_(0xEDAB, b"\x04"), set_(0xEDAB, b"\x00")
    conversation, writes, outcomes = converse_with_writes(charger, [(0.0, [on, get(0xEDA8), off, get(0xEDA8)])], 4.0)
    sets = [when for when, data in writes if data.startswith(b":8")]
    assert len(sets) == 2
    assert sets[0] > 0.0  # not before the capabilities probe answered
    assert sets[1] - sets[0] >= WRITE_GAP
    assert charger.load_writes == [4, 0]
    assert conversation.plan.capabilities == 0b101  # load output and history
    reads = [o for o in outcomes if o.request.register == 0xEDA8]
    assert [o.reply.data for o in reads if isinstance(o.reply, vehex.RegisterReply)] == [b"\x01", b"\x00"]


def test_a_charger_that_does_not_follow_acknowledges_but_keeps_its_state() -> None:
    charger = BlueSolarMppt("mppt", "HQ1328Y6TF6", 600.0, follows_load_control=False)
    _, _, outcomes = converse_with_writes(charger, [(0.0, [set_(0xEDAB, b"\x00"), get(0xEDA8)])], 2.0)
    (written,) = [o for o in outcomes if o.request.register == 0xEDAB]
    (read,) = [o for o in outcomes if o.request.register == 0xEDA8]
    assert written.result is Result.OK
    assert isinstance(read.reply, vehex.RegisterReply)
    assert read.reply.data == b"\x01"  # still on: it feeds the DC loads in automatic


def test_only_the_load_output_control_can_be_written() -> None:
    with pytest.raises(ValueError, match="0xEDF0 is not one the exporter writes"):
        set_(0xEDF0, b"\x00\x01").encode()
    assert vehex.set_register(0xEDAB, b"\x04") == b":8ABED0004B1\n"  # vedirect-hex.md §2's example
