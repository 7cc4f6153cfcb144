"""Home Assistant: what each value becomes (one table), the state payloads and the device-based discovery
messages. Pure: no I/O, threads or logging.

Facts from Home Assistant's documentation (`home-assistant.io` `source/_integrations/mqtt.markdown`,
`sensor.mqtt.markdown`; `developers.home-assistant` `docs/core/entity/sensor.md`): device classes and the units
each accepts (energy Wh/kWh, power W, voltage V, current A, battery %, temperature °C), `total_increasing` for a
counter that only rises (any drop is read as a new cycle), `enum` sensors with `ops` and no unit or state class.
"""

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pvmonit_exporter import __version__
from pvmonit_exporter.vedirect.enums import OFF_REASONS
from pvmonit_exporter.vedirect.fields import FIELDS, Kind
from pvmonit_exporter.vedirect.registers import REGISTERS

MANUFACTURER = "Victron Energy"
# `o.url`: the distribution's page (the project has no other public address yet).
ORIGIN = {"name": "pvmonit-exporter", "sw": __version__, "url": "https://pypi.org/project/pvmonit-exporter/"}

StateValue = float | str | list[str]


@dataclass(frozen=True)
class Entity:
    """How one state value appears in Home Assistant. `scale` turns the state's SI value into `unit`."""

    component: str = "sensor"  # or binary_sensor
    device_class: str | None = None
    state_class: str | None = None
    unit: str | None = None
    scale: float = 1.0
    decimals: int | None = None
    options: tuple[str, ...] = ()  # an enum sensor's states
    diagnostic: bool = False


_KWH = 1 / 3_600_000  # J → kWh
_COUNTER = Entity(state_class="total_increasing")
_ENERGY_COUNTER = Entity(device_class="energy", state_class="total_increasing", unit="kWh", scale=_KWH, decimals=3)


def _enum(metric: str) -> Entity:
    names = next(spec.names for spec in FIELDS.values() if spec.metric == metric) or {}
    return Entity(device_class="enum", options=tuple(names.values()))


# Values whose meaning their unit does not tell; every other value follows its unit (`_BY_UNIT`).
_BY_METRIC: Mapping[str, Entity] = {
    # Energy counters: what the Energy dashboard reads. H19 and the system yield only rise (H19 resets by hand),
    # H20 rises through the day and starts again at 0; H17/H18 (DC monitor) only rise.
    "yield_total_joules": _ENERGY_COUNTER,
    "yield_today_joules": _ENERGY_COUNTER,
    "system_yield_joules": _ENERGY_COUNTER,
    "discharged_energy_joules": _ENERGY_COUNTER,
    "charged_energy_joules": _ENERGY_COUNTER,
    "yield_yesterday_joules": Entity(device_class="energy", unit="kWh", scale=_KWH, decimals=3),  # not a counter
    "state_of_charge_ratio": Entity(device_class="battery", state_class="measurement", unit="%", scale=100,
                                    decimals=1),
    "midpoint_deviation_ratio": Entity(state_class="measurement", unit="%", scale=100, decimals=1),
    "time_to_go_seconds": Entity(state_class="measurement", unit="min", scale=1 / 60, decimals=0),
    "time_since_full_charge_seconds": Entity(state_class="measurement", unit="min", scale=1 / 60, decimals=0),
    "consumed_charge_coulombs": Entity(state_class="measurement", unit="Ah", scale=1 / 3600, decimals=2),
    "cumulative_charge_drawn_coulombs": Entity(state_class="total_increasing", unit="Ah", scale=1 / 3600,
                                               decimals=1),
    "charge_cycles": _COUNTER,
    "full_discharges": _COUNTER,
    "automatic_synchronizations": _COUNTER,
    "low_voltage_alarms": _COUNTER,
    "high_voltage_alarms": _COUNTER,
    "low_starter_voltage_alarms": _COUNTER,
    "high_starter_voltage_alarms": _COUNTER,
    "day_sequence_number": Entity(diagnostic=True),
    "charge_state": _enum("charge_state"),
    "charger_error_code": _enum("charger_error_code"),
    "tracker_mode": _enum("tracker_mode"),
    "device_mode": _enum("device_mode"),
    "monitor_mode_code": _enum("monitor_mode_code"),
    # A bitmask: the first reason shown, "None" when no bit is set.
    "off_reason": Entity(device_class="enum", options=("None", *OFF_REASONS.values())),
    "alarm_reason": Entity(),  # the reasons, comma separated
    "warning_reason": Entity(),
    "load_output_on": Entity(component="binary_sensor", device_class="power"),
    "relay_on": Entity(component="binary_sensor"),
    "alarm_on": Entity(component="binary_sensor", device_class="problem"),
}
# By the metric name's unit suffix.
_BY_UNIT: Mapping[str, Entity] = {
    "volts": Entity(device_class="voltage", state_class="measurement", unit="V"),
    "amperes": Entity(device_class="current", state_class="measurement", unit="A"),
    "watts": Entity(device_class="power", state_class="measurement", unit="W"),
    "voltamperes": Entity(device_class="apparent_power", state_class="measurement", unit="VA"),
    "celsius": Entity(device_class="temperature", state_class="measurement", unit="°C"),
    # Discharge depths and a battery's capacity: no Home Assistant class for Ah.
    "coulombs": Entity(state_class="measurement", unit="Ah", scale=1 / 3600, decimals=1),
    "joules": Entity(device_class="energy", unit="kWh", scale=_KWH, decimals=3),
}


