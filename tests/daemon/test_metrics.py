"""The collectors' exposition: exact bytes, sample values, staleness, and `promtool check metrics`."""

import math
import subprocess

import pytest
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from pvmonit_exporter.collector.devices import DeviceCollector
from pvmonit_exporter.collector.probes import ProbeCollector
from pvmonit_exporter.config import DeviceConfig, ProbeConfig
from pvmonit_exporter.state import State
from pvmonit_exporter.vedirect.framing import Decoder, DecoderStats
from pvmonit_exporter.vedirect.hex import RegisterReply, Response
from pvmonit_exporter.vedirect.hex_session import Outcome, Result, get
from tests.helpers import require_tool
from tests.vedirect_samples import BMV_HISTORY, BMV_MAIN, INVERTER, MPPT


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _registry(state: State) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeviceCollector(state))
    registry.register(ProbeCollector(state))
    return registry


def _state(clock: Clock) -> State:
    devices = [DeviceConfig("mppt", "/dev/a", stale_timeout=5), DeviceConfig("bmv", "/dev/b"),
               DeviceConfig("inverter", "/dev/c")]
    probes = [ProbeConfig("shed", "file", "temperature", path="/x"),
              ProbeConfig("clamp", "serial", "current", port="/dev/d", power_voltage=230.0)]
    state = State(devices, probes, clock=clock)
    state.record_blocks("mppt", [MPPT], DecoderStats(blocks_valid=1, checksum_errors=2))
    state.record_blocks("bmv", [BMV_MAIN, BMV_HISTORY], DecoderStats(blocks_valid=2))
    state.record_blocks("inverter", [INVERTER], DecoderStats(blocks_valid=1))
    state.record_probe("shed", 21.5)
    state.record_probe("clamp", None, "out_of_range", "7.5 A is above max 6.5")
    state.record_probe("clamp", 0.5)
    return state


def _state_with_hex(clock: Clock) -> State:
    """`_state` after settings were read over HEX (the MPPT's and the BMV's) and the inverter gave no answer."""
    state = _state(clock)
    hex_values = {"mppt": {0xEDDB: b"\xcd\x0a", 0xEDF7: b"\x40\x0b", 0xEDF6: b"\xc8\x0a", 0xEDF0: b"\x2c\x01",
                           0xEDDD: b"\x10\x27\x00\x00"},
                  "bmv": {0x1000: b"\xc8\x00", 0xEDDB: b"\x00\x01"}}  # 0xEDDB is not a BMV's: not exposed
    for name, registers in hex_values.items():
        state.record_hex(name, [_answer(register, data) for register, data in registers.items()], [])
    state.record_hex("inverter", [Outcome(get(0x0140), Result.TIMEOUT, None, 3)], [])
    return state


def _answer(register: int, data: bytes) -> Outcome:
    return Outcome(get(register), Result.OK, RegisterReply(Response.GET, register, 0, data))


def test_a_device_never_seen_exposes_exactly_this(clock: Clock) -> None:
    state = State([DeviceConfig("mppt", "/dev/ttyUSB0")], clock=clock)
    assert generate_latest(_registry(state)).decode() == (
        "# HELP vedirect_up 1 when a valid block arrived within the device's stale timeout, else 0\n"
        "# TYPE vedirect_up gauge\n"
        'vedirect_up{device="mppt"} 0.0\n'
        "# HELP vedirect_port_connected 1 while the serial port is open\n"
        "# TYPE vedirect_port_connected gauge\n"
        'vedirect_port_connected{device="mppt"} 0.0\n'
        "# HELP vedirect_blocks_total Checksum-valid blocks decoded\n"
        "# TYPE vedirect_blocks_total counter\n"
        'vedirect_blocks_total{device="mppt"} 0.0\n'
        "# HELP vedirect_checksum_errors_total Blocks rejected by their checksum\n"
        "# TYPE vedirect_checksum_errors_total counter\n"
        'vedirect_checksum_errors_total{device="mppt"} 0.0\n'
        "# HELP vedirect_malformed_blocks_total Blocks rejected for their structure "
        "(bad bytes, sizes over the protocol's limits)\n"
        "# TYPE vedirect_malformed_blocks_total counter\n"
        'vedirect_malformed_blocks_total{device="mppt"} 0.0\n'
        "# HELP vedirect_hex_messages_total Asynchronous HEX messages removed from the stream, "
        "by result (valid, invalid)\n"
        "# TYPE vedirect_hex_messages_total counter\n"
        'vedirect_hex_messages_total{device="mppt",result="valid"} 0.0\n'
        'vedirect_hex_messages_total{device="mppt",result="invalid"} 0.0\n'
        "# HELP vedirect_received_bytes_total Bytes read from the port\n"
        "# TYPE vedirect_received_bytes_total counter\n"
        'vedirect_received_bytes_total{device="mppt"} 0.0\n'
        "# HELP vedirect_discarded_bytes_total Bytes that belonged to no valid block or HEX message\n"
        "# TYPE vedirect_discarded_bytes_total counter\n"
        'vedirect_discarded_bytes_total{device="mppt"} 0.0\n'
        "# HELP vedirect_hex_requests_total HEX requests the exporter sent, by how they ended "
        "(ok, unknown_id, not_supported, parameter_error, refused, timeout)\n"
        "# TYPE vedirect_hex_requests_total counter\n"
        + "".join(f'vedirect_hex_requests_total{{device="mppt",result="{result}"}} 0.0\n'
                  for result in ("ok", "unknown_id", "not_supported", "parameter_error", "refused", "timeout"))
    )


