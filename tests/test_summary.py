"""The summary (PvMonit's "Divers" box): which device speaks for the battery, the PV total, consumption and
temperature — from real State views fed with realistic blocks."""

import pytest

from pvmonit_exporter.config import DeviceConfig, ProbeConfig
from pvmonit_exporter.state import State
from pvmonit_exporter.summary import Summary, summarise
from pvmonit_exporter.vedirect.framing import DecoderStats
from tests.vedirect_samples import BMV_MAIN, INVERTER, MPPT

NOW = 1_780_000_000.0
SECOND_MPPT = {**MPPT, "SER#": "HQ1331AAAAA", "V": "26240", "PPV": "88"}


def summary_of(blocks: dict[str, dict[str, str]], probes: dict[str, tuple[ProbeConfig, float | None]] | None = None,
               stale: tuple[str, ...] = ()) -> Summary:
    names = ["bmv", "mppt", "mppt2", "inverter"]
    probes = probes or {}
    clock = [NOW]
    state = State([DeviceConfig(n, f"/dev/{n}") for n in names], [config for config, _ in probes.values()],
                  clock=lambda: clock[0])
    for name in stale:  # seen once, then silent for a minute
        state.record_blocks(name, [blocks[name]], DecoderStats())
    clock[0] += 60
    for name, block in blocks.items():
        if name not in stale:
            state.record_blocks(name, [block], DecoderStats())
    for name, (_, value) in probes.items():
        if value is not None:
            state.record_probe(name, value)
    return summarise(state.devices(), state.probes())


TEMPERATURE = ProbeConfig("shed", "file", "temperature", path="/x")
CLAMP = ProbeConfig("clamp", "serial", "current", port="/dev/c", power_voltage=230.0)
WATTMETER = ProbeConfig("meter", "file", "power", path="/y")


def test_the_battery_monitor_speaks_for_the_battery_and_every_charger_adds_its_pv_power() -> None:
    summary = summary_of({"bmv": BMV_MAIN, "mppt": MPPT, "mppt2": SECOND_MPPT, "inverter": INVERTER},
                         {"shed": (TEMPERATURE, 21.5), "clamp": (CLAMP, 0.5)})
    assert (summary.battery_device, summary.pv_power, summary.chargers, summary.temperature) == ("bmv", 200.0, 2, 21.5)
    assert (summary.battery_soc, summary.battery_voltage, summary.consumption) == pytest.approx((0.839, 12.065, 115.0))


def test_without_a_battery_monitor_a_charger_gives_the_voltage_and_there_is_no_soc() -> None:
    summary = summary_of({"mppt": MPPT, "inverter": INVERTER})
    assert (summary.battery_soc, summary.battery_voltage, summary.battery_device) == (None, 26.18, "mppt")
    assert (summary.pv_power, summary.chargers) == (112.0, 1)


def test_a_stale_device_counts_for_nothing_but_its_charger_is_still_known() -> None:
    summary = summary_of({"bmv": BMV_MAIN, "mppt": MPPT, "mppt2": SECOND_MPPT}, stale=("bmv", "mppt"))
    assert (summary.battery_device, summary.battery_soc, summary.battery_voltage) == ("mppt2", None, 26.24)
    assert (summary.pv_power, summary.chargers) == (88.0, 2)


def test_nothing_known_gives_nothing_rather_than_zero() -> None:
    assert summary_of({}, {"shed": (TEMPERATURE, None), "clamp": (CLAMP, None)}) == Summary(
        None, None, None, None, 0, None, 1, None)


def test_a_power_probe_is_consumption_as_is_and_a_clamp_without_voltage_is_not() -> None:
    amps_only = ProbeConfig("amps", "serial", "current", port="/dev/a")
    assert summary_of({}, {"amps": (amps_only, 3.0), "meter": (WATTMETER, 640.0)}).consumption == 640.0
    assert summary_of({}, {"amps": (amps_only, 3.0)}).consumption is None


AMMETER = ProbeConfig("amps", "serial", "current", port="/dev/a")


@pytest.mark.parametrize(("probes", "consumption_probes"), [
    ({}, 0),
    ({"amps": (AMMETER, 3.0)}, 0),  # amperes alone are no consumption: no gauge that could never fill
    ({"shed": (TEMPERATURE, 20.0), "amps": (AMMETER, 3.0)}, 0),
    ({"clamp": (CLAMP, None)}, 1),  # silent, still the consumption: its gauge says "unavailable"
    ({"meter": (WATTMETER, 640.0)}, 1),
    ({"amps": (AMMETER, 3.0), "clamp": (CLAMP, 0.5), "meter": (WATTMETER, None)}, 2),
])
def test_only_probes_giving_watts_count_as_consumption(
        probes: dict[str, tuple[ProbeConfig, float | None]], consumption_probes: int) -> None:
    assert summary_of({}, probes).consumption_probes == consumption_probes
