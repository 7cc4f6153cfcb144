"""The `control`, `actuators` and `rules` sections: switching loads. Every error is one ConfigError naming the
key path, like the rest of the file's."""

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, cast

from pvmonit_exporter.config.checks import Checks, ConfigError, Reader, did_you_mean, type_name
from pvmonit_exporter.config.schema import (
    ACTUATOR_KEYS,
    ACTUATOR_TYPES,
    COMPARISONS,
    RULE_MODES,
    SUMMARY_INPUTS,
    ActuatorConfig,
    Comparison,
    Condition,
    ControlConfig,
    DeviceConfig,
    ProbeConfig,
    RuleConfig,
)
from pvmonit_exporter.vedirect.fields import FIELDS, Kind

_TIME_OF_DAY = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_ORDER = {"at_least": ">=", "above": ">", "below": "<", "at_most": "<="}


def yaml_11_switch_keys(data: object) -> object:
    """YAML 1.1 (PyYAML) reads the keys `on:` and `off:` as the booleans true and false: an actuator's `on`
    and `off` commands are given back their names before anything is checked."""
    if not isinstance(data, dict) or not isinstance(data.get("actuators"), list):
        return data
    data["actuators"] = [
        {({True: "on", False: "off"}.get(key, key) if isinstance(key, bool) else key): value
         for key, value in item.items()} if isinstance(item, dict) else item
        for item in data["actuators"]
    ]
    return data


def control(reader: Reader | None, checks: Checks, file: str) -> ControlConfig:
    if reader is None:
        return ControlConfig()
    audit_file = reader.get("audit_file", checks.text, None)
    config = ControlConfig(
        dry_run=reader.get("dry_run", checks.boolean, True),
        interval=reader.get("interval", checks.measure("control.interval"), ControlConfig.interval),
        # Relative to the configuration file, like emoncms.queue_dir: the daemon's working directory is `/`.
        audit_file=None if audit_file is None else Path(file).parent / audit_file,
    )
    reader.finish()
    return config


def actuators(items: list[object], file: str, checks: Checks, devices: Sequence[DeviceConfig], *,
              mqtt: bool = False) -> tuple[ActuatorConfig, ...]:
    """`mqtt`: whether the file has an mqtt section (the broker an mqtt actuator's topics are on)."""
    found: list[ActuatorConfig] = []
    names: dict[str, str] = {}
    for index, item in enumerate(items):
        reader = Reader(file, item, f"actuators[{index}]")
        actuator = _actuator(reader, checks, mqtt=mqtt)
        if actuator.name in names:
            raise reader.error("name", f"duplicate actuator name {actuator.name!r} (also {names[actuator.name]})")
        names[actuator.name] = reader.path
        _check_actuator(reader, actuator, devices)
        found.append(actuator)
    _check_actuator_outputs(file, found)
    return tuple(found)


def _actuator(reader: Reader, checks: Checks, *, mqtt: bool) -> ActuatorConfig:
    """One `actuators[]` entry as read: its type first, then only the keys that type has, each checked on its
    own."""
    name = reader.require("name", checks.name)
    kind = reader.require("type", checks.choice(ACTUATOR_TYPES))
    if kind == "mqtt" and not mqtt:
        raise reader.error("type", "mqtt actuators need the mqtt: section (an MQTT broker)")
    for key in reader.data:
        if key not in ("name", "type", *ACTUATOR_KEYS[kind]):
            raise reader.error(key, f"does not apply to a {kind} actuator")
    defaults = ActuatorConfig(name="", type="command")
    actuator = ActuatorConfig(
        name=name,
        type=cast(Literal["command", "gpio", "vedirect_load", "mqtt"], kind),
        on=reader.get("on", checks.argv, ()),
        off=reader.get("off", checks.argv, ()),
        state=reader.get("state", checks.argv, ()),
        timeout=reader.get("timeout", checks.measure("actuators[].timeout"), defaults.timeout),
        confirm_timeout=reader.get("confirm_timeout", checks.measure("actuators[].confirm_timeout"),
                                   defaults.confirm_timeout),
        pin=reader.get("pin", checks.whole("actuators[].pin"), None),
        active_low=reader.get("active_low", checks.boolean, False),
        device=reader.get("device", checks.text, ""),
        command_topic=reader.get("command_topic", _topic(checks), ""),
        state_topic=reader.get("state_topic", _topic(checks), ""),
        payload_on=reader.get("payload_on", _payload(checks), defaults.payload_on),
        payload_off=reader.get("payload_off", _payload(checks), defaults.payload_off),
        state_on=reader.get("state_on", _payload(checks), defaults.state_on),
        state_off=reader.get("state_off", _payload(checks), defaults.state_off),
    )
    reader.finish()
    return actuator


