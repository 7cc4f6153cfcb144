"""The Home Assistant table, the templates, the energy counters' guard and the ids: pure, table-tested.

Device classes and the units Home Assistant accepts for each, from its documentation
(`home-assistant/home-assistant.io` `source/_integrations/sensor.markdown`, `developers.home-assistant`
`docs/core/entity/sensor.md`): a pair outside these is refused by newer Home Assistant (mp-se/victron-receiver#21).
"""

import json
import math

import jinja2
import pytest

from pvmonit_exporter.config.mqtt_ids import object_id
from pvmonit_exporter.mqtt.homeassistant import (
    CounterGuard,
    Entity,
    StateValue,
    actuator_state_payload,
    entity_for,
    every_metric,
    mode_command,
    state_payload,
    switch_command,
    value_template,
)
from pvmonit_exporter.vedirect.fields import metric_values
from tests.vedirect_samples import BMV_HISTORY, BMV_MAIN, MPPT

ACCEPTED_UNITS = {
    "energy": {"Wh", "kWh", "MWh"},
    "power": {"W", "kW"},
    "apparent_power": {"VA"},
    "voltage": {"V", "mV"},
    "current": {"A", "mA"},
    "battery": {"%"},
    "temperature": {"°C", "°F", "K"},
}
# Energy: total or total_increasing, or none (a value that is not a counter); the others: measurement.
ACCEPTED_STATE_CLASSES = {"energy": {None, "total", "total_increasing"}}


@pytest.mark.parametrize(("metric", "device_class", "state_class", "unit"), [
    ("yield_total_joules", "energy", "total_increasing", "kWh"),
    ("yield_today_joules", "energy", "total_increasing", "kWh"),
    ("system_yield_joules", "energy", "total_increasing", "kWh"),
    ("yield_yesterday_joules", "energy", None, "kWh"),
    ("panel_power_watts", "power", "measurement", "W"),
    ("battery_power_watts", "power", "measurement", "W"),
    ("battery_voltage_volts", "voltage", "measurement", "V"),
    ("panel_voltage_volts", "voltage", "measurement", "V"),
    ("starter_voltage_volts", "voltage", "measurement", "V"),
    ("midpoint_voltage_volts", "voltage", "measurement", "V"),
    ("ac_output_voltage_volts", "voltage", "measurement", "V"),
    ("battery_current_amperes", "current", "measurement", "A"),
    ("load_current_amperes", "current", "measurement", "A"),
    ("ac_output_current_amperes", "current", "measurement", "A"),
    ("state_of_charge_ratio", "battery", "measurement", "%"),
    ("battery_temperature_celsius", "temperature", "measurement", "°C"),
    ("charger_temperature_celsius", "temperature", "measurement", "°C"),
    ("consumed_charge_coulombs", None, "measurement", "Ah"),
    ("time_to_go_seconds", None, "measurement", "min"),
    ("charge_state", "enum", None, None),
    ("charger_error_code", "enum", None, None),
    ("off_reason", "enum", None, None),
    ("tracker_mode", "enum", None, None),
])
def test_the_issue_table(metric: str, device_class: str | None, state_class: str | None, unit: str | None) -> None:
    entity = entity_for(metric)
    assert entity is not None
    assert (entity.device_class, entity.state_class, entity.unit) == (device_class, state_class, unit)


@pytest.mark.parametrize("metric", every_metric())
def test_every_value_has_an_entity_home_assistant_accepts(metric: str) -> None:
    entity = entity_for(metric)
    assert entity is not None
    if entity.device_class == "enum":
        assert entity.options
        assert entity.unit is None
        assert entity.state_class is None
    elif entity.component == "sensor" and entity.device_class in ACCEPTED_UNITS:
        assert entity.unit in ACCEPTED_UNITS[entity.device_class], metric
        assert entity.state_class in ACCEPTED_STATE_CLASSES.get(entity.device_class, {"measurement"}), metric


def render(metric: str, entity: Entity, state: dict[str, StateValue]) -> str:
    """As Home Assistant does: the template with `value_json`, the message's JSON."""
    return jinja2.Environment(autoescape=False).from_string(  # noqa: S701 - not HTML
        value_template(metric, entity)).render(value_json=json.loads(state_payload(1.0, state)))


