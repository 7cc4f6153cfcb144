"""The one table of text-protocol labels: unit, scale to SI base units, kind and metric name.

Facts from reference §4 (doc 3.22 Table I and the later labels). Everything else in the project —
`read --decoded`, Prometheus metrics, `/api/state`, the live page, emoncms SI payloads — reads this table.
"""

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pvmonit_exporter.vedirect import enums


class Kind(enum.Enum):
    NUMBER = "number"
    ON_OFF = "on/off"
    HEX_BITMASK = "hex bitmask"
    DEC_BITMASK = "decimal bitmask"
    ENUM = "enumeration"
    TEXT = "text"


NOT_AVAILABLE = "---"


@dataclass(frozen=True)
class FieldSpec:
    """What one label means.

    `scale` multiplies the raw integer into `unit` (an SI base unit, Prometheus style: volts, amperes,
    watts, joules, coulombs, seconds, ratio, celsius). `metric` is the Prometheus name after `vedirect_`;
    for enumerations and bitmasks it is the name of a series-per-value family whose label is `metric_label`.
    """

    label: str
    description: str
    kind: Kind
    raw_unit: str = ""
    unit: str = ""
    scale: float = 1.0
    metric: str | None = None
    names: Mapping[int, str] | None = None
    metric_label: str | None = None
    fractional: bool = False  # a raw value may carry a decimal fraction (`22.5`), as from a Bluetooth advert


_V = 0.001  # mV → V
_A = 0.001  # mA → A
_C = 3.6  # mAh → C
_J = 36_000.0  # 0.01 kWh → J
_PERMILLE = 0.001  # ‰ → ratio


def _number(
    label: str, description: str, raw_unit: str, unit: str, scale: float, metric: str
) -> FieldSpec:
    return FieldSpec(label, description, Kind.NUMBER, raw_unit, unit, scale, metric)


def _on_off(label: str, description: str, metric: str) -> FieldSpec:
    return FieldSpec(label, description, Kind.ON_OFF, metric=metric)


def _text(label: str, description: str) -> FieldSpec:
    return FieldSpec(label, description, Kind.TEXT)


