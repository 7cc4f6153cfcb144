"""Decisions in words, for the log, the audit and the live page: "Float and 96 % ≥ 95 %", "min on: 12 min left".
Pure."""

from collections.abc import Mapping, Sequence

from pvmonit_exporter.config.schema import SUMMARY_INPUTS, Comparison, ProbeConfig, RuleConfig
from pvmonit_exporter.control.decide import Check, Decision, Veto, Why, comparisons
from pvmonit_exporter.vedirect.fields import FIELDS, format_duration

# How a value is shown: (multiplier, unit).
Unit = tuple[float, str]
_PERCENT: Unit = (100.0, "%")
_SUMMARY_UNITS: Mapping[str, Unit] = {"battery_soc": _PERCENT, "battery_voltage": (1.0, "V"), "pv_power": (1.0, "W"),
                                      "consumption": (1.0, "W"), "temperature": (1.0, "°C")}
_PROBE_UNITS: Mapping[str, Unit] = {"temperature": (1.0, "°C"), "current": (1.0, "A"), "power": (1.0, "W")}
_SYMBOLS = {"at_least": "≥", "above": ">", "below": "<", "at_most": "≤"}
_NEGATED = {"at_least": "<", "above": "≤", "below": "≥", "at_most": ">"}

GUARDS: Mapping[Veto, str] = {
    "stale_input": "no fresh data", "on_for": "on for", "off_for": "off for", "min_on": "min on",
    "min_off": "min off", "max_switches_per_hour": "max switches per hour", "max_on_per_day": "max on per day",
    "fault": "fault", "one_per_evaluation": "one switch per evaluation",
}


def units(probes: Sequence[ProbeConfig]) -> dict[str, Unit]:
    """How to show each value a rule may read, by its name."""
    shown = {f"summary.{key}": _SUMMARY_UNITS[key] for key in SUMMARY_INPUTS}
    shown.update({probe.name: _PROBE_UNITS[probe.quantity] for probe in probes})
    return shown


def unit_of(value: str, shown: Mapping[str, Unit]) -> Unit:
    if value in shown:
        return shown[value]
    spec = FIELDS.get(value.rpartition(".")[2])
    if spec is None:
        return 1.0, ""
    return _PERCENT if spec.raw_unit == "‰" else (1.0, spec.unit)


def _number(value: float, unit: Unit) -> str:
    scale, name = unit
    return f"{value * scale:.4g} {name}".rstrip()


def check_text(check: Check, shown: Mapping[str, Unit]) -> str:
    """`Float`, `96 % ≥ 95 %`, `Bulk, not Absorption or Float`, `summary.battery_soc: no fresh data`."""
    comparison = check.comparison
    if check.input is None or check.holds is None:
        age = "" if check.age is None else f" ({format_duration(check.age)} old)"
        return f"{comparison.value}: no fresh data{age}"
    unit = unit_of(comparison.value, shown)
    value = check.input if isinstance(check.input, str) else _number(check.input, unit)
    if comparison.op == "in":
        if check.holds:
            return value
        choices = [c if isinstance(c, str) else _number(c, unit) for c in comparison.choices]
        return f"{value}, not {' or '.join(choices)}"
    symbol = (_SYMBOLS if check.holds else _NEGATED)[comparison.op]
    return f"{value} {symbol} {_number(comparison.threshold, unit)}"


def _part(checks: Sequence[Check], of: Sequence[Comparison], *, holding: bool,
          shown: Mapping[str, Unit]) -> str:
    wanted = set(of)
    texts = [check_text(c, shown) for c in checks if c.comparison in wanted and c.holds is holding]
    return " and ".join(dict.fromkeys(texts))


def reason(decision: Decision, rule: RuleConfig | None, shown: Mapping[str, Unit]) -> str:
    """Why the rule wants what it wants, in words."""
    return why_text(decision.why, decision.checks, rule, shown)


def why_text(why: Why, checks: Sequence[Check], rule: RuleConfig | None, shown: Mapping[str, Unit]) -> str:
    if why in ("on_when", "off_when") and rule is not None:
        if why == "on_when":
            return _part(checks, comparisons(rule.on_when), holding=True, shown=shown)
        if rule.off_when is not None:
            return _part(checks, comparisons(rule.off_when), holding=True, shown=shown)
        return _part(checks, comparisons(rule.on_when), holding=False, shown=shown)
    if why == "window" and rule is not None and rule.window is not None:
        return f"outside {rule.window[0]}–{rule.window[1]}"
    missing = list(dict.fromkeys(check_text(c, shown) for c in checks if c.holds is None))
    if why == "data_loss" and rule is not None:
        return f"no fresh data for {format_duration(rule.data_loss_after)}" + (
            f" ({'; '.join(missing)})" if missing else "")
    if why == "stale_input":
        return "; ".join(missing)
    if why == "mode" and rule is not None:
        return f"forced {rule.mode}"
    if why == "max_on_per_day" and rule is not None and rule.max_on_per_day is not None:
        return f"on {format_duration(rule.max_on_per_day)} today, the most allowed"
    return {"start": "safe state at start", "stop": "safe state at stop", "no_rule": "no rule",
            "fault": "read-back disagreed: fault", "hold": "between the on and off thresholds"}.get(why, why)


def guard_text(veto: Veto | None, left: float | None) -> str | None:
    """`min on: 12 min left`; None when no guard holds."""
    if veto is None:
        return None
    name = GUARDS[veto]
    if left is None:
        return name
    if veto == "stale_input":
        return f"{name}: safe state in {format_duration(max(0.0, left))}"
    return f"{name}: {format_duration(max(0.0, left))} left"
