"""One Instant Readout advertisement → one text-protocol block. Pure: no I/O, threads or logging.

The container, the encryption and the record layouts are Victron's "extra manufacturer data" (reference
victron-ble.md). The record layouts are read as victron-ble (keshavdv, public domain: the reference
implementation, and what Home Assistant's parser wraps) reads them, with its bit reader (`ble.records`); which
record a product sends is victron-ble's choice. This module adds what a daemon needs around it: checks that turn a
wrong key, a cut-off advert or an unknown record into one clear error instead of garbage values (`ble.plausible`),
and the mapping of each record onto the text protocol's labels and raw units, so that the state, metrics, live
page and emoncms rows are the same whichever way a reading came.
"""

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from Crypto.Cipher import AES
from Crypto.Util import Counter
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
from victron_ble.devices.base import MODEL_ID_MAPPING

from pvmonit_exporter.ble.plausible import Rating, implausible, rating_of
from pvmonit_exporter.ble.records import record_bytes, unpack
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


class ImplausibleRecordError(AdvertError):
    """A record that decrypts, but to values its product cannot send: with a key that passes the key check,
    the key is most likely wrong all the same. `nonsense` lists them, as `V 120.14 V`."""

    def __init__(self, nonsense: tuple[str, ...]) -> None:
        super().__init__(f"the key is probably wrong: the advert decrypts to values that make no sense "
                         f"({', '.join(nonsense)}); copy the key again from VictronConnect")
        self.nonsense = nonsense


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
    """Our product table's name, else victron-ble's (it lists the Bluetooth-only products: chargers, Orions)."""
    return (product_name(f"0x{product_id:04X}") or MODEL_ID_MAPPING.get(product_id)
            or f"Unknown product 0x{product_id:04X}")


# --- a record's fields → the text protocol's labels and raw units -----------------------------------------

Convert = Callable[[int], str]
Values = Mapping[str, int | None]


def _times(factor: int) -> Convert:
    """The layout's unit → the label's raw integer unit (0.01 V → mV: 10)."""
    return lambda value: str(value * factor)


_SAME = _times(1)


def _hex32(value: int) -> str:
    return f"0x{value:08X}"


def _celsius_from_centikelvin(value: int) -> str:
    """0.01 K → °C, every digit the advert has: 29565 → `22.5` (the text protocol's `T` is whole degrees; this
    label's values may carry a fraction, see `vedirect.fields`)."""
    text = f"{(value - 27315) / 100:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _aux_input(values: Values) -> tuple[str, str] | None:
    """A battery monitor's aux input, by its mode: starter voltage (signed), mid-point, temperature, or none."""
    mode, aux = values["aux_mode"], values["aux_value"]
    if aux is None:
        return None
    if mode == 0:
        starter = aux - 0x10000 if aux & 0x8000 else aux
        return None if starter == 0x7FFF else ("VS", str(starter * 10))
    if mode == 1:
        # 0x8000 and above is a negative reading read unsigned (0xFFFE, -0.02 V: nothing on the input), never a
        # mid-point (half a bank, at most 40 V): not available.
        return None if aux >= 0x8000 else ("VM", str(aux * 10))
    if mode == 2:
        return None if aux == 0xFFFF else ("T", _celsius_from_centikelvin(aux))  # the range ends at 655.34 K
    return None


@dataclass(frozen=True)
class RecordKind:
    """How one record maps onto text-protocol labels: `labels` are (label, layout field, conversion)."""

    name: str
    record_type: int
    labels: tuple[tuple[str, str, Convert], ...]
    combined: Callable[[Values], tuple[str, str] | None] | None = None  # a label decided by several fields

    @property
    def record_bytes(self) -> int:
        return record_bytes(self.record_type)


_BATTERY_MONITOR_LABELS: tuple[tuple[str, str, Convert], ...] = (
    ("V", "battery_voltage", _times(10)),
    ("I", "battery_current", _SAME),
    ("CE", "consumed_ah", _times(-100)),  # counted positive in 0.1 Ah; CE is negative mAh
    ("SOC", "state_of_charge", _SAME),  # 0.1 % = ‰
    ("TTG", "time_to_go", _SAME),
    ("AR", "alarm_reason", _SAME),
)

