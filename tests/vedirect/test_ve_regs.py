"""The register table and the history records against Victron's own register header, entry by entry.

The truth is `tests/data/vedirect_hex/ve_regs_excerpt.h`, cut unmodified from velib's `ve_regs.h` (origin and
licence in that directory's README). This module parses each register's definition — `{sn16 = Charger Current
[0.1A], 0x7FFF = Not Available, …}` — into its fields (type, scale, unit, "not available" value, the values
given a meaning) and compares every entry of `registers.REGISTERS` with it: type, scale, unit, and the raw
value that decodes as not available. The history records are checked field by field: a record is built from
the header's field list (types and scales) and decoded by `history.py`.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from pvmonit_exporter.vedirect.history import HISTORY_DAYS, HistoryDay, HistoryTotal
from pvmonit_exporter.vedirect.registers import (
    HISTORY_DAY_0,
    HISTORY_TOTAL,
    REGISTERS,
    Register,
    Type,
    decode_value,
    not_available_raw,
)

HEADER = Path(__file__).parents[1] / "data" / "vedirect_hex" / "ve_regs_excerpt.h"

_DEFINE = re.compile(r"^#define (VE_REG_\w+) (0x[0-9A-Fa-f]{4})\s*$")
_TYPE = re.compile(r"^(un8|un16|un24|un32|sn16|sn32|stringZeroEnded|bits)(?:\[(\d+)\])?\s*=\s*")
_SCALE = re.compile(r"\[(\d*\.?\d*)\s*([^\]\d][^\]]*)?\]")
_MEANING = re.compile(r"(0x[0-9A-Fa-f]+) = ([^,:}]*)")
_NOT_AVAILABLE = re.compile(r"^(not available|unavailable|no firmware present)$", re.IGNORECASE)
# Fields are separated by " : " before a type; prose inside a field may hold " : " too ("When HH == 0 : …").
_FIELD_SEPARATOR = re.compile(r" : (?=(?:un8|un16|un24|un32|sn16|sn32|stringZeroEnded|bits)\b)")
_BITS = {"un8": 8, "un16": 16, "un24": 24, "un32": 32, "sn16": 16, "sn32": 32}
# The header's units as this project writes them: the same quantity (a kelvin and a degree Celsius are the
# same step, so mV/°C is mV/K).
_UNITS = {"minutes": "min", "mV/°C": "mV/K"}


@dataclass(frozen=True)
class Field:
    """One field of a register's definition."""

    type: str  # un8 … sn32, stringZeroEnded, bits
    bits: int  # its width (a string's: 0)
    label: str
    scale: float
    unit: str
    not_available: int | None
    meanings: dict[int, str]  # other raw values the header names: 0xFF = User Defined


@dataclass(frozen=True)
class Definition:
    name: str
    text: str  # the comment, its lines joined
    fields: tuple[Field, ...]  # empty when the header gives the type only in prose


def _parse_field(text: str) -> Field:
    match = _TYPE.match(text.strip())
    assert match, text
    kind, count = match.group(1), match.group(2)
    rest = text.strip()[match.end() :]
    label = re.split(r"[\[,(:]", rest, maxsplit=1)[0].strip()
    scale, unit = 1.0, ""
    if (found := _SCALE.search(rest)) is not None:
        scale = float(found.group(1)) if found.group(1) else 1.0
        unit = (found.group(2) or "").strip()
    meanings = {int(value, 16): words.strip() for value, words in _MEANING.findall(rest)}
    not_available = next((value for value, words in meanings.items() if _NOT_AVAILABLE.match(words)), None)
    bits = int(count) if kind == "bits" else _BITS.get(kind, 0)
    return Field(kind, bits, label, scale, _UNITS.get(unit, unit), not_available,
                 {value: words for value, words in meanings.items() if value != not_available})


def parse_header(text: str) -> dict[int, Definition]:
    """Every `#define VE_REG_… 0xNNNN` with the `/** … */` comment above it."""
    definitions: dict[int, Definition] = {}
    lines = text.splitlines()
    for number, line in enumerate(lines):
        match = _DEFINE.match(line)
        if match is None:
            continue
        start = number - 1
        while not lines[start].lstrip().startswith("/**"):
            start -= 1
        comment = " ".join(part.strip().removeprefix("/**").removesuffix("*/").strip().removeprefix("* ")
                           for part in lines[start:number])
        comment = re.sub(r"\s+", " ", comment).strip()
        braces = re.search(r"\{(.*)\}", comment)
        fields = tuple(_parse_field(part) for part in _FIELD_SEPARATOR.split(braces.group(1))) if braces else ()
        definitions[int(match.group(2), 16)] = Definition(match.group(1), comment, fields)
    return definitions