FIELDS: Mapping[str, FieldSpec] = {
    spec.label: spec
    for spec in (
        _number("V", "Battery voltage", "mV", "V", _V, "battery_voltage_volts"),
        _number("V2", "Battery voltage, channel 2", "mV", "V", _V, "battery2_voltage_volts"),
        _number("V3", "Battery voltage, channel 3", "mV", "V", _V, "battery3_voltage_volts"),
        _number("VS", "Auxiliary (starter) battery voltage", "mV", "V", _V, "starter_voltage_volts"),
        _number("VM", "Mid-point voltage of the battery bank", "mV", "V", _V, "midpoint_voltage_volts"),
        _number("DM", "Mid-point deviation of the battery bank", "‰", "", _PERMILLE,
                "midpoint_deviation_ratio"),
        _number("VPV", "Panel voltage", "mV", "V", _V, "panel_voltage_volts"),
        _number("PPV", "Panel power", "W", "W", 1.0, "panel_power_watts"),
        _number("I", "Battery current (positive when charging)", "mA", "A", _A, "battery_current_amperes"),
        _number("I2", "Battery current, channel 2", "mA", "A", _A, "battery2_current_amperes"),
        _number("I3", "Battery current, channel 3", "mA", "A", _A, "battery3_current_amperes"),
        _number("IL", "Load output current", "mA", "A", _A, "load_current_amperes"),
        _on_off("LOAD", "Load output on", "load_output_on"),
        # Whole degrees on the cable; a Bluetooth advert gives 0.01 K, kept as `22.5` (ble.advert).
        FieldSpec("T", "Battery temperature", Kind.NUMBER, "°C", "°C", 1.0, "battery_temperature_celsius",
                  fractional=True),
        _number("P", "Instantaneous battery power (positive when charging)", "W", "W", 1.0,
                "battery_power_watts"),
        _number("CE", "Consumed charge since last full (negative)", "mAh", "C", _C,
                "consumed_charge_coulombs"),
        _number("SOC", "State of charge", "‰", "", _PERMILLE, "state_of_charge_ratio"),
        _number("TTG", "Time to go (infinite while not discharging)", "min", "s", 60.0,
                "time_to_go_seconds"),
        _on_off("Alarm", "Alarm condition active", "alarm_on"),
        _on_off("Relay", "Relay closed", "relay_on"),
        FieldSpec("AR", "Alarm reason", Kind.DEC_BITMASK, metric="alarm_reason",
                  names=enums.ALARM_REASONS, metric_label="reason"),
        _number("H1", "Depth of the deepest discharge", "mAh", "C", _C, "deepest_discharge_coulombs"),
        _number("H2", "Depth of the last discharge", "mAh", "C", _C, "last_discharge_coulombs"),
        _number("H3", "Depth of the average discharge", "mAh", "C", _C, "average_discharge_coulombs"),
        _number("H4", "Number of charge cycles", "", "", 1.0, "charge_cycles"),
        _number("H5", "Number of full discharges", "", "", 1.0, "full_discharges"),
        _number("H6", "Cumulative charge drawn", "mAh", "C", _C, "cumulative_charge_drawn_coulombs"),
        _number("H7", "Minimum battery voltage", "mV", "V", _V, "min_battery_voltage_volts"),
        _number("H8", "Maximum battery voltage", "mV", "V", _V, "max_battery_voltage_volts"),
        _number("H9", "Time since last full charge", "s", "s", 1.0, "time_since_full_charge_seconds"),
        _number("H10", "Number of automatic synchronisations", "", "", 1.0, "automatic_synchronizations"),
        _number("H11", "Number of low battery voltage alarms", "", "", 1.0, "low_voltage_alarms"),
        _number("H12", "Number of high battery voltage alarms", "", "", 1.0, "high_voltage_alarms"),
        _number("H13", "Number of low starter voltage alarms", "", "", 1.0, "low_starter_voltage_alarms"),
        _number("H14", "Number of high starter voltage alarms", "", "", 1.0, "high_starter_voltage_alarms"),
        _number("H15", "Minimum starter voltage", "mV", "V", _V, "min_starter_voltage_volts"),
        _number("H16", "Maximum starter voltage", "mV", "V", _V, "max_starter_voltage_volts"),
        _number("H17", "Discharged energy (produced energy on a DC monitor)", "0.01 kWh", "J", _J,
                "discharged_energy_joules"),
        _number("H18", "Charged energy (consumed energy on a DC monitor)", "0.01 kWh", "J", _J,
                "charged_energy_joules"),
        _number("H19", "Yield total (user resettable)", "0.01 kWh", "J", _J, "yield_total_joules"),
        _number("H20", "Yield today", "0.01 kWh", "J", _J, "yield_today_joules"),
        _number("H21", "Maximum power today", "W", "W", 1.0, "max_power_today_watts"),
        _number("H22", "Yield yesterday", "0.01 kWh", "J", _J, "yield_yesterday_joules"),
        _number("H23", "Maximum power yesterday", "W", "W", 1.0, "max_power_yesterday_watts"),
        FieldSpec("ERR", "Charger error", Kind.ENUM, metric="charger_error_code",
                  names=enums.CHARGER_ERRORS),
        FieldSpec("CS", "State of operation", Kind.ENUM, metric="charge_state",
                  names=enums.CHARGE_STATES, metric_label="state"),
        FieldSpec("MPPT", "Tracker operation mode", Kind.ENUM, metric="tracker_mode",
                  names=enums.TRACKER_MODES, metric_label="mode"),
        FieldSpec("OR", "Off reason", Kind.HEX_BITMASK, metric="off_reason",
                  names=enums.OFF_REASONS, metric_label="reason"),
        FieldSpec("MODE", "Device mode", Kind.ENUM, metric="device_mode",
                  names=enums.DEVICE_MODES, metric_label="mode"),
        FieldSpec("MON", "DC monitor mode", Kind.ENUM, metric="monitor_mode_code",
                  names=enums.MONITOR_MODES),
        FieldSpec("WARN", "Warning reason", Kind.DEC_BITMASK, metric="warning_reason",
                  names=enums.ALARM_REASONS, metric_label="reason"),
        _number("HSDS", "Day sequence number", "", "", 1.0, "day_sequence_number"),
        FieldSpec("CAP_BLE", "Bluetooth capabilities", Kind.HEX_BITMASK, names=enums.BLE_CAPABILITIES),
        _number("AC_OUT_V", "AC output voltage", "0.01 V", "V", 0.01, "ac_output_voltage_volts"),
        _number("AC_OUT_I", "AC output current", "0.1 A", "A", 0.1, "ac_output_current_amperes"),
        _number("AC_OUT_S", "AC output apparent power", "VA", "VA", 1.0,
                "ac_output_apparent_power_voltamperes"),
        _number("DC_IN_V", "DC input voltage", "0.01 V", "V", 0.01, "dc_input_voltage_volts"),
        _number("DC_IN_I", "DC input current", "0.1 A", "A", 0.1, "dc_input_current_amperes"),
        _number("DC_IN_P", "DC input power", "W", "W", 1.0, "dc_input_power_watts"),
        _text("PID", "Product ID"),
        _text("SER#", "Serial number"),
        _text("FW", "Firmware version"),
        _text("FWE", "Firmware version (24 bit)"),
        _text("BMV", "Model description"),
        _text("HC#", "Hardware revision"),
    )
}