def _check_actuator(reader: Reader, actuator: ActuatorConfig, devices: Sequence[DeviceConfig]) -> None:
    """The keys its type requires, then that type's own rules."""
    required = {"command": ("on", "off"), "gpio": ("pin",), "vedirect_load": ("device",),
                "mqtt": ("command_topic", "state_topic")}[actuator.type]
    for key in required:
        if not getattr(actuator, key) and getattr(actuator, key) != 0:
            raise reader.error(key, f"missing required key for a {actuator.type} actuator")
    if actuator.type == "vedirect_load":
        _check_load_device(reader, actuator.device, devices)
    if actuator.type == "mqtt":
        _check_mqtt_actuator(reader, actuator)


def _check_mqtt_actuator(reader: Reader, actuator: ActuatorConfig) -> None:
    """On and off told apart, in the commands and in the read-back, and the read-back not on the command topic."""
    for on, off in (("payload_on", "payload_off"), ("state_on", "state_off")):
        if getattr(actuator, on) == getattr(actuator, off):
            raise reader.error(off, f"is the same as {on}: on and off could not be told apart")
    if actuator.command_topic == actuator.state_topic:
        raise reader.error("state_topic", "is the command_topic: the read-back would hear the commands")


def _check_actuator_outputs(file: str, found: Sequence[ActuatorConfig]) -> None:
    """No topic, load output or GPIO pin used by two actuators (checked actuator by actuator, in that order)."""
    pins: dict[int, int] = {}
    loads: dict[str, int] = {}
    topics: dict[str, int] = {}
    for index, actuator in enumerate(found):
        _check_topics(file, index, actuator, topics)
        if actuator.type == "vedirect_load":
            if actuator.device in loads:
                raise ConfigError(file, f"actuators[{index}].device", f"{actuator.device}'s load output is already "
                                                                      f"actuators[{loads[actuator.device]}]")
            loads[actuator.device] = index
        if actuator.pin is not None and actuator.type == "gpio":
            if actuator.pin in pins:
                raise ConfigError(file, f"actuators[{index}].pin", f"GPIO {actuator.pin} is already "
                                                                   f"actuators[{pins[actuator.pin]}]")
            pins[actuator.pin] = index


def _check_topics(file: str, index: int, actuator: ActuatorConfig, topics: dict[str, int]) -> None:
    """Neither of actuators[index]'s topics one of an earlier actuator's (`topics`: topic → index), then its own
    added."""
    for key in ("command_topic", "state_topic"):
        topic = getattr(actuator, key)
        if topic and topic in topics:
            raise ConfigError(file, f"actuators[{index}].{key}", f"{topic!r} is already a topic of "
                                                                 f"actuators[{topics[topic]}]")
    topics.update(dict.fromkeys([t for t in (actuator.command_topic, actuator.state_topic) if t], index))


def _topic(checks: Checks) -> Callable[[object, str], str]:
    """A topic to publish to or read: no wildcard (`+`, `#`), not empty, at most 65535 bytes (MQTT's limit)."""
    def check(value: object, path: str) -> str:
        topic = checks.text(value, path)
        if not topic or "+" in topic or "#" in topic or "\0" in topic or len(topic.encode()) > 65535:
            raise checks.fail(path, f"{topic!r:.80} must be one topic: no wildcard ('+', '#'), not empty")
        return topic

    return check


def _payload(checks: Checks) -> Callable[[object, str], str]:
    """A payload as text; YAML 1.1 reads `ON`/`OFF`/`on`/`off` unquoted as booleans: given back their name."""
    def check(value: object, path: str) -> str:
        if isinstance(value, bool):
            raise checks.fail(path, "must be quoted (YAML reads ON, OFF, yes and no unquoted as true and false)")
        if isinstance(value, int | float):
            return str(value)
        return checks.text(value, path)

    return check


def _check_load_device(reader: Reader, name: str, devices: Sequence[DeviceConfig]) -> None:
    device = next((d for d in devices if d.name == name), None)
    if device is None:
        raise reader.error("device", _unknown("device", name, [d.name for d in devices]))
    if device.source != "serial":
        raise reader.error("device", f"{name!r} is a Bluetooth device: its load output is switched over a "
                                     "VE.Direct cable (HEX), not over Bluetooth")


def _unknown(what: str, name: str, known: Sequence[str]) -> str:
    guess = did_you_mean(name, known)
    hint = f" (did you mean {guess!r}?)" if guess else (f" (known: {', '.join(known)})" if known else "")
    return f"unknown {what} {name!r}{hint}"