DEFINITIONS = parse_header(HEADER.read_text(encoding="utf-8"))

# Our types as the header writes them: the fields that carry the value (after an identifier byte).
_SIMPLE_TYPES = {Type.UN8: "un8", Type.UN16: "un16", Type.UN32: "un32", Type.SN16: "sn16", Type.SN32: "sn32"}
_SIZES = {"un8": 1, "un16": 2, "un24": 3, "un32": 4, "sn16": 2, "sn32": 4}


def _value_field(register: Register, definition: Definition) -> Field | None:
    """The header field holding `register`'s value, after checking that our type matches the header's."""
    fields, kind = definition.fields, register.type
    if kind in _SIMPLE_TYPES:
        if fields[0].type == "bits":  # a bit field: as wide as our type
            assert sum(field.bits for field in fields) == 8 * _SIZES[_SIMPLE_TYPES[kind]]
            assert all(field.type == "bits" for field in fields)
            return None
        assert [field.type for field in fields] == [_SIMPLE_TYPES[kind]]
        return fields[0]
    if kind is Type.STRING:
        assert fields[0].type == "stringZeroEnded"
        return None
    if kind in (Type.PRODUCT_ID, Type.APP_VERSION):
        value_type = "un16" if kind is Type.PRODUCT_ID else "un24"
        assert (fields[0].type, fields[0].label) == ("un8", "Identifier")
        assert fields[1].type == value_type
        return fields[1]
    if kind is Type.UN16_OR_32:  # the header says so in prose: "used to be a un16 … later changed to un32"
        assert not fields
        assert "This used to be a un16 VREG, and was later changed to un32" in definition.text
        assert "The VE.Direct MPPTs still have this implemented as a un16" in definition.text
        unit = re.search(r"unit is (\d*\.?\d+)(\w+)", definition.text)
        assert unit is not None
        return Field("un16", 16, definition.name, float(unit.group(1)), unit.group(2), None, {})
    raise AssertionError(f"{kind} is checked by the record tests")


def _records(kind: Type) -> list[int]:
    return sorted(reg.id for reg in REGISTERS.values() if reg.type is kind)


TABLE = sorted(reg.id for reg in REGISTERS.values() if reg.type not in (Type.HISTORY_DAY, Type.HISTORY_TOTAL))


@pytest.mark.parametrize("register_id", TABLE, ids=lambda r: f"0x{r:04X}")
def test_register_matches_ve_regs_h(register_id: int) -> None:
    """Type, scale, unit and the raw value that means "not available", as the header gives them."""
    register = REGISTERS[register_id]
    assert register_id in DEFINITIONS, f"0x{register_id:04X} is not in ve_regs_excerpt.h: add its definition"
    field = _value_field(register, DEFINITIONS[register_id])
    if field is None:  # strings and bit fields: no scale, no unit
        assert (register.scale, register.unit) == (1.0, "")
        return
    assert (register.scale, register.unit) == (field.scale, field.unit)
    if register.type in (Type.PRODUCT_ID, Type.STRING):
        return
    size = _SIZES[field.type]
    ours = not_available_raw(register, size)
    if field.not_available is not None:
        assert ours == field.not_available
    elif ours is not None:
        # The header names no "not available" value: ours is the type's rule (all bits set on unsigned, the
        # largest positive on signed), and the header must not give that value another meaning.
        assert ours not in field.meanings, field.meanings[ours]
        assert ours == (1 << 8 * size - (field.type.startswith("sn"))) - 1


@pytest.mark.parametrize(("register_id", "data", "value"), [
    (0xEDD7, b"\xff\xff", -0.1),  # sn16: all bits set is -1 unit, a real value
    (0xEDD7, b"\xff\x7f", None),  # 0x7FFF: not available
    (0xEDD7, b"\xf6\xff", -1.0),  # the issue's -1.0 A that read 6552.6 A
    (0xED8E, b"\xff\xff", -1),
    (0xEDDB, b"\xff\xff", -0.01),
    (0xED7D, b"\xfe\xff", -0.02),  # a starter battery can read -0.02 V
    (0xED7D, b"\xff\x7f", None),
    (0x0383, b"\xff\x7f", None),
    (0xED8C, b"\xff\xff\xff\x7f", None),  # sn32: 0x7FFFFFFF
    (0xED8C, b"\xff\xff\xff\xff", -0.001),
    (0xEDF1, b"\xff", 255),  # battery type 0xFF = user defined: a value
    (0xEDEC, b"\xff\xff", None),  # un16: all bits set
    (0x0102, b"\x00\xff\x59\x01", 0x0159FF),  # un8 identifier, then un24
    (0x0102, b"\x00\xff\xff\xff", None),  # 0xFFFFFF = no firmware present
])
def test_not_available_follows_the_type(register_id: int, data: bytes, value: float | None) -> None:
    assert decode_value(REGISTERS[register_id], data) == (value, None)


