"""The one table of HEX registers: id, name, type, scale, unit, which device kinds have it. Pure.

Facts from vedirect-hex.md §5 and Victron's own register header `ve_regs.h` (types, scales and "not available"
values; tests/vedirect/test_ve_regs.py holds this table against it entry by entry). Everything else —
the `hex` command, the daemon's polling and metrics, async updates of the text readings — reads this table.
`scale` turns the raw integer into `unit` as the `hex` command shows it (`0xEDF0 battery_max_current 15.0 A`);
`metric` and `si_scale` give the Prometheus series (after `vedirect_`) in SI units; `label` and `label_scale`
name the text-protocol field the register mirrors, so an async message updates that reading.
"""

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from pvmonit_exporter.vedirect.history import HISTORY_DAYS, HistoryDay, HistoryTotal


class Type(enum.Enum):
    UN8 = "un8"
    UN16 = "un16"
    UN32 = "un32"
    SN16 = "sn16"
    SN32 = "sn32"
    UN16_OR_32 = "un16/un32"  # un16 on VE.Direct MPPTs, un32 on VE.Can: the reply's length tells
    STRING = "string"  # zero-terminated
    # An un8 identifier, then the value little-endian. For the product id, every recorded device (SmartSolar,
    # BlueSolar, SmartShunt) contradicts the velib comment that VE.Direct MPPTs send it big-endian.
    PRODUCT_ID = "un8 + un16"
    APP_VERSION = "un8 + un24"
    HISTORY_TOTAL = "history total"
    HISTORY_DAY = "history day"
    RAW = "raw"  # a register not in this table: its bytes in hex


_SIZES = {Type.UN8: (1,), Type.UN16: (2,), Type.UN32: (4,), Type.SN16: (2,), Type.SN32: (4,),
          Type.UN16_OR_32: (2, 4)}
_SIGNED = {Type.SN16, Type.SN32}
_IDENTIFIED_SIZES = {Type.PRODUCT_ID: 2, Type.APP_VERSION: 3}  # the value's bytes after the identifier

ALL_KINDS = frozenset({"mppt", "bmv", "inverter", "charger", "unknown"})
MPPT = frozenset({"mppt"})
BMV = frozenset({"bmv"})

Value = float | int | str | HistoryDay | HistoryTotal | None


@dataclass(frozen=True)
class Register:
    id: int
    name: str
    type: Type
    scale: float = 1.0
    unit: str = ""
    kinds: frozenset[str] = ALL_KINDS
    description: str = ""
    # True where no raw value means "not available" (the header gives none and gives all bits set a meaning,
    # as battery type 0xFF = user defined); else see `not_available_raw`.
    always_available: bool = False
    metric: str | None = None
    si_scale: float = 1.0
    label: str | None = None
    label_scale: float = 1.0

    @property
    def hex_id(self) -> str:
        return f"0x{self.id:04X}"


def _r(
    id_: int, name: str, type_: Type, scale: float = 1.0, unit: str = "", kinds: frozenset[str] = ALL_KINDS,
    description: str = "", *, always_available: bool = False, metric: str | None = None,
    si_scale: float = 1.0, label: str | None = None, label_scale: float = 1.0,
) -> Register:
    return Register(id_, name, type_, scale, unit, kinds, description, always_available, metric, si_scale,
                    label, label_scale)


_KWH_TO_J = 3_600_000.0