def test_templates_convert_to_home_assistants_units() -> None:
    state: dict[str, StateValue] = {**metric_values(MPPT), **metric_values(BMV_MAIN),
                                    **metric_values(BMV_HISTORY)}
    shown = {metric: render(metric, entity, state) for metric in state
             if (entity := entity_for(metric)) is not None}
    assert shown["yield_total_joules"] == "12.34"  # 1234 × 0.01 kWh
    assert shown["battery_voltage_volts"] == "12.065"
    assert shown["state_of_charge_ratio"] == "83.9"
    assert shown["consumed_charge_coulombs"] == "-65.47"  # -65473 mAh
    assert shown["charge_state"] == "Bulk"
    assert shown["off_reason"] == "None"
    assert shown["alarm_reason"] == "Low voltage, Low SOC"
    assert shown["alarm_on"] == "ON"
    assert shown["load_output_on"] == "ON"
    assert shown["charged_energy_joules"] == "85.27"
    # a value this message does not hold renders empty, which Home Assistant ignores (never 0)
    assert render("battery_temperature_celsius", entity_for("battery_temperature_celsius"), state) == ""  # type: ignore[arg-type]
    assert "time_to_go_seconds" not in json.loads(state_payload(1.0, state))  # infinite: not JSON


J = 36_000.0  # 0.01 kWh


@pytest.mark.parametrize(("metric", "sent", "published"), [
    ("yield_total_joules", [100, 99, 101], [100, 100, 101]),  # never lower
    ("yield_total_joules", [100, None, 100], [100, 100, 100]),  # missing: the last value, never 0
    ("yield_total_joules", [None, 5], [None, 5]),  # never seen: absent
    ("yield_total_joules", [100, 0xFFFF, 101], [100, 100, 101]),  # 655.35 kWh "not available"
    ("yield_total_joules", [100, 0, 100], [100, 100, 100]),  # a reset to 0 (a glitch) holds the total
    ("yield_today_joules", [150, 149, 150], [150, 150, 150]),  # a small drop is noise
    ("yield_today_joules", [150, 0, 3], [150, 0, 3]),  # a new day starts at 0
    ("yield_today_joules", [150, None, 0xFFFF, 151], [150, 150, 150, 151]),
    ("charged_energy_joules", [10, 9], [10, 10]),
])
def test_energy_counters(metric: str, sent: list[int | None], published: list[int | None]) -> None:
    guard = CounterGuard()
    out = []
    for value in sent:
        values: dict[str, float | str | list[str]] = {} if value is None else {metric: value * J}
        result = guard.apply(values).get(metric)
        out.append(None if result is None else round(float(result) / J))  # type: ignore[arg-type]
    assert out == published


def test_a_non_counter_passes_unchanged() -> None:
    guard = CounterGuard()
    assert guard.apply({"battery_voltage_volts": 13.0}) == {"battery_voltage_volts": 13.0}
    assert guard.apply({"battery_voltage_volts": 12.0, "yield_yesterday_joules": 1.0}) == {
        "battery_voltage_volts": 12.0, "yield_yesterday_joules": 1.0}
    assert guard.apply({"x": math.inf}) == {"x": math.inf}


@pytest.mark.parametrize(("identifier", "expected"), [
    ("HQ1328Y6TF6", "pvmonit_hq1328y6tf6"),  # upper case: lower case
    ("hq1328y6tf6", "pvmonit_hq1328y6tf6"),  # the same device whichever case it is written in
    ("E1:2B:3C:4D:5E:6F", "pvmonit_e1_2b_3c_4d_5e_6f"),
    ("Shed MPPT-1.a", "pvmonit_shed_mppt_1_a"),
])
def test_object_ids(identifier: str, expected: str) -> None:
    assert object_id(identifier) == expected


@pytest.mark.parametrize(
    ("payload", "switch", "mode"),
    [
        (b"ON", "on", None),  # the switch's pl_on; the select's options are lower case
        (b"OFF", "off", None),
        (b"on", None, "on"),
        (b"off", None, "off"),
        (b"auto", None, "auto"),
        (b" auto\n", None, "auto"),
        (b"AUTO", None, None),
        (b"toggle", None, None),
        (b"", None, None),
        (b"\xff\xfe", None, None),
        (b'{"state": "ON"}', None, None),
    ],
)
def test_only_the_offered_payloads_are_commands(payload: bytes, switch: str | None, mode: str | None) -> None:
    assert switch_command(payload) == switch
    assert mode_command(payload) == mode


@pytest.mark.parametrize(
    ("card", "state"),
    [
        ({"on": True, "mode": "auto", "fault": False, "dry_run": False},
         {"state": "ON", "mode": "auto", "fault": False, "dry_run": False}),
        ({"on": False, "mode": "on", "fault": True, "dry_run": True},
         {"state": "OFF", "mode": "on", "fault": True, "dry_run": True}),
        ({"on": False, "mode": None, "fault": False, "dry_run": False},  # no rule: it stays safe, as in auto
         {"state": "OFF", "mode": "auto", "fault": False, "dry_run": False}),
    ],
)
def test_an_actuators_state_payload_follows_its_card(card: dict[str, object], state: dict[str, object]) -> None:
    assert json.loads(actuator_state_payload(card)) == state