class _Values:
    """What a rule's `value` may name: `summary.<key>`, `<device>.<LABEL>` or `<probe>`."""

    def __init__(self, devices: Sequence[DeviceConfig], probes: Sequence[ProbeConfig]) -> None:
        self.devices = [d.name for d in devices]
        self.probes = [p.name for p in probes]

    def problem(self, value: str) -> str | None:
        if value.startswith("summary."):
            key = value.removeprefix("summary.")
            return None if key in SUMMARY_INPUTS else _unknown("summary value", key, SUMMARY_INPUTS)
        if value in self.probes:
            return None
        device, dot, label = value.rpartition(".")
        if not dot:
            return _unknown("probe", value, self.probes) + " (or write summary.<key> or <device>.<LABEL>)"
        if device not in self.devices:
            return _unknown("device", device, self.devices)
        spec = FIELDS.get(label)
        if spec is None:
            return _unknown("label", label, list(FIELDS))
        if spec.kind is Kind.TEXT:
            return f"{label!r} is text (serial number, model…), not a value a rule can compare"
        return None


def rules(items: list[object], file: str, checks: Checks, actuators_: Sequence[ActuatorConfig],
          devices: Sequence[DeviceConfig], probes: Sequence[ProbeConfig]) -> tuple[RuleConfig, ...]:
    values = _Values(devices, probes)
    found: list[RuleConfig] = []
    ruled: dict[str, str] = {}
    names = [a.name for a in actuators_]
    for index, item in enumerate(items):
        reader = Reader(file, item, f"rules[{index}]")
        actuator = reader.require("actuator", checks.name)
        if actuator not in names:
            raise reader.error("actuator", _unknown("actuator", actuator, names))
        if actuator in ruled:
            raise reader.error("actuator", f"{actuator!r} already has a rule ({ruled[actuator]}): one rule per "
                                           "actuator")
        ruled[actuator] = reader.path
        mode = reader.get("mode", _mode(checks), "auto")
        condition = _condition_reader(checks, values)

        def seconds(key: str, reader: Reader = reader) -> float:
            return reader.get(key, checks.measure(f"rules[].{key}"), cast(float, getattr(RuleConfig, key)))

        rule = RuleConfig(
            actuator=actuator,
            mode=cast(Literal["auto", "on", "off"], mode),
            on_when=reader.get("on_when", condition, None),
            off_when=reader.get("off_when", condition, None),
            on_for=seconds("on_for"),
            off_for=seconds("off_for"),
            min_on=seconds("min_on"),
            min_off=seconds("min_off"),
            max_on_per_day=reader.get("max_on_per_day", checks.measure("rules[].max_on_per_day"), None),
            window=reader.get("window", _window(checks), None),
            max_age=seconds("max_age"),
            data_loss_after=seconds("data_loss_after"),
            max_switches_per_hour=reader.get("max_switches_per_hour", checks.whole("rules[].max_switches_per_hour"),
                                             RuleConfig.max_switches_per_hour),
        )
        reader.finish()
        if rule.mode == "auto" and rule.on_when is None:
            raise reader.error("on_when", "missing required key for mode auto (when the actuator switches on)")
        if rule.on_when is not None and rule.off_when is not None:
            overlap = _overlap(rule.on_when, rule.off_when)
            if overlap is not None:
                raise reader.error("off_when", overlap)
        found.append(rule)
    return tuple(found)


def _mode(checks: Checks) -> Callable[[object, str], str]:
    choice = checks.choice(RULE_MODES)

    def check(value: object, path: str) -> str:
        # YAML 1.1 reads `mode: on` as true and `mode: off` as false.
        if isinstance(value, bool):
            return "on" if value else "off"
        return choice(value, path)

    return check


def _window(checks: Checks) -> Callable[[object, str], tuple[str, str]]:
    def check(value: object, path: str) -> tuple[str, str]:
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, str) and _TIME_OF_DAY.fullmatch(v) for v in value)):
            raise checks.fail(path, f'must be ["HH:MM", "HH:MM"] (local start and end), got {value!r:.60}')
        if value[0] == value[1]:
            raise checks.fail(path, f"is empty: it starts and ends at {value[0]} (for all day, leave window out)")
        return value[0], value[1]

    return check


def _condition_reader(checks: Checks, values: _Values) -> Callable[[object, str], Comparison | Condition]:
    def condition(value: object, path: str) -> Comparison | Condition:
        if not isinstance(value, dict):
            raise checks.fail(path, f"must be a mapping ({{value: …, at_least: …}} or {{all: [...]}} or "
                                    f"{{any: [...]}}), got {type_name(value)}")
        if set(value) & {"all", "any"}:
            if len(value) != 1:
                raise checks.fail(path, "must hold exactly one key, all or any")
            combine, items = next(iter(value.items()))
            if not isinstance(items, list) or not items:
                raise checks.fail(f"{path}.{combine}", "must be a non-empty list of conditions")
            return Condition(combine, tuple(condition(item, f"{path}.{combine}[{i}]") for i, item in enumerate(items)))
        return _comparison(checks, values, value, path)

    return condition