REGISTERS: Mapping[int, Register] = {
    reg.id: reg
    for reg in (
        # Identity and state (all kinds)
        _r(0x0100, "product_id", Type.PRODUCT_ID, description="Product id"),
        _r(0x0102, "app_firmware", Type.APP_VERSION, description="Application firmware version 0xHHMMLL"),
        _r(0x010A, "serial_number", Type.STRING, description="Serial number"),
        _r(0x010B, "model_name", Type.STRING, description="Model name"),
        _r(0x0140, "capabilities", Type.UN32, description="Capabilities bits (bit 2: history)"),
        _r(0x0200, "device_mode", Type.UN8, description="Device mode"),
        _r(0x0201, "device_state", Type.UN8, description="Device state (as text CS)", label="CS"),
        _r(0x0205, "device_off_reason", Type.UN8, description="Off reason bits"),
        _r(0x0207, "device_off_reason_2", Type.UN32, description="Off reason bits (as text OR)"),
        # Solar charger
        _r(0xEDBB, "panel_voltage", Type.UN16, 0.01, "V", MPPT, "Panel voltage", label="VPV", label_scale=10.0),
        _r(0xEDBD, "panel_current", Type.UN16, 0.1, "A", MPPT, "Panel current"),
        _r(0xEDBC, "panel_power", Type.UN32, 0.01, "W", MPPT, "Panel power", label="PPV", label_scale=0.01),
        _r(0xEDD5, "charger_voltage", Type.UN16, 0.01, "V", MPPT, "Charger (battery) voltage", label="V",
           label_scale=10.0),
        _r(0xEDD7, "charger_current", Type.SN16, 0.1, "A", MPPT, "Charger current", label="I", label_scale=100.0),
        _r(0xEDD3, "yield_today", Type.UN16_OR_32, 0.01, "kWh", MPPT, "Yield today", label="H20"),
        _r(0xEDD1, "yield_yesterday", Type.UN16_OR_32, 0.01, "kWh", MPPT, "Yield yesterday", label="H22"),
        _r(0xEDD2, "max_power_today", Type.UN16_OR_32, 1.0, "W", MPPT, "Maximum power today", label="H21"),
        _r(0xEDD0, "max_power_yesterday", Type.UN16_OR_32, 1.0, "W", MPPT, "Maximum power yesterday",
           label="H23"),
        _r(0xEDDC, "user_yield", Type.UN32, 0.01, "kWh", MPPT, "User yield (resettable)", label="H19"),
        _r(0xEDDD, "system_yield", Type.UN32, 0.01, "kWh", MPPT, "System yield (not resettable)",
           metric="system_yield_joules", si_scale=0.01 * _KWH_TO_J),
        _r(0xEDDA, "charger_error", Type.UN8, 1.0, "", MPPT, "Charger error (as text ERR)", label="ERR"),
        _r(0xEDDB, "charger_temperature", Type.SN16, 0.01, "°C", MPPT, "Charger internal temperature",
           metric="charger_temperature_celsius", si_scale=0.01),
        _r(0xEDEC, "battery_temperature", Type.UN16, 0.01, "K", MPPT, "Battery temperature"),
        _r(0xEDF0, "battery_max_current", Type.UN16, 0.1, "A", MPPT, "Battery maximum charge current",
           metric="battery_max_charge_current_amperes", si_scale=0.1),
        _r(0xEDF1, "battery_type", Type.UN8, 1.0, "", MPPT, "Battery type (0xFF user defined)",
           always_available=True),
        _r(0xEDF7, "battery_absorption_voltage", Type.UN16, 0.01, "V", MPPT, "Absorption voltage",
           metric="battery_absorption_voltage_volts", si_scale=0.01),
        _r(0xEDF6, "battery_float_voltage", Type.UN16, 0.01, "V", MPPT, "Float voltage",
           metric="battery_float_voltage_volts", si_scale=0.01),
        _r(0xEDF4, "battery_equalisation_voltage", Type.UN16, 0.01, "V", MPPT, "Equalisation voltage"),
        _r(0xEDF2, "battery_temperature_compensation", Type.SN16, 0.01, "mV/K", MPPT,
           "Temperature compensation"),
        _r(0xEDEF, "battery_voltage_setting", Type.UN8, 1.0, "V", MPPT, "Battery voltage in use (12/24/36/48)"),
        _r(0xEDA8, "load_output_state", Type.UN8, 1.0, "", MPPT, "Load output state (0 off, 1 on)"),
        _r(0xEDAB, "load_output_control", Type.UN8, 1.0, "", MPPT,
           "Load output control (0 off, 1 automatic, 4 on)"),
        _r(0xEDAD, "load_current", Type.UN16, 0.1, "A", MPPT, "Load current", label="IL", label_scale=100.0),
        _r(0x2031, "charger_time_of_day", Type.UN16, 1.0, "min", MPPT,
           "Minutes since the charger's inferred midnight"),
        _r(0x104F, "history_total", Type.HISTORY_TOTAL, kinds=MPPT, description="History: totals"),
        *(
            _r(0x1050 + day, f"history_day_{day}", Type.HISTORY_DAY, kinds=MPPT,
               description=f"History: {day} days ago")
            for day in range(HISTORY_DAYS)
        ),
        # Battery monitor
        _r(0xED8D, "battery_voltage", Type.SN16, 0.01, "V", BMV, "Main (battery) voltage", label="V",
           label_scale=10.0),
        _r(0xED8F, "battery_current", Type.SN16, 0.1, "A", BMV, "Battery current", label="I", label_scale=100.0),
        _r(0xED8E, "battery_power", Type.SN16, 1.0, "W", BMV, "Battery power", label="P"),
        _r(0xED8C, "battery_current_high_res", Type.SN32, 0.001, "A", BMV, "Battery current, in mA"),
        _r(0xED7D, "starter_voltage", Type.SN16, 0.01, "V", BMV, "Auxiliary (starter) voltage", label="VS",
           label_scale=10.0),
        _r(0x0FFF, "state_of_charge", Type.UN16, 0.01, "%", BMV, "State of charge", label="SOC",
           label_scale=0.1),
        _r(0x0FFE, "time_to_go", Type.UN16, 1.0, "min", BMV, "Time to go"),
        _r(0x1000, "battery_capacity", Type.UN16, 1.0, "Ah", BMV, "Battery capacity",
           metric="battery_capacity_coulombs", si_scale=3600.0),
        _r(0x0382, "midpoint_voltage", Type.UN16, 0.01, "V", BMV, "Mid-point voltage", label="VM",
           label_scale=10.0),
        _r(0x0383, "midpoint_deviation", Type.SN16, 0.1, "%", BMV, "Mid-point deviation", label="DM"),
    )
}

