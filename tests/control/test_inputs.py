"""A rule's inputs come from the same state as /api/state: values in SI units, enumerations by their text, ON/OFF
with their words, each with the age of what it comes from; nothing for what is not fresh."""

from pvmonit_exporter.config import DeviceConfig, ProbeConfig
from pvmonit_exporter.control.decide import Reading
from pvmonit_exporter.control.inputs import gather
from pvmonit_exporter.state import State
from pvmonit_exporter.vedirect.framing import DecoderStats
from tests.vedirect_samples import BMV_MAIN, MPPT

WANTED = ["summary.battery_soc", "summary.pv_power", "summary.consumption", "mppt.CS", "mppt.V", "mppt.LOAD",
          "bmv.SOC", "tank", "mppt.H20", "ghost.V"]


def test_values_and_ages_from_the_state() -> None:
    now = [1000.0]
    state = State([DeviceConfig("mppt", "/dev/a", stale_timeout=5), DeviceConfig("bmv", "/dev/b", stale_timeout=5)],
                  [ProbeConfig("tank", "file", "temperature", path="/x", interval=60)], clock=lambda: now[0])
    state.record_blocks("bmv", [BMV_MAIN], DecoderStats())
    now[0] = 1002.0
    state.record_blocks("mppt", [MPPT], DecoderStats())
    state.record_probe("tank", 48.5)
    now[0] = 1003.0
    readings = gather(state.devices(), state.probes(), WANTED)
    assert readings["summary.battery_soc"] == Reading(0.839, 3.0)  # the BMV's SOC, as old as its block
    assert readings["summary.pv_power"] == Reading(112.0, 1.0)
    assert readings["mppt.CS"] == Reading("Bulk", 1.0)
    assert readings["mppt.V"] == Reading(26.18, 1.0)
    assert readings["mppt.LOAD"] == Reading(1.0, 1.0, "ON")
    assert readings["bmv.SOC"] == Reading(0.839, 3.0, None)
    assert readings["tank"] == Reading(48.5, 1.0)
    assert readings["mppt.H20"].value == 432_000.0  # 0.12 kWh in joules
    assert "summary.consumption" not in readings  # no power probe
    assert "ghost.V" not in readings

    now[0] = 1006.5  # the BMV is past its stale timeout, the charger not yet
    readings = gather(state.devices(), state.probes(), WANTED)
    assert "summary.battery_soc" not in readings
    assert "bmv.SOC" not in readings
    assert readings["mppt.V"] == Reading(26.18, 4.5)


def test_ages_are_real_time_whatever_the_wall_clock_does() -> None:
    """A Pi without a real-time clock sets its wall clock at an NTP sync, by months either way: a value must
    neither look months old after a jump forward nor stay fresh for ever after a jump back. The state measures
    ages on its monotonic ticker."""
    wall, tick = [1000.0], [50.0]
    state = State([DeviceConfig("bmv", "/dev/b", stale_timeout=5)], clock=lambda: wall[0], ticker=lambda: tick[0])
    state.record_blocks("bmv", [BMV_MAIN], DecoderStats())
    for jump in (90 * 86_400.0, -86_400.0):
        wall[0], tick[0] = 1000.0 + jump + 2, 52.0
        assert gather(state.devices(), state.probes(), ["bmv.SOC"]) == {"bmv.SOC": Reading(0.839, 2.0, None)}
        wall[0], tick[0] = 1000.0 + jump + 6, 56.0  # past its stale timeout in real time
        assert gather(state.devices(), state.probes(), ["bmv.SOC"]) == {}