@dataclass(frozen=True)
class Decoded:
    """One field's value: `value` is a number in `unit` (None when not available or not a number).

    ON/OFF decode to 1.0/0.0, enumerations to their code, bitmasks to their integer; `text` carries the
    words (enumeration name, set bits, the text value itself) and `flags` the names of set bits.
    """

    label: str
    raw: str
    value: float | None
    unit: str
    text: str | None
    flags: tuple[str, ...] = ()
    known: bool = True


_DECIMAL = re.compile(r"[-+]?[0-9]+")
_DECIMAL_FRACTION = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?")
_HEXADECIMAL = re.compile(r"(?:0[xX])?[0-9A-Fa-f]+")


def parse_int(raw: str, base: int = 10) -> int | None:
    """Strict: Python's int() would also take `1_000` or ` 12 `, which no device sends."""
    pattern = _HEXADECIMAL if base == 16 else _DECIMAL
    return int(raw, base) if pattern.fullmatch(raw) else None


def _bits(value: int, names: Mapping[int, str]) -> tuple[str, ...]:
    found = [name for bit, name in names.items() if value & bit]
    rest = value & ~sum(names)
    found += [f"bit 0x{1 << b:X}" for b in range(rest.bit_length()) if rest >> b & 1]
    return tuple(found)


def parse_number(spec: FieldSpec, raw: str) -> int | float | None:
    """The unscaled number in `raw` (hex for a bitmask; a decimal fraction only where the field allows one),
    or None. What the metrics and the emoncms rows both parse, so they never disagree on a value."""
    if spec.kind is Kind.HEX_BITMASK:
        return parse_int(raw, 16)  # with or without the `0x` prefix the devices send
    number = parse_int(raw)
    if number is None and spec.fractional and _DECIMAL_FRACTION.fullmatch(raw):
        return float(raw)
    return number


def decode(label: str, raw: str) -> Decoded:
    """Decode one raw field; never raises. Unknown labels come back raw (`known=False`)."""
    spec = FIELDS.get(label)
    if spec is None:
        return Decoded(label, raw, None, "", raw, known=False)
    if raw.strip() == NOT_AVAILABLE:
        return Decoded(label, raw, None, spec.unit, None)
    if spec.kind is Kind.TEXT:
        return Decoded(label, raw, None, "", raw)
    if spec.kind is Kind.ON_OFF:
        state = raw.strip().upper()
        value = {"ON": 1.0, "OFF": 0.0}.get(state)
        return Decoded(label, raw, value, "", state if value is not None else None)
    number = parse_number(spec, raw)
    if number is None:
        return Decoded(label, raw, None, spec.unit, None)
    if spec.kind is Kind.NUMBER:
        if label == "TTG" and number == -1:
            return Decoded(label, raw, math.inf, spec.unit, "infinite")
        return Decoded(label, raw, round(number * spec.scale, 9), spec.unit, None)
    names = spec.names or {}
    if spec.kind is Kind.ENUM:
        code = int(number)
        return Decoded(label, raw, float(number), "", names.get(code, f"unknown ({code})"))
    flags = _bits(int(number), names)
    return Decoded(label, raw, float(number), "", ", ".join(flags) if flags else "None", flags)