BY_NAME: Mapping[str, Register] = {reg.name: reg for reg in REGISTERS.values()}

CAPABILITIES = 0x0140
CAPABILITY_LOAD = 1 << 0
CAPABILITY_HISTORY = 1 << 2
LOAD_OUTPUT_STATE = 0xEDA8
LOAD_OUTPUT_CONTROL = 0xEDAB
# 0xEDAB's modes per Victron's register header (velib); a third-party table says 4 is off and 5 on, so the
# read-back of 0xEDA8 decides whether a write did what was meant.
LOAD_MODES: Mapping[str, int] = {"off": 0, "auto": 1, "on": 4}
# The only registers the exporter ever writes (the contract): the load output's mode.
WRITABLE = frozenset({LOAD_OUTPUT_CONTROL})
HISTORY_TOTAL = 0x104F
HISTORY_DAY_0 = 0x1050


def lookup(text: str) -> Register | None:
    """A register named by its table name or by its hex id (`0xEDF0`, `EDF0`); an id not in the table gives
    a raw register. None when `text` is neither."""
    if text in BY_NAME:
        return BY_NAME[text]
    digits = text.lower().removeprefix("0x")
    if not 1 <= len(digits) <= 4 or any(c not in "0123456789abcdef" for c in digits):
        return None
    number = int(digits, 16)
    return REGISTERS.get(number) or Register(number, f"register_0x{number:04X}", Type.RAW)


def history_day_register(days_ago: int) -> int:
    return HISTORY_DAY_0 + days_ago


def decode_value(register: Register, data: bytes) -> tuple[Value, str | None]:
    """The value of `register` from a reply's bytes, in `register.unit`, and an error (None when fine).
    A value that means "not available" is None, never 0. Never raises."""
    kind = register.type
    if kind is Type.RAW:
        return data.hex().upper(), None
    if kind is Type.STRING:
        return data.split(b"\x00", 1)[0].decode("latin-1"), None
    if kind in _IDENTIFIED_SIZES:
        size = _IDENTIFIED_SIZES[kind]
        if len(data) < 1 + size:
            return None, "malformed"
        number = int.from_bytes(data[1 : 1 + size], "little")
        if number == not_available_raw(register, size):  # for the version: "no firmware present"
            return None, None
        return (f"0x{number:04X}" if kind is Type.PRODUCT_ID else number), None
    if kind is Type.HISTORY_TOTAL:
        total = HistoryTotal.decode(data)
        return (total, None) if total is not None else (None, "malformed")
    if kind is Type.HISTORY_DAY:
        day = HistoryDay.decode(register.id - HISTORY_DAY_0, data)
        return (day, None) if day is not None else (None, "malformed")
    if len(data) not in _SIZES[kind]:
        return None, "malformed"
    raw = raw_number(register, data)
    return (None if raw is None else scaled(raw, register.scale)), None


def scaled(raw: int, scale: float) -> float | int:
    """`raw × scale`, rounded to the scale's own precision: 150 × 0.1 = 15.0, not 15.000000000000002."""
    if scale == 1.0:
        return raw
    decimals = max(0, len(f"{scale:.10f}".rstrip("0").split(".")[1]))
    return round(raw * scale, decimals)


def not_available_raw(register: Register, size: int) -> int | None:
    """The raw value (as unsigned bytes read little-endian) that means "not available" for a `size`-byte value
    of `register`: all bits set on an unsigned type, the largest positive number on a signed one (0x7FFF on
    sn16, 0x7FFFFFFF on sn32; there all bits set is -1 unit, a real value). None when every value is real."""
    if register.always_available:
        return None
    bits = 8 * size - (1 if register.type in _SIGNED else 0)
    return (1 << bits) - 1


def raw_number(register: Register, data: bytes) -> int | None:
    """The raw integer of a numeric register (signed where its type is), None when n/a or malformed."""
    if register.type not in _SIZES or len(data) not in _SIZES[register.type]:
        return None
    raw = int.from_bytes(data, "little")
    if raw == not_available_raw(register, len(data)):
        return None
    return int.from_bytes(data, "little", signed=True) if register.type in _SIGNED else raw


def register_values(kind: str, registers: Mapping[int, bytes]) -> dict[str, float]:
    """Register values read over HEX by metric name (without `vedirect_`), in SI units, for a device of `kind`;
    registers without a metric, of another kind of device, or not available are left out."""
    values: dict[str, float] = {}
    for register_id, data in registers.items():
        register = REGISTERS.get(register_id)
        if register is None or register.metric is None or kind not in register.kinds:
            continue
        number = raw_number(register, data)
        if number is not None:  # not available: absent rather than a false 0
            values[register.metric] = round(number * register.si_scale, 9)
    return values


def text_field(register: Register, data: bytes) -> tuple[str, str] | None:
    """The text-protocol (label, raw value) that `register`'s value stands for, in the text protocol's own
    units, or None when the register mirrors no text field or the value is not available."""
    if register.label is None:
        return None
    raw = raw_number(register, data)
    if raw is None:
        return None
    return register.label, str(round(raw * register.label_scale))