def test_values_in_base_units(clock: Clock) -> None:
    registry = _registry(_state(clock))
    value = registry.get_sample_value
    assert value("vedirect_up", {"device": "mppt"}) == 1.0
    assert value("vedirect_battery_voltage_volts", {"device": "mppt"}) == pytest.approx(26.18)
    assert value("vedirect_battery_current_amperes", {"device": "mppt"}) == pytest.approx(4.2)
    assert value("vedirect_panel_voltage_volts", {"device": "mppt"}) == pytest.approx(61.23)
    assert value("vedirect_panel_power_watts", {"device": "mppt"}) == 112.0
    assert value("vedirect_yield_total_joules", {"device": "mppt"}) == pytest.approx(1234 * 36_000)
    assert value("vedirect_load_output_on", {"device": "mppt"}) == 1.0
    assert value("vedirect_charge_state", {"device": "mppt", "state": "Bulk"}) == 1.0
    assert value("vedirect_charge_state", {"device": "mppt", "state": "Float"}) == 0.0
    assert value("vedirect_tracker_mode", {"device": "mppt", "mode": "MPPT tracker active"}) == 1.0
    assert value("vedirect_off_reason", {"device": "mppt", "reason": "No input power"}) == 0.0
    assert value("vedirect_checksum_errors_total", {"device": "mppt"}) == 2.0
    assert value("vedirect_device_info", {"device": "mppt", "product_id": "0xA04A",
                                          "product": "BlueSolar MPPT 100/30 rev2",
                                          "serial_number": "HQ1328Y6TF6", "firmware": "1.59",
                                          "source": "serial"}) == 1.0
    assert value("vedirect_state_of_charge_ratio", {"device": "bmv"}) == pytest.approx(0.839)
    assert value("vedirect_time_to_go_seconds", {"device": "bmv"}) == math.inf
    assert value("vedirect_consumed_charge_coulombs", {"device": "bmv"}) == pytest.approx(-65473 * 3.6)
    assert value("vedirect_charged_energy_joules", {"device": "bmv"}) == pytest.approx(8527 * 36_000)
    assert value("vedirect_alarm_reason", {"device": "bmv", "reason": "Low SOC"}) == 1.0
    assert value("vedirect_alarm_reason", {"device": "bmv", "reason": "Low voltage"}) == 1.0
    assert value("vedirect_alarm_reason", {"device": "bmv", "reason": "High voltage"}) == 0.0
    assert value("vedirect_battery_temperature_celsius", {"device": "bmv"}) is None  # sent as '---'
    assert value("vedirect_ac_output_voltage_volts", {"device": "inverter"}) == pytest.approx(230.01)
    assert value("vedirect_device_mode", {"device": "inverter", "mode": "Inverter on"}) == 1.0
    assert value("pvmonit_temperature_celsius", {"probe": "shed"}) == 21.5
    assert value("pvmonit_current_amperes", {"probe": "clamp"}) == 0.5
    assert value("pvmonit_power_watts", {"probe": "clamp"}) == 115.0
    assert value("pvmonit_probe_errors_total", {"probe": "clamp", "kind": "out_of_range"}) == 1.0
    assert value("pvmonit_probe_up", {"probe": "clamp"}) == 1.0
    assert value("pvmonit_probe_up", {"probe": "shed"}) == 1.0


def test_a_failed_reading_withdraws_the_previous_value(clock: Clock) -> None:
    state = _state(clock)
    state.record_probe("clamp", None, "timeout", "no line within 10 s")
    value = _registry(state).get_sample_value
    assert value("pvmonit_probe_up", {"probe": "clamp"}) == 0.0
    assert value("pvmonit_current_amperes", {"probe": "clamp"}) is None
    assert value("pvmonit_power_watts", {"probe": "clamp"}) is None
    assert value("pvmonit_probe_errors_total", {"probe": "clamp", "kind": "timeout"}) == 1.0


def test_a_clock_stepped_back_never_makes_old_values_current() -> None:
    """Ages come from the ticker: NTP stepping the wall clock back an hour must not revive a silent device."""
    wall, tick = [1_800_000_000.0], [100.0]
    state = State([DeviceConfig("mppt", "/dev/a", stale_timeout=5)], clock=lambda: wall[0], ticker=lambda: tick[0])
    state.record_blocks("mppt", [MPPT], DecoderStats(blocks_valid=1))
    wall[0] -= 3600
    tick[0] += 10
    view = state.devices()[0]
    assert not view.up
    assert view.fields == {}
    assert view.last_block_time == 1_800_000_000.0