def test_the_history_days_are_the_headers_and_0x106f_is_not_one() -> None:
    days = _records(Type.HISTORY_DAY)
    assert days == list(range(HISTORY_DAY_0, HISTORY_DAY_0 + HISTORY_DAYS))
    assert [DEFINITIONS[day].name for day in days] == [f"VE_REG_HISTORY_DAY{d:02d}" for d in range(HISTORY_DAYS)]
    assert DEFINITIONS[days[-1] + 1].name == "VE_REG_HISTORY_CYCLE_COUNT"
    assert _records(Type.HISTORY_TOTAL) == [HISTORY_TOTAL]
    assert DEFINITIONS[HISTORY_TOTAL].name == "VE_REG_HISTORY_TOTAL"


# Our record fields by the header's field labels (the only thing written here: which name is which).
DAY_FIELDS = {"Version": None, "Yield": "yield_kwh", "Consumed": "consumed_kwh",
              "Battery voltage max": "battery_voltage_max_v", "Battery voltage min": "battery_voltage_min_v",
              "Error database id": "error_database", "Error 0": "errors.0", "Error 1": "errors.1",
              "Error 2": "errors.2", "Error 3": "errors.3", "Time Bulk": "bulk_min",
              "Time Absorption": "absorption_min", "Time Float": "float_min", "Max power": "max_power_w",
              "Battery current max": "max_battery_current_a", "Panel voc max": "max_pv_voltage_v",
              "Day sequence number": "day_sequence"}
TOTAL_FIELDS = {"Version": None, "Error database id": "error_database", "Error 0": "errors.0",
                "Error 1": "errors.1", "Error 2": "errors.2", "Error 3": "errors.3",
                "Total yield user": "user_yield_kwh", "Total yield system": "system_yield_kwh",
                "Panel voc max": "max_pv_voltage_v", "Battery voltage max": "max_battery_voltage_v",
                "Number of available days": "days_available"}


def _attribute(record: HistoryDay | HistoryTotal, name: str) -> object:
    if name.startswith("errors."):
        return record.errors[int(name.split(".")[1])]
    return getattr(record, name)


def _record(fields: tuple[Field, ...], raws: list[int]) -> bytes:
    return b"".join(raw.to_bytes(_SIZES[field.type], "little") for field, raw in zip(fields, raws, strict=True))


@pytest.mark.parametrize("register_id", [HISTORY_TOTAL, *_records(Type.HISTORY_DAY)], ids=lambda r: f"0x{r:04X}")
def test_history_record_field_by_field(register_id: int) -> None:
    """A record built from the header's field list (each field its own number) decodes each field to that
    number times the header's scale; each field the header gives a "not available" value decodes as None."""
    fields = DEFINITIONS[register_id].fields
    names = TOTAL_FIELDS if register_id == HISTORY_TOTAL else DAY_FIELDS
    assert [field.label for field in fields] == list(names)
    raws = [index + 1 for index in range(len(fields))]

    def decode(data: bytes) -> HistoryDay | HistoryTotal:
        value, error = decode_value(REGISTERS[register_id], data)
        assert error is None
        assert isinstance(value, HistoryDay | HistoryTotal)
        return value

    record = decode(_record(fields, raws))
    if isinstance(record, HistoryDay):
        assert record.days_ago == register_id - HISTORY_DAY_0
    for index, (field, name) in enumerate(zip(fields, names.values(), strict=True)):
        if name is None:
            continue
        assert _attribute(record, name) == pytest.approx(raws[index] * field.scale), field.label
        if field.not_available is not None:
            damaged = decode(_record(fields, [*raws[:index], field.not_available, *raws[index + 1 :]]))
            assert _attribute(damaged, name) is None, field.label


def test_a_longer_total_record_from_newer_firmware_decodes() -> None:
    """Newer firmware sends a 26-byte 0x104F: the header's fields, then more; the tail is ignored."""
    fields = DEFINITIONS[HISTORY_TOTAL].fields
    record = _record(fields, [0, 0, 0, 0, 0, 0, 827200, 1234500, 9412, 1490, 30])
    assert len(record) == 19
    value, error = decode_value(REGISTERS[HISTORY_TOTAL], record + bytes(range(7)))
    assert error is None
    assert value == HistoryTotal(0, (0, 0, 0, 0), 8272.0, 12345.0, 94.12, 14.9, 30)
    assert isinstance(value, HistoryTotal)
    assert value.days_to_read == 31  # "30 days available": today and 30 before
