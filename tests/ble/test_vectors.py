"""Our decoder against vectors nobody here wrote: victron-ble's and go-victron's test suites (tests/data/ble/).

An advert is decoded as `ble decode --json` decodes it. A record given decrypted in the source (a plaintext
vector) is encrypted under a key of ours into an advert with the product id the data file names, then decoded the
same way: the whole path, so the vector tests what real adverts go through.
"""

import io
import json
from pathlib import Path
from typing import Any

import pytest

from pvmonit_exporter.ble.encode import build_advert
from pvmonit_exporter.commands.ble import decode_command
from pvmonit_exporter.errors import UserError

VECTORS_FILE = Path(__file__).parent.parent / "data" / "ble" / "vectors.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"]
KEY = bytes.fromhex("5c0e3f9a1d2b4c6e8f70a1b2c3d4e5f6")

# Record lengths from Victron's specification (extra-manufacturer-data-2022-12-14, vendored in victron-ble): the
# fields' bits rounded up to bytes. The sources' plaintexts are 16 bytes: the record, then the library's padding.
RECORD_BYTES = {0x01: 12, 0x02: 15, 0x03: 11, 0x04: 10, 0x08: 13}


def vector_id(vector: dict[str, Any]) -> str:
    return f"{vector['source']}:{vector['file'].rsplit('/', 1)[-1]}:{vector['test']}:{vector.get('record', '')[:8]}"


def advert_of(vector: dict[str, Any]) -> tuple[str, str]:
    """(key, advert) as hex: the vector's own, or its record encrypted under our key."""
    if "advert" in vector:
        return vector["key"], vector["advert"]
    record_type = vector["record_type"]
    record = bytes.fromhex(vector["record"])[:RECORD_BYTES[record_type]]
    advert = build_advert(int(vector["product_id"], 16), record_type, record, KEY, nonce=0x1234)
    return KEY.hex(), advert.hex()


def decode_json(key: str, advert: str) -> dict[str, Any]:
    out = io.StringIO()
    assert decode_command(key, advert, as_json=True, out=out) == 0
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


@pytest.mark.parametrize("vector", VECTORS, ids=vector_id)
def test_outside_vector(vector: dict[str, Any]) -> None:
    key, advert = advert_of(vector)
    if "error" in vector:
        with pytest.raises(UserError, match=vector["error"]):
            decode_json(key, advert)
    else:
        assert decode_json(key, advert)["values"] == vector["values"]


def test_the_issues_smart_battery_sense_advert() -> None:
    """Issue 16: 12.22 V, 22.5 °C (not 22), and no current (0x1FFFFF is "not available", not 2097.151 A)."""
    document = decode_json("0da694539597f9cf6c613cde60d7bf05", "1000a4a3025f150d8dcbff517f30eb65e76b22a04ac4e1")
    assert document == {"product_id": "0xA3A4", "product": "Smart Battery Sense", "record_type": "smart_battery_sense",
                        "values": {"battery_voltage_volts": 12.22, "battery_temperature_celsius": 22.5,
                                   "alarm_reason": []}}


def test_products_named_by_victron_ble_when_our_table_lacks_them() -> None:
    """The AC charger and DC/DC vectors' products are not in our VE.Direct table; victron-ble's names them."""
    ac = next(v for v in VECTORS if v["file"] == "tests/test_ac_charger.py" and "advert" in v)
    dcdc = next(v for v in VECTORS if v["file"] == "tests/test_dcdc_converter.py" and "advert" in v)
    assert decode_json(ac["key"], ac["advert"])["product"] == "Blue Smart IP22 Charger 12/30 (1)"
    assert decode_json(dcdc["key"], dcdc["advert"])["product"] == "Orion Smart 12V/12V-18A DC-DC Converter"