def entity_for(metric: str) -> Entity | None:
    """The table: how the state value `metric` (a metric name without `vedirect_`) appears; None if it does not."""
    if metric in _BY_METRIC:
        return _BY_METRIC[metric]
    return _BY_UNIT.get(metric.rsplit("_", 1)[-1])


def every_metric() -> list[str]:
    """Every value a device's state can hold: the text fields' and the HEX registers' metric names."""
    fields = [spec.metric for spec in FIELDS.values() if spec.metric is not None and spec.kind is not Kind.TEXT]
    registers = [register.metric for register in REGISTERS.values() if register.metric is not None]
    return list(dict.fromkeys(fields + registers))


def is_energy_counter(metric: str) -> bool:
    entity = entity_for(metric)
    return entity is not None and entity.device_class == "energy" and entity.state_class == "total_increasing"


# Counters that start again at 0 every day (yield today): a drop to less than this share of the day's last value
# is a new day. Home Assistant reads the same way a drop of 10 % or more as a new cycle, and ignores a smaller one.
DAILY_COUNTERS = frozenset({"yield_today_joules"})
NEW_DAY_SHARE = 0.1
# "Not available" as a 16-bit or 32-bit raw count of 0.01 kWh (655.35 kWh, the most reported Energy-dashboard
# spike): no real charger or monitor yields exactly this much.
_SENTINEL_JOULES = frozenset({0xFFFF * 36_000.0, 0xFFFFFFFF * 36_000.0, 0x7FFF * 36_000.0})


