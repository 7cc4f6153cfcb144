"""Building Instant Readout advertisements: what the demo's simulated devices send, and the tests' vectors.
Pure: no I/O.

The layouts are those the decoder reads (`ble.records`); a field left out is sent as its first "not available"
pattern (a code or bitmask, which has none, as all ones). The record is encrypted with AES-128-CTR under the
device key, the counter block being the nonce.
"""

from collections.abc import Mapping

from pvmonit_exporter.ble.advert import INSTANT_READOUT, aes_ctr
from pvmonit_exporter.ble.records import LAYOUTS


def pack_record(record_type: int, values: Mapping[str, int]) -> bytes:
    """The plain record: `values` in the layout's raw units; a field not given is "not available", and the unused
    bits of the last byte are set, as Victron's specification asks."""
    layout = LAYOUTS[record_type]
    unknown = set(values) - {f.name for f in layout}
    if unknown:
        raise KeyError(f"not in the layout of record type 0x{record_type:02X}: {sorted(unknown)}")
    packed, position = 0, 0
    for field in layout:
        value = values.get(field.name, field.missing[0] if field.missing else (1 << field.bits) - 1)
        packed |= (value & ((1 << field.bits) - 1)) << position
        position += field.bits
    length = (position + 7) // 8
    packed |= ((1 << (length * 8 - position)) - 1) << position  # "Unused bits in the last byte … should be set"
    return packed.to_bytes(length, "little")


def build_advert(product_id: int, record_type: int, record: bytes, key: bytes, nonce: int) -> bytes:
    """Manufacturer data (after the company id) carrying `record` encrypted under `key`."""
    header = bytes([INSTANT_READOUT, 0x02]) + product_id.to_bytes(2, "little") + bytes([record_type])
    return header + nonce.to_bytes(2, "little") + key[:1] + aes_ctr(record, key, nonce)
