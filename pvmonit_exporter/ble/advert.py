"""One Instant Readout advertisement → one text-protocol block. Pure: no I/O, threads or logging.

The container, the encryption and the record layouts are Victron's "extra manufacturer data" (reference
victron-ble.md). Decryption and the record layouts are victron-ble's (keshavdv, public domain: the reference
implementation, and what Home Assistant's parser wraps). This module adds what a daemon needs around it: checks
that turn a wrong key, a cut-off advert or an unknown record into one clear error instead of garbage values,
and the mapping of each record onto the text protocol's labels and raw units, so that the state, metrics, live
page and emoncms rows are the same whichever way a reading came.
"""

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from victron_ble.devices import (
    AcCharger,
    BatteryMonitor,
    BatterySense,
    DcDcConverter,
    Device,
    Inverter,
    SolarCharger,
    detect_device_type,
)

from pvmonit_exporter.vedirect.framing import Block
from pvmonit_exporter.vedirect.products import product_name

COMPANY_ID = 0x02E1  # Victron Energy's Bluetooth company identifier
INSTANT_READOUT = 0x10  # first byte of an Instant Readout container
HEADER_LEN = 8  # prefix, flags, product id (2), record type, nonce (2), key check

# Record types (byte 4) by their name in the reference, snake case.
RECORD_TYPES: Mapping[int, str] = {
    0x01: "solar_charger",
    0x02: "battery_monitor",
    0x03: "inverter",
    0x04: "dcdc_converter",
    0x05: "smart_lithium",
    0x06: "inverter_rs",
    0x08: "ac_charger",
    0x09: "smart_battery_protect",
    0x0A: "lynx_smart_bms",
    0x0B: "multi_rs",
    0x0C: "ve_bus",
    0x0D: "dc_energy_meter",
    0x0F: "orion_xs",
}


class AdvertError(ValueError):
    """An advertisement that gives no values; `str()` is one line a user can act on."""


class NotInstantReadoutError(AdvertError):
    pass


class TruncatedAdvertError(AdvertError):
    pass


class KeyMismatchError(AdvertError):
    pass


class UnknownRecordTypeError(AdvertError):
    pass


class UndecodableRecordError(AdvertError):
    pass


@dataclass(frozen=True)
class Container:
    """The clear part of an advertisement; `record` is still encrypted."""

    product_id: int
    record_type: int
    nonce: int
    key_check: int  # the key's first byte
    record: bytes

    @property
    def record_type_name(self) -> str:
        return RECORD_TYPES.get(self.record_type, f"unknown_0x{self.record_type:02x}")


def parse_container(data: bytes) -> Container:
    """Manufacturer data of company 0x02E1 → its container; AdvertError when it is not an Instant Readout."""
    if not data or data[0] != INSTANT_READOUT:
        first = f"0x{data[0]:02X}" if data else "nothing"
        hint = "; give the bytes after the company id E1 02" if data[:3] == b"\xe1\x02\x10" else ""
        raise NotInstantReadoutError(f"not an Instant Readout advertisement (starts with {first}, not 0x10{hint})")
    if len(data) <= HEADER_LEN:
        raise TruncatedAdvertError(f"advertisement cut short: {len(data)} bytes, no record after the "
                              f"{HEADER_LEN}-byte header")
    product_id, record_type, nonce = struct.unpack_from("<HBH", data, 2)
    return Container(product_id, record_type, nonce, data[7], data[HEADER_LEN:])


def key_matches(container: Container, key: bytes) -> bool:
    """The advert's key-check byte is the key's first byte: the only check possible before decrypting."""
    return container.key_check == key[0]


def product_label(product_id: int) -> str:
    return product_name(f"0x{product_id:04X}") or f"Unknown product 0x{product_id:04X}"


# --- mapping: victron-ble's values (SI-ish units, enums) → the text protocol's raw values -----------------

Convert = Callable[[Any], str | None]  # None: not available after all


def _scaled(factor: float) -> Convert:
    """victron-ble's unit → the label's raw integer unit (V → mV: 1000)."""
    return lambda value: str(round(value * factor))


def _code(value: Enum | int) -> str:
    return str(value.value if isinstance(value, Enum) else value)


def _kelvin_to_celsius(value: float) -> str:
    return str(round(value - 273.15))


def _hex32(value: Enum | int) -> str:
    return f"0x{int(_code(value)):08X}"


def _battery_monitor_current(value: float) -> str | None:
    """victron-ble compares the signed 22-bit current with the unsigned "not available" pattern 0x3FFFFF, which
    a signed value never equals: all ones comes out as -1 mA. A real -1 mA is lost with it, below any shunt's
    resolution anyway."""
    milliamperes = round(value * 1000)
    return None if milliamperes == -1 else str(milliamperes)


_MILLI = _scaled(1000)
_ONE = _scaled(1)


@dataclass(frozen=True)
class RecordKind:
    """How one of victron-ble's parsers maps onto text-protocol labels.

    `record_bytes` is the record's length, from its layout's bit count rounded up: a shorter record would be
    decrypted with padding bytes in place of the missing fields (a test checks the lengths against the library).
    """

    name: str
    record_bytes: int
    labels: tuple[tuple[str, str, Convert], ...]  # label, victron-ble's key, conversion


_BATTERY_MONITOR_LABELS: tuple[tuple[str, str, Convert], ...] = (
    ("V", "voltage", _MILLI),
    ("I", "current", _battery_monitor_current),
    ("CE", "consumed_ah", _MILLI),  # victron-ble gives it negative, as CE is
    ("SOC", "soc", _scaled(10)),  # % → ‰
    ("TTG", "remaining_mins", _ONE),
    ("AR", "alarm", _code),
    ("VS", "starter_voltage", _MILLI),  # the aux input, by its mode
    ("VM", "midpoint_voltage", _MILLI),
    ("T", "temperature_kelvin", _kelvin_to_celsius),
)