def test_another_device_on_the_port_replaces_the_old_identity(clock: Clock) -> None:
    state = State([DeviceConfig("usb0", "/dev/ttyUSB0")], clock=clock)
    state.record_blocks("usb0", [MPPT], DecoderStats(blocks_valid=1))
    state.record_blocks("usb0", [BMV_MAIN], DecoderStats(blocks_valid=2))  # ttyUSB numbers swapped at boot
    view = state.devices()[0]
    assert view.identity.product == "BMV-700"
    assert view.identity.serial_number == ""
    assert "PPV" not in view.fields


def test_stale_values_disappear_but_up_and_counters_stay(clock: Clock) -> None:
    state = _state(clock)
    registry = _registry(state)
    clock.now += 5.5  # past mppt's 5 s timeout
    value = registry.get_sample_value
    assert value("vedirect_up", {"device": "mppt"}) == 0.0
    assert value("vedirect_battery_voltage_volts", {"device": "mppt"}) is None
    assert value("vedirect_charge_state", {"device": "mppt", "state": "Bulk"}) is None
    assert value("vedirect_blocks_total", {"device": "mppt"}) == 1.0
    assert value("vedirect_last_block_timestamp_seconds", {"device": "mppt"}) == 1_800_000_000.0
    clock.now += 200  # and the probes' readings age out too
    assert value("pvmonit_temperature_celsius", {"probe": "shed"}) is None
    assert value("pvmonit_probe_up", {"probe": "shed"}) == 0.0


@pytest.mark.slow
def test_promtool_finds_nothing(clock: Clock) -> None:
    promtool = require_tool("promtool")
    exposition = generate_latest(_registry(_state_with_hex(clock)))
    result = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == b""
    assert result.stderr.strip() == b""


def test_recordings_decode_into_metrics(clock: Clock) -> None:
    """The genuine BMV recording, through decoder, state and collector."""
    from pathlib import Path

    decoder = Decoder()
    blocks = decoder.feed((Path(__file__).parents[1] / "data/captures/bvm702.dump").read_bytes())
    state = State([DeviceConfig("bmv", "/dev/b")], clock=clock)
    state.record_blocks("bmv", blocks, decoder.stats)
    value = _registry(state).get_sample_value
    assert value("vedirect_blocks_total", {"device": "bmv"}) == 906.0
    assert value("vedirect_battery_voltage_volts", {"device": "bmv"}) == pytest.approx(int(blocks[-2]["V"]) / 1000)
    assert value("vedirect_charge_cycles", {"device": "bmv"}) == float(blocks[-1]["H4"])


def test_hex_register_metrics_in_si_units(clock: Clock) -> None:
    value = _registry(_state_with_hex(clock)).get_sample_value
    assert value("vedirect_charger_temperature_celsius", {"device": "mppt"}) == pytest.approx(27.65)
    assert value("vedirect_battery_absorption_voltage_volts", {"device": "mppt"}) == pytest.approx(28.8)
    assert value("vedirect_battery_float_voltage_volts", {"device": "mppt"}) == pytest.approx(27.6)
    assert value("vedirect_battery_max_charge_current_amperes", {"device": "mppt"}) == pytest.approx(30.0)
    assert value("vedirect_system_yield_joules", {"device": "mppt"}) == pytest.approx(100 * 3.6e6)
    assert value("vedirect_battery_capacity_coulombs", {"device": "bmv"}) == pytest.approx(200 * 3600)
    assert value("vedirect_charger_temperature_celsius", {"device": "bmv"}) is None
    assert value("vedirect_hex_requests_total", {"device": "mppt", "result": "ok"}) == 5
    assert value("vedirect_hex_requests_total", {"device": "inverter", "result": "timeout"}) == 1


@pytest.mark.parametrize(("data", "celsius"), [(b"\xff\x7f", None), (b"\xff\xff", -0.01)])
def test_hex_register_not_available_gives_no_sample(clock: Clock, data: bytes, celsius: float | None) -> None:
    """sn16: 0x7FFF is "not available" (no sample); all bits set is -0.01 °C, a value (ve_regs.h)."""
    state = State([DeviceConfig("mppt", "/dev/a")], clock=clock)
    state.record_blocks("mppt", [MPPT], DecoderStats(blocks_valid=1))
    state.record_hex("mppt", [_answer(0xEDDB, data)], [])
    assert _registry(state).get_sample_value("vedirect_charger_temperature_celsius", {"device": "mppt"}) == celsius


def test_hex_register_values_go_with_the_device(clock: Clock) -> None:
    state = _state_with_hex(clock)
    clock.now += 60  # every device stale, the text pause after HEX long over
    assert _registry(state).get_sample_value("vedirect_battery_float_voltage_volts", {"device": "mppt"}) is None
