"""The Instant Readout record layouts, as data, and reading a decrypted record by them. Pure: no I/O.

The layouts are Victron's "extra manufacturer data" specification (2022-12-14, vendored in keshavdv/victron-ble,
reference victron-ble.md) as victron-ble's parsers read them: fields packed from the least significant bit of the
first byte on, in the order listed. The bits are read with victron-ble's own `BitReader`, and a test checks every
layout, field by field, against victron-ble's parsers. victron-ble's parsers themselves are not used: they refuse a
whole record for one code their enums lack (two alarms at once, an off-reason combination, a new charge state)
and miss the Smart Battery Sense's "not available" current; here every code is kept and named later.

"Not available" is each field's own pattern: all ones on an unsigned field, the largest positive value on a signed
one, none on codes and bitmasks; the battery monitor's 22-bit current has two (below).
"""

from collections.abc import Mapping
from dataclasses import dataclass

from victron_ble.devices.base import BitReader


@dataclass(frozen=True)
class Field:
    """One field of a layout. `not_available`: the raw patterns (as unsigned bits) that mean "not available";
    None for the specification's default. The encoder writes the first."""

    name: str
    bits: int
    signed: bool = False
    not_available: tuple[int, ...] | None = None

    @property
    def missing(self) -> tuple[int, ...]:
        if self.not_available is not None:
            return self.not_available
        return ((1 << (self.bits - 1)) - 1,) if self.signed else ((1 << self.bits) - 1,)


_CODE = ()  # codes and bitmasks: every pattern is a value

# Raw units: as Victron's specification gives them (0.01 V, 0.1 A, mA, 0.01 K…); codes as the text protocol's.
LAYOUTS: Mapping[int, tuple[Field, ...]] = {
    0x01: (  # solar charger
        Field("charge_state", 8), Field("charger_error", 8),
        Field("battery_voltage", 16, signed=True),  # 0.01 V
        Field("battery_current", 16, signed=True),  # 0.1 A, negative with a load on the load output
        Field("yield_today", 16),  # 0.01 kWh
        Field("pv_power", 16),  # W
        Field("load_current", 9),  # 0.1 A
    ),
    0x02: (  # battery monitor (and Smart Battery Sense)
        Field("time_to_go", 16),  # minutes
        Field("battery_voltage", 16, signed=True),  # 0.01 V
        Field("alarm_reason", 16, not_available=_CODE),
        Field("aux_value", 16, not_available=_CODE),  # by aux_mode: 0.01 V (starter, signed; mid-point) or 0.01 K
        Field("aux_mode", 2, not_available=_CODE),  # 0 starter, 1 mid-point, 2 temperature, 3 none
        # mA. The specification says 0x3FFFFF (all ones, which a signed reading takes for -1 mA); a real Smart
        # Battery Sense sends 0x1FFFFF, the largest positive value (victron-ble's own vector; go-victron takes both).
        Field("battery_current", 22, signed=True, not_available=(0x1FFFFF, 0x3FFFFF)),
        Field("consumed_ah", 20),  # 0.1 Ah, counted positive
        Field("state_of_charge", 10),  # 0.1 %
    ),
    0x03: (  # inverter
        Field("device_state", 8),
        Field("alarm_reason", 16, not_available=_CODE),
        Field("battery_voltage", 16, signed=True),  # 0.01 V
        Field("ac_apparent_power", 16),  # VA
        Field("ac_voltage", 15),  # 0.01 V
        Field("ac_current", 11),  # 0.1 A
    ),
    0x04: (  # DC/DC converter
        Field("device_state", 8), Field("charger_error", 8),
        Field("input_voltage", 16),  # 0.01 V
        Field("output_voltage", 16, signed=True),  # 0.01 V
        Field("off_reason", 32, not_available=_CODE),
    ),
    0x08: (  # AC charger
        Field("charge_state", 8), Field("charger_error", 8),
        Field("output_voltage1", 13), Field("output_current1", 11),  # 0.01 V, 0.1 A
        Field("output_voltage2", 13), Field("output_current2", 11),
        Field("output_voltage3", 13), Field("output_current3", 11),
        Field("temperature", 7),  # °C + 40
        Field("ac_current", 9),  # 0.1 A
    ),
}


def layout_bits(record_type: int) -> int:
    return sum(f.bits for f in LAYOUTS[record_type])


def record_bytes(record_type: int) -> int:
    """The record's length: its fields' bits rounded up to bytes."""
    return (layout_bits(record_type) + 7) // 8


@dataclass(frozen=True)
class Unpacked:
    """A record read by its layout: each field's value (signed fields as signed), None when "not available".

    `spare_bits_set`: the specification says "Unused bits in the last byte of a record should be set"; False when
    one is clear. A longer record (a later firmware's extension) may use them: then they are not judged (True)."""

    values: Mapping[str, int | None]
    spare_bits_set: bool


def unpack(record_type: int, record: bytes) -> Unpacked:
    """The fields of a decrypted record; `record` has at least `record_bytes(record_type)` bytes."""
    reader = BitReader(record)
    values: dict[str, int | None] = {}
    for field in LAYOUTS[record_type]:
        raw = reader.read_unsigned_int(field.bits)
        if raw in field.missing:
            values[field.name] = None
        else:
            values[field.name] = BitReader.to_signed_int(raw, field.bits) if field.signed else raw
    used = layout_bits(record_type)
    spare = len(record) * 8 - used
    spare_bits_set = True
    if 0 < spare < 8:
        spare_bits_set = reader.read_unsigned_int(spare) == (1 << spare) - 1
    return Unpacked(values, spare_bits_set)