KINDS: Mapping[type[Device], RecordKind] = {
    SolarCharger: RecordKind("solar_charger", 0x01, (
        ("CS", "charge_state", _SAME),
        ("ERR", "charger_error", _SAME),
        ("V", "battery_voltage", _times(10)),
        ("I", "battery_current", _times(100)),
        ("H20", "yield_today", _SAME),
        ("PPV", "pv_power", _SAME),
        ("IL", "load_current", _times(100)),
    )),
    BatteryMonitor: RecordKind("battery_monitor", 0x02, _BATTERY_MONITOR_LABELS, _aux_input),
    # The same record; the sensor fills only voltage and temperature, the rest is "not available".
    BatterySense: RecordKind("smart_battery_sense", 0x02, _BATTERY_MONITOR_LABELS, _aux_input),
    Inverter: RecordKind("inverter", 0x03, (
        ("CS", "device_state", _SAME),
        ("AR", "alarm_reason", _SAME),
        ("V", "battery_voltage", _times(10)),
        ("AC_OUT_S", "ac_apparent_power", _SAME),
        ("AC_OUT_V", "ac_voltage", _SAME),
        ("AC_OUT_I", "ac_current", _SAME),
    )),
    DcDcConverter: RecordKind("dcdc_converter", 0x04, (
        ("CS", "device_state", _SAME),
        ("ERR", "charger_error", _SAME),
        ("DC_IN_V", "input_voltage", _SAME),
        ("V", "output_voltage", _times(10)),
        ("OR", "off_reason", _hex32),
    )),
    AcCharger: RecordKind("ac_charger", 0x08, (
        ("CS", "charge_state", _SAME),
        ("ERR", "charger_error", _SAME),
        ("V", "output_voltage1", _times(10)),
        ("I", "output_current1", _times(100)),
        ("V2", "output_voltage2", _times(10)),
        ("I2", "output_current2", _times(100)),
        ("V3", "output_voltage3", _times(10)),
        ("I3", "output_current3", _times(100)),
        ("T", "temperature", lambda value: str(value - 40)),
        # The AC input current has no text-protocol label: not mapped.
    )),
}


def block_of(kind: RecordKind, values: Values) -> Block:
    """A record's fields as text-protocol labels; a field "not available" is absent, never 0."""
    block: Block = {}
    for label, name, convert in kind.labels:
        value = values[name]
        if value is not None:
            block[label] = convert(value)
    combined = kind.combined(values) if kind.combined is not None else None
    if combined is not None:
        block[combined[0]] = combined[1]
    return block


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

    kind: RecordKind
    product: str
    rating: Rating


def aes_ctr(data: bytes, key: bytes, nonce: int) -> bytes:
    """AES-128-CTR under `key`, the counter block being the nonce (little-endian): encrypts and decrypts."""
    counter = Counter.new(128, initial_value=nonce, little_endian=True)
    return bytes(AES.new(key, AES.MODE_CTR, counter=counter).encrypt(data))


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
        """The reading of `data` (manufacturer data of company 0x02E1); AdvertError when it has none, among them
        ImplausibleRecordError when its values make no sense for the product (a wrong key, most likely)."""
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
        if kind is None:
            raise UnknownRecordTypeError(f"record type 0x{container.record_type:02X} "
                                         f"({container.record_type_name}) is not supported")
        product = product_label(container.product_id)
        found = _Parser(kind, product, rating_of(product))
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
        unpacked = unpack(kind.record_type, aes_ctr(container.record, self.key, container.nonce))
        block = block_of(kind, unpacked.values)
        nonsense = implausible(kind.name, block, parser.rating, spare_bits_set=unpacked.spare_bits_set)
        if nonsense:
            raise ImplausibleRecordError(nonsense)
        return Reading(container.product_id, parser.product, kind.name, container.nonce,
                       {"PID": f"0x{container.product_id:04X}", **block})