class CounterGuard:
    """Energy counters as published: never lower than before (a daily counter's new day excepted), never 0 from a
    value that went missing, never a "not available" sentinel — the last good value is published instead."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def apply(self, values: dict[str, StateValue]) -> dict[str, StateValue]:
        """`values` with every energy counter corrected; a counter seen before and absent now keeps its value."""
        result = dict(values)
        for metric in {*values, *self._last}:
            if not is_energy_counter(metric):
                continue
            last = self._last.get(metric)
            value = values.get(metric)
            if not isinstance(value, float | int) or value in _SENTINEL_JOULES or not math.isfinite(value) \
                    or value < 0:
                value = None
            if value is not None and last is not None and value < last:
                new_day = metric in DAILY_COUNTERS and value < last * NEW_DAY_SHARE
                if not new_day:
                    value = last
            if value is None:
                if last is None:
                    result.pop(metric, None)
                    continue
                value = last
            self._last[metric] = value
            result[metric] = value
        return result


def state_payload(time: float | None, values: Mapping[str, StateValue]) -> str:
    """`{"time": …, values…}`: values as `ble decode --json` gives them; non-finite numbers (an infinite time to
    go) are left out, as JSON has no infinity."""
    document: dict[str, object] = {"time": None if time is None else round(time, 3)}
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            continue
        document[key] = value
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def value_template(metric: str, entity: Entity) -> str:
    """Jinja turning the state's SI value into `entity.unit`; an empty result (ignored by Home Assistant) when the
    message does not hold the value."""
    value = f"value_json.{metric}"
    if metric == "off_reason":
        shown = f"({value}[0] if {value} else 'None')"
    elif entity.component == "binary_sensor":
        shown = f"('ON' if {value} else 'OFF')"
    elif metric in ("alarm_reason", "warning_reason"):
        shown = f"({value} | join(', ') or 'None')"
    elif entity.scale != 1 or entity.decimals is not None:
        scaled = value if entity.scale == 1 else f"{value} * {entity.scale!r}"
        shown = f"(({scaled}) | round({entity.decimals if entity.decimals is not None else 3}))"
    else:
        shown = value
    return f"{{{{ {shown} if {value} is defined else '' }}}}"


def describe(metric: str) -> str:
    """The entity's name: the field's description (`Battery voltage`)."""
    for spec in FIELDS.values():
        if spec.metric == metric:
            return spec.description
    for register in REGISTERS.values():
        if register.metric == metric:
            return register.description
    return metric.replace("_", " ").capitalize()


def component(object_id: str, metric: str, entity: Entity, expire_after: float) -> dict[str, object]:
    """One entry of `cmps`."""
    config: dict[str, object] = {
        "p": entity.component,
        "name": describe(metric),
        "uniq_id": f"{object_id}_{metric}",
        "val_tpl": value_template(metric, entity),
        "exp_aft": round(expire_after),
    }
    if entity.device_class is not None:
        config["dev_cla"] = entity.device_class
    if entity.state_class is not None:
        config["stat_cla"] = entity.state_class
    if entity.unit is not None:
        config["unit_of_meas"] = entity.unit
    if entity.options:
        config["ops"] = list(entity.options)
    if entity.diagnostic:
        config["ent_cat"] = "diagnostic"
    return config


@dataclass(frozen=True)
class DeviceInfo:
    """What Home Assistant shows of one device (`dev`)."""

    object_id: str
    name: str
    product: str = ""
    serial_number: str = ""
    firmware: str = ""
    via_device: str | None = None
    product_id: str = ""

    def as_dev(self) -> dict[str, object]:
        dev: dict[str, object] = {"ids": [self.object_id], "name": self.name, "mf": MANUFACTURER}
        if self.product:
            dev["mdl"] = self.product
        if self.product_id:
            dev["mdl_id"] = self.product_id
        if self.serial_number:
            dev["sn"] = self.serial_number
        if self.firmware:
            dev["sw"] = self.firmware
        if self.via_device:
            dev["via_device"] = self.via_device
        return dev


@dataclass(frozen=True)
class Topics:
    """Where one configuration publishes."""

    prefix: str
    discovery_prefix: str

    @property
    def status(self) -> str:
        return f"{self.prefix}/status"

    def availability(self, name: str) -> str:
        return f"{self.prefix}/{name}/availability"

    def state(self, name: str) -> str:
        return f"{self.prefix}/{name}/state"

    def discovery(self, object_id: str) -> str:
        return f"{self.discovery_prefix}/device/{object_id}/config"

    @property
    def birth(self) -> str:
        """Home Assistant's own status (its birth and will)."""
        return f"{self.discovery_prefix}/status"

    # Load control's actuators: under `control/`, apart from the devices' topics (a device and an actuator
    # may share a name).
    def actuator_state(self, name: str) -> str:
        return f"{self.prefix}/control/{name}/state"

    def actuator_switch(self, name: str) -> str:
        """The switch's command topic: ON or OFF, the user's forced mode."""
        return f"{self.prefix}/control/{name}/set"

    def actuator_mode(self, name: str) -> str:
        """The select's command topic: auto, on or off."""
        return f"{self.prefix}/control/{name}/mode/set"


def device_discovery(topics: Topics, device: DeviceInfo, name: str, metrics: Iterable[str],
                     interval: float, extra: Mapping[str, Mapping[str, object]] | None = None) -> dict[str, object]:
    """The device-based discovery message of one device: one component per value in `metrics` that the table
    knows, plus `extra` components by their key in `cmps` (a probe's one sensor)."""
    components: dict[str, object] = {}
    for metric in metrics:
        entity = entity_for(metric)
        if entity is not None:
            components[metric] = component(device.object_id, metric, entity, 3 * interval)
    components.update(extra or {})
    return {
        "dev": device.as_dev(),
        "o": dict(ORIGIN),
        "avty": [{"t": topics.status}, {"t": topics.availability(name)}],
        "avty_mode": "all",
        "stat_t": topics.state(name),
        "qos": 0,
        "cmps": components,
    }


