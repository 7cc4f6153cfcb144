"""Building Instant Readout advertisements: what the demo's simulated devices send, and the tests' vectors.
Pure: no I/O.

The layouts are Victron's "extra manufacturer data" records (reference victron-ble.md): fields packed from the
least significant bit of the first byte on, in the order listed; a field left out is sent as "not available"
(all ones, or for most signed fields their largest positive value).
The record is encrypted with AES-128-CTR under the device key, the counter block being the nonce.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from Crypto.Cipher import AES
from Crypto.Util import Counter

from pvmonit_exporter.ble.advert import INSTANT_READOUT


@dataclass(frozen=True)
class Field:
    name: str
    bits: int
    signed: bool = False
    all_ones_when_not_available: bool = False  # a signed field whose "not available" is all ones, not the maximum

    @property
    def not_available(self) -> int:
        if self.signed and not self.all_ones_when_not_available:
            return (1 << (self.bits - 1)) - 1
        return (1 << self.bits) - 1


# Raw units: V and A in 0.01 V / 0.1 A / mA as noted; codes as the text protocol's.
LAYOUTS: Mapping[int, tuple[Field, ...]] = {
    0x01: (  # solar charger
        Field("charge_state", 8), Field("charger_error", 8),
        Field("battery_voltage", 16, signed=True),  # 0.01 V
        Field("battery_current", 16, signed=True),  # 0.1 A
        Field("yield_today", 16),  # 0.01 kWh
        Field("pv_power", 16),  # W
        Field("load_current", 9),  # 0.1 A
    ),
    0x02: (  # battery monitor (and Smart Battery Sense)
        Field("time_to_go", 16),  # minutes
        Field("battery_voltage", 16, signed=True),  # 0.01 V
        Field("alarm_reason", 16),
        Field("aux_value", 16),  # 0.01 V (starter, mid-point) or 0.01 K
        Field("aux_mode", 2),  # 0 starter, 1 mid-point, 2 temperature, 3 none
        Field("battery_current", 22, signed=True, all_ones_when_not_available=True),  # mA
        Field("consumed_ah", 20),  # 0.1 Ah, counted positive
        Field("state_of_charge", 10),  # 0.1 %
    ),
    0x03: (  # inverter
        Field("device_state", 8),
        Field("alarm_reason", 16),
        Field("battery_voltage", 16, signed=True),  # 0.01 V
        Field("ac_apparent_power", 16),  # VA
        Field("ac_voltage", 15),  # 0.01 V
        Field("ac_current", 11),  # 0.1 A
    ),
    0x04: (  # DC/DC converter
        Field("device_state", 8), Field("charger_error", 8),
        Field("input_voltage", 16),  # 0.01 V
        Field("output_voltage", 16, signed=True),  # 0.01 V
        Field("off_reason", 32),
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


def pack_record(record_type: int, values: Mapping[str, int]) -> bytes:
    """The plain record: `values` in the layout's raw units; a field not given is "not available"."""
    layout = LAYOUTS[record_type]
    unknown = set(values) - {f.name for f in layout}
    if unknown:
        raise KeyError(f"not in the layout of record type 0x{record_type:02X}: {sorted(unknown)}")
    packed, position = 0, 0
    for field in layout:
        value = values.get(field.name, field.not_available)
        packed |= (value & ((1 << field.bits) - 1)) << position
        position += field.bits
    return packed.to_bytes((position + 7) // 8, "little")


def encrypt(record: bytes, key: bytes, nonce: int) -> bytes:
    counter = Counter.new(128, initial_value=nonce, little_endian=True)
    return bytes(AES.new(key, AES.MODE_CTR, counter=counter).encrypt(record))


def build_advert(product_id: int, record_type: int, record: bytes, key: bytes, nonce: int) -> bytes:
    """Manufacturer data (after the company id) carrying `record` encrypted under `key`."""
    header = bytes([INSTANT_READOUT, 0x02]) + product_id.to_bytes(2, "little") + bytes([record_type])
    return header + nonce.to_bytes(2, "little") + key[:1] + encrypt(record, key, nonce)