def metric_values(block: Mapping[str, str]) -> dict[str, float | str | list[str]]:
    """A block's (or a device's current fields') values by metric name (without `vedirect_`) in the metric's
    unit; enumerations and bitmasks by name. Text fields (PID) and values not available are left out.
    `ble decode --json` prints these, and the MQTT state messages carry them."""
    values: dict[str, float | str | list[str]] = {}
    for label, raw in block.items():
        spec = FIELDS.get(label)
        if spec is None or spec.metric is None:
            continue
        item = decode(label, raw)
        if item.value is None:
            continue
        if spec.kind is Kind.ENUM:
            values[spec.metric] = item.text or ""
        elif spec.kind in (Kind.DEC_BITMASK, Kind.HEX_BITMASK):
            values[spec.metric] = list(item.flags)
        else:
            values[spec.metric] = item.value
    return values


def format_firmware(raw: str) -> str:
    """`123` → `1.23`, `0308` → `3.08`, `C208` → `2.08 rc C`; FWE `316FF` → `3.16` (FF = official), and with
    six digits (Blue Smart chargers) `0342FF` → `3.42`, `031605` → `3.16 beta 05`."""
    text = raw.strip()
    if len(text) in (5, 6) and all(c in "0123456789ABCDEFabcdef" for c in text):  # FWE: version + release type
        version, release = text[:-2], text[-2:].upper()
        if version.isdigit():
            main = f"{int(version[:-2])}.{version[-2:]}"
            return main if release == "FF" else f"{main} beta {release}"
    prefix = ""
    if text[:1].isalpha():
        prefix, text = text[0], text[1:]
    if not text.isdigit() or len(text) < 3:
        return raw
    number = int(text)
    version = f"{number // 100}.{number % 100:02d}"
    return f"{version} rc {prefix}" if prefix else version


# What a person reads for a value in an SI base unit: the units of a battery monitor's screen, as on the live
# page — SI unit → (divisor, unit shown, decimals). Ratios (sent in ‰) show as %, seconds as hours and minutes.
SHOWN_UNITS: Mapping[str, tuple[float, str, int]] = {
    "J": (3_600_000.0, "kWh", 2),
    "C": (3600.0, "Ah", 1),
}
_PERCENT = (0.01, "%", 1)


def format_duration(seconds: float) -> str:
    """`45 s`, `12 min`, `20 h 34 min` (TTG, H9): hours and minutes, as a person reads a time to go."""
    whole = round(seconds)
    if abs(whole) < 60:
        return f"{whole} s"
    sign, whole = ("-" if whole < 0 else ""), abs(whole)
    hours, minutes = divmod(whole // 60, 60)
    return f"{sign}{hours} h {minutes:02d} min" if hours else f"{sign}{minutes} min"


def format_decoded(item: Decoded) -> str:
    """The human text of one field, as `read --decoded` prints it: `26.18 V`, `2415.37 kWh`, `-18.2 Ah`,
    `83.9 %`, `20 h 34 min`, `Bulk`, `n/a`."""
    if item.value is None and item.text is None:
        return "n/a"
    spec = FIELDS.get(item.label)
    if spec is not None and spec.kind in (Kind.ENUM, Kind.DEC_BITMASK, Kind.HEX_BITMASK, Kind.ON_OFF):
        return item.text or ""
    if item.value is None or math.isinf(item.value):
        return item.text or ""
    if item.unit == "s":
        return format_duration(item.value)
    shown = _PERCENT if spec is not None and spec.raw_unit == "‰" else SHOWN_UNITS.get(item.unit)
    if shown is not None:
        divisor, unit, decimals = shown
        return f"{item.value / divisor:.{decimals}f} {unit}"
    number = f"{item.value:.6g}" if abs(item.value) < 1e6 else f"{item.value:.0f}"
    return f"{number} {item.unit}".rstrip()