PROBE_ENTITIES: Mapping[str, Entity] = {
    "temperature": Entity(device_class="temperature", state_class="measurement", unit="°C"),
    "current": Entity(device_class="current", state_class="measurement", unit="A"),
    "power": Entity(device_class="power", state_class="measurement", unit="W"),
}
PROBE_UNITS: Mapping[str, str] = {"temperature": "°C", "current": "A", "power": "W"}


def probe_discovery(topics: Topics, device: DeviceInfo, name: str, quantity: str,
                    interval: float) -> dict[str, object]:
    """A probe: one device with one sensor, `value` in its quantity's unit."""
    entity = PROBE_ENTITIES[quantity]
    value = component(device.object_id, "value", entity, 3 * interval)
    value["name"] = quantity.capitalize()
    message = device_discovery(topics, device, name, (), interval, {"value": value})
    message["dev"] = {**device.as_dev(), "mf": "pvmonit-exporter", "mdl": f"{quantity} probe"}
    return message


def exporter_discovery(topics: Topics, device: DeviceInfo) -> dict[str, object]:
    """The exporter itself, the `via_device` of every other: a connectivity sensor on `<prefix>/status`."""
    return {
        "dev": {**device.as_dev(), "mf": "pvmonit-exporter", "mdl": "pvmonit-exporter", "sw": __version__},
        "o": dict(ORIGIN),
        "cmps": {"status": {"p": "binary_sensor", "name": "Status", "uniq_id": f"{device.object_id}_status",
                            "dev_cla": "connectivity",
                            "stat_t": topics.status, "pl_on": "online", "pl_off": "offline",
                            "ent_cat": "diagnostic"}},
    }


# --- load control: each actuator a switch (its state; a command forces the mode) and a select (its mode) -----

MODES = ("auto", "on", "off")
SWITCH_PAYLOADS = {"ON": "on", "OFF": "off"}  # the switch's pl_on/pl_off → the mode it forces


def actuator_object_id_source(name: str) -> str:
    """What an actuator's object id is made of: its name, kept apart from a device or probe of the same name."""
    return f"actuator_{name}"


def actuator_discovery(topics: Topics, device: DeviceInfo, name: str, kind: str) -> dict[str, object]:
    """One device per actuator, via the exporter: a `switch` showing whether it is on (a command from Home
    Assistant forces the mode on or off) and a `select` for its mode. Both read `actuator_state_payload`."""
    oid = device.object_id
    return {
        "dev": {**device.as_dev(), "mf": "pvmonit-exporter", "mdl": f"{kind} actuator"},
        "o": dict(ORIGIN),
        "avty": [{"t": topics.status}],
        "stat_t": topics.actuator_state(name),
        "qos": 1,
        "cmps": {
            "switch": {"p": "switch", "name": None, "uniq_id": f"{oid}_switch", "cmd_t": topics.actuator_switch(name),
                       "pl_on": "ON", "pl_off": "OFF", "val_tpl": "{{ value_json.state }}"},
            "mode": {"p": "select", "name": "Mode", "uniq_id": f"{oid}_mode", "cmd_t": topics.actuator_mode(name),
                     "ops": list(MODES), "val_tpl": "{{ value_json.mode }}", "ent_cat": "config"},
        },
    }


def actuator_state_payload(card: Mapping[str, object]) -> str:
    """An actuator's state from its card in /api/state's control section: `state` ON/OFF (read back where
    possible), `mode` (auto without a rule: it stays safe), `fault`, `dry_run`."""
    mode = card.get("mode") or "auto"
    document = {"state": "ON" if card.get("on") else "OFF", "mode": mode, "fault": bool(card.get("fault")),
                "dry_run": bool(card.get("dry_run"))}
    return json.dumps(document, separators=(",", ":"))


def switch_command(payload: bytes) -> str | None:
    """The mode a switch command forces, None for anything but ON and OFF."""
    return SWITCH_PAYLOADS.get(payload.decode("utf-8", errors="replace").strip())


def mode_command(payload: bytes) -> str | None:
    """The mode a select command sets, None for anything but auto, on and off."""
    text = payload.decode("utf-8", errors="replace").strip()
    return text if text in MODES else None