KINDS: Mapping[type[Device], RecordKind] = {
    SolarCharger: RecordKind("solar_charger", 12, (
        ("CS", "charge_state", _code),
        ("ERR", "charger_error", _code),
        ("V", "battery_voltage", _MILLI),
        ("I", "battery_charging_current", _MILLI),
        ("H20", "yield_today", _scaled(0.1)),  # Wh → 0.01 kWh
        ("PPV", "solar_power", _ONE),
        ("IL", "external_device_load", _MILLI),
    )),
    BatteryMonitor: RecordKind("battery_monitor", 15, _BATTERY_MONITOR_LABELS),
    # The same record; the sensor fills only voltage and temperature, the rest is "not available".
    BatterySense: RecordKind("smart_battery_sense", 15, _BATTERY_MONITOR_LABELS),
    Inverter: RecordKind("inverter", 11, (
        ("CS", "device_state", _code),
        ("AR", "alarm", _code),
        ("V", "battery_voltage", _MILLI),
        ("AC_OUT_S", "ac_apparent_power", _ONE),
        ("AC_OUT_V", "ac_voltage", _scaled(100)),  # V → 0.01 V
        ("AC_OUT_I", "ac_current", _scaled(10)),  # A → 0.1 A
    )),
    DcDcConverter: RecordKind("dcdc_converter", 10, (
        ("CS", "device_state", _code),
        ("ERR", "charger_error", _code),
        ("DC_IN_V", "input_voltage", _scaled(100)),
        ("V", "output_voltage", _MILLI),
        ("OR", "off_reason", _hex32),
    )),
    AcCharger: RecordKind("ac_charger", 13, (
        ("CS", "charge_state", _code),
        ("ERR", "charger_error", _code),
        ("V", "output_voltage1", _MILLI),
        ("I", "output_current1", _MILLI),
        ("V2", "output_voltage2", _MILLI),
        ("I2", "output_current2", _MILLI),
        ("V3", "output_voltage3", _MILLI),
        ("I3", "output_current3", _MILLI),
        ("T", "temperature", _ONE),
        # The AC input current has no text-protocol label: not mapped.
    )),
}


def record_type_of(data: bytes, container: Container) -> str:
    """The record's name: victron-ble's choice of parser where it has one (a Smart Battery Sense is told by its
    product id), else the reference's name of the record type."""
    parser_class = detect_device_type(data)
    kind = KINDS.get(parser_class) if parser_class is not None else None
    return kind.name if kind is not None else container.record_type_name


@dataclass(frozen=True)
class Reading:
    """One decoded advertisement: `block` holds text-protocol labels → raw values, `PID` first."""

    product_id: int
    product: str
    record_type: str
    nonce: int
    block: Block


@dataclass(frozen=True)
class _Parser:
    """What decoding a device's adverts needs, found once per (product id, record type)."""

    library: Device
    kind: RecordKind
    product: str


class AdvertDecoder:
    """Decodes one device's advertisements with its key.

    A device repeats the same advertisement until its values change: a repeat is answered from the last one,
    at the cost of a comparison instead of a decryption. The parser and the product name are looked up once.
    """

    def __init__(self, key: bytes) -> None:
        self.key = key
        self._parsers: dict[tuple[int, int], _Parser] = {}
        self._last: tuple[bytes, Reading] | None = None

    def decode(self, data: bytes) -> Reading:
        """The reading of `data` (manufacturer data of company 0x02E1); AdvertError when it has none."""
        if self._last is not None and self._last[0] == data:
            return self._last[1]
        reading = self._decode(data)
        self._last = (bytes(data), reading)
        return reading

    def _parser(self, container: Container, data: bytes) -> _Parser:
        found = self._parsers.get((container.product_id, container.record_type))
        if found is not None:
            return found
        parser_class = detect_device_type(data)
        kind = KINDS.get(parser_class) if parser_class is not None else None
        if parser_class is None or kind is None:
            raise UnknownRecordTypeError(f"record type 0x{container.record_type:02X} "
                                         f"({container.record_type_name}) is not supported")
        found = _Parser(parser_class(self.key.hex()), kind, product_label(container.product_id))
        self._parsers[(container.product_id, container.record_type)] = found
        return found

    def _decode(self, data: bytes) -> Reading:
        container = parse_container(data)
        if not key_matches(container, self.key):
            raise KeyMismatchError(f"the key does not match this device: its key-check byte is "
                                   f"0x{container.key_check:02X}, the key starts with 0x{self.key[0]:02X} "
                                   f"(copy the key again from VictronConnect)")
        parser = self._parser(container, data)
        kind = parser.kind
        if len(container.record) < kind.record_bytes:
            raise TruncatedAdvertError(f"advertisement cut short: a {kind.name} record is {kind.record_bytes} "
                                       f"bytes, this one {len(container.record)}")
        try:
            values: Mapping[str, Any] = parser.library.parse_decrypted(parser.library.decrypt(data))
        except (ValueError, KeyError, IndexError, struct.error) as exc:
            # victron-ble builds enums from codes: a code it does not know (or several alarm bits at once) fails.
            raise UndecodableRecordError(f"{kind.name} record not decodable by victron-ble: {exc}") from None
        block: Block = {"PID": f"0x{container.product_id:04X}"}
        for label, key, convert in kind.labels:
            value = values.get(key)
            raw = None if value is None else convert(value)
            if raw is not None:  # not available: absent, never 0
                block[label] = raw
        return Reading(container.product_id, parser.product, kind.name, container.nonce, block)