def _comparison(checks: Checks, values: _Values, value: dict[object, object], path: str) -> Comparison:
    """`{value: <name>, <comparison>: <threshold>}`, or `in: [choices]`: its keys, then the value it names, then
    what it is compared to."""
    op = _comparison_op(checks, value, path)
    name = checks.text(value["value"], f"{path}.value")
    problem = values.problem(name)
    if problem is not None:
        raise checks.fail(f"{path}.value", problem)
    if op == "in":
        return Comparison(name, op, choices=_choices(checks, value["in"], f"{path}.in"))
    return Comparison(name, op, threshold=checks.number(value[op], f"{path}.{op}"))


def _comparison_op(checks: Checks, value: dict[object, object],
                   path: str) -> Literal["at_least", "above", "below", "at_most", "in"]:
    """The one comparison beside `value`, every other key refused by name."""
    if "value" not in value:
        raise checks.fail(path, "missing required key value (or all/any)")
    for key in value:
        if key != "value" and key not in COMPARISONS:
            guess = did_you_mean(str(key), COMPARISONS)
            hint = f"did you mean {guess!r}?" if guess else "comparisons: " + ", ".join(COMPARISONS)
            raise checks.fail(path, f"unknown key {str(key)!r} ({hint})")
    ops = [key for key in value if key in COMPARISONS]
    if len(ops) != 1:
        raise checks.fail(path, f"needs exactly one comparison ({', '.join(COMPARISONS)}), got "
                                f"{len(ops)}")
    return cast(Literal["at_least", "above", "below", "at_most", "in"], ops[0])


def _choices(checks: Checks, choices: object, path: str) -> tuple[str | float, ...]:
    """`in`'s list: texts as they are (a Float field's), numbers as floats; true/false are not numbers here."""
    if (not isinstance(choices, list) or not choices
            or not all(isinstance(c, str | int | float) and not isinstance(c, bool) for c in choices)):
        raise checks.fail(path, "must be a non-empty list of texts (Float) or numbers")
    return tuple(c if isinstance(c, str) else float(c) for c in choices)


def _comparisons(condition: Comparison | Condition) -> list[Comparison]:
    if isinstance(condition, Comparison):
        return [condition]
    return [c for item in condition.items for c in _comparisons(item)]


def _overlap(on_when: Comparison | Condition, off_when: Comparison | Condition) -> str | None:
    """Why thresholds on one value let on_when and off_when hold at once (no hysteresis, a relay that
    chatters), or None."""
    for on in _comparisons(on_when):
        for off in _comparisons(off_when):
            if on.value == off.value and _both_hold(on, off):
                return (f"{off.value} {_text(off)} and on_when's {_text(on)} can hold at once: leave a gap "
                        "between the on and off thresholds")
    return None


def _text(comparison: Comparison) -> str:
    if comparison.op == "in":
        return "in [" + ", ".join(str(c) for c in comparison.choices) + "]"
    return f"{_ORDER[comparison.op]} {comparison.threshold:g}"


def _interval(comparison: Comparison) -> tuple[float, bool, float, bool]:
    """(low, low included, high, high included)."""
    inf = float("inf")
    t = comparison.threshold
    return {"at_least": (t, True, inf, False), "above": (t, False, inf, False),
            "below": (-inf, False, t, False), "at_most": (-inf, False, t, True)}[comparison.op]


def _both_hold(a: Comparison, b: Comparison) -> bool:
    if a.op == "in" or b.op == "in":
        if a.op == "in" and b.op == "in":
            return bool(set(a.choices) & set(b.choices))
        choices, other = (a, b) if a.op == "in" else (b, a)
        numbers = [c for c in choices.choices if isinstance(c, float)]
        low, low_in, high, high_in = _interval(other)
        return any((low < n or (low_in and low == n)) and (n < high or (high_in and n == high)) for n in numbers)
    a_low, a_low_in, a_high, a_high_in = _interval(a)
    b_low, b_low_in, b_high, b_high_in = _interval(b)
    low, low_in = max((a_low, a_low_in), (b_low, b_low_in), key=lambda p: (p[0], not p[1]))
    high, high_in = min((a_high, a_high_in), (b_high, b_high_in), key=lambda p: (p[0], p[1]))
    return low < high or (low == high and low_in and high_in)
