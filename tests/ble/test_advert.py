"""Instant Readout adverts → text-protocol blocks, through victron-ble: vectors we made ourselves (a record built
field by field, encrypted with AES-128-CTR under a key we chose), one per record type, and every way an advert
can fail."""

import random
from collections.abc import Mapping

import pytest
from victron_ble.devices import AcCharger, BatteryMonitor, BatterySense, DcDcConverter, Inverter, SolarCharger

from pvmonit_exporter.ble.advert import (
    KINDS,
    AdvertDecoder,
    KeyMismatchError,
    NotInstantReadoutError,
    TruncatedAdvertError,
    UnknownRecordTypeError,
    parse_container,
)
from pvmonit_exporter.ble.encode import build_advert, pack_record
from pvmonit_exporter.ble.keys import parse_address, parse_key
from pvmonit_exporter.ble.records import LAYOUTS, record_bytes, unpack
from pvmonit_exporter.vedirect.fields import metric_values

KEY = bytes.fromhex("8f3a9c55d2e14b07a6c3f0e2b1d49a7c")
OTHER_KEY = bytes.fromhex("11223344556677889900aabbccddeeff")


def advert(product_id: int, record_type: int, values: Mapping[str, int], key: bytes = KEY, nonce: int = 0x4A3F,
           ) -> bytes:
    return build_advert(product_id, record_type, pack_record(record_type, values), key, nonce)


# A SmartShunt advert, written out once: pins the encoder (container, bit packing, AES-CTR) independently of it.
SMARTSHUNT_HEX = "100289a3023f4a8f95866b7338575d82ab3c2bf9cbce95"
SMARTSHUNT_VALUES = {"time_to_go": 754, "battery_voltage": 1287, "alarm_reason": 0, "aux_value": 1262,
                     "aux_mode": 0, "battery_current": -3125, "consumed_ah": 412, "state_of_charge": 793}


def test_the_written_out_vector_is_what_the_encoder_builds() -> None:
    assert advert(0xA389, 0x02, SMARTSHUNT_VALUES).hex() == SMARTSHUNT_HEX


def test_written_out_smartshunt_vector() -> None:
    reading = AdvertDecoder(KEY).decode(bytes.fromhex(SMARTSHUNT_HEX))
    assert (reading.product_id, reading.product, reading.record_type, reading.nonce) == (
        0xA389, "SmartShunt 500A/50mV", "battery_monitor", 0x4A3F)
    # Aux mode 0: the aux input is the starter battery, VS.
    assert reading.block == {"PID": "0xA389", "V": "12870", "I": "-3125", "CE": "-41200", "SOC": "793",
                             "TTG": "754", "AR": "0", "VS": "12620"}


@pytest.mark.parametrize(("product_id", "record_type", "values", "record_name", "block"), [
    pytest.param(0xA042, 0x01, {"charge_state": 4, "charger_error": 0, "battery_voltage": 1342,
                                "battery_current": 75, "yield_today": 37, "pv_power": 112, "load_current": 12},
                 "solar_charger",
                 {"CS": "4", "ERR": "0", "V": "13420", "I": "7500", "H20": "37", "PPV": "112", "IL": "1200"},
                 id="solar charger"),
    pytest.param(0xA38A, 0x02, {"time_to_go": 1440, "battery_voltage": 2618, "alarm_reason": 4,
                                "aux_value": 29815, "aux_mode": 2, "battery_current": 4250, "consumed_ah": 123,
                                "state_of_charge": 876},
                 "battery_monitor",
                 {"V": "26180", "I": "4250", "CE": "-12300", "SOC": "876", "TTG": "1440", "AR": "4", "T": "25"},
                 id="battery monitor, temperature on the aux input"),
    pytest.param(0xA381, 0x02, {"battery_voltage": 1250, "alarm_reason": 0, "aux_value": 625, "aux_mode": 1,
                                "battery_current": -1000, "consumed_ah": 0, "state_of_charge": 1000},
                 "battery_monitor",
                 {"V": "12500", "I": "-1000", "CE": "0", "SOC": "1000", "AR": "0", "VM": "6250"},
                 id="BMV-712, mid-point on the aux input, time to go not available"),
    pytest.param(0xA3A4, 0x02, {"battery_voltage": 1302, "alarm_reason": 0, "aux_value": 28815, "aux_mode": 2},
                 "smart_battery_sense", {"V": "13020", "AR": "0", "T": "15"},
                 id="Smart Battery Sense: battery-monitor record, told by its product id"),
    pytest.param(0xA2E2, 0x03, {"device_state": 9, "alarm_reason": 0, "battery_voltage": 2512,
                                "ac_apparent_power": 184, "ac_voltage": 23001, "ac_current": 8},
                 "inverter",
                 {"CS": "9", "AR": "0", "V": "25120", "AC_OUT_S": "184", "AC_OUT_V": "23001", "AC_OUT_I": "8"},
                 id="inverter"),
    pytest.param(0xA3C0, 0x04, {"device_state": 3, "charger_error": 0, "input_voltage": 1385,
                                "output_voltage": 1421, "off_reason": 0},
                 "dcdc_converter", {"CS": "3", "ERR": "0", "DC_IN_V": "1385", "V": "14210", "OR": "0x00000000"},
                 id="DC/DC converter"),
    pytest.param(0xA336, 0x08, {"charge_state": 5, "charger_error": 0, "output_voltage1": 2760,
                                "output_current1": 31, "temperature": 62, "ac_current": 4},
                 "ac_charger", {"CS": "5", "ERR": "0", "V": "27600", "I": "3100", "T": "22"},
                 id="AC charger, outputs 2 and 3 not available"),
])
def test_one_vector_per_record_type(product_id: int, record_type: int, values: dict[str, int], record_name: str,
                                    block: dict[str, str]) -> None:
    reading = AdvertDecoder(KEY).decode(advert(product_id, record_type, values))
    assert reading.record_type == record_name
    assert reading.block == {"PID": f"0x{product_id:04X}", **block}


# One plausible record per record type (product id, raw values), to vary one field of.
SENSIBLE: dict[str, tuple[int, int, dict[str, int]]] = {
    "solar_charger": (0xA042, 0x01, {"charge_state": 4, "charger_error": 0, "battery_voltage": 1342,
                                     "battery_current": 75, "yield_today": 37, "pv_power": 112, "load_current": 12}),
    "battery_monitor": (0xA389, 0x02, SMARTSHUNT_VALUES),
    "smart_battery_sense": (0xA3A4, 0x02, {"battery_voltage": 1222, "alarm_reason": 0, "aux_value": 29565,
                                           "aux_mode": 2}),
    "inverter": (0xA2E2, 0x03, {"device_state": 9, "alarm_reason": 0, "battery_voltage": 2512,
                                "ac_apparent_power": 184, "ac_voltage": 23001, "ac_current": 8}),
    "dcdc_converter": (0xA3C0, 0x04, {"device_state": 3, "charger_error": 0, "input_voltage": 1385,
                                      "output_voltage": 1421, "off_reason": 0}),
    "ac_charger": (0xA341, 0x08, {"charge_state": 5, "charger_error": 0, "output_voltage1": 1380,
                                  "output_current1": 310, "output_voltage2": 1380, "output_current2": 52,
                                  "output_voltage3": 1381, "output_current3": 0, "temperature": 62,
                                  "ac_current": 40}),
}


def sensible(record: str, **changes: int) -> bytes:
    product_id, record_type, values = SENSIBLE[record]
    return advert(product_id, record_type, {**values, **changes})


# Every field with a "not available" pattern of its own (Victron's specification; the battery monitor's current
# also as the Smart Battery Sense sends it), the pattern, and the label it must then be absent from.
NOT_AVAILABLE = [
    ("solar_charger", "charge_state", 0xFF, "CS"), ("solar_charger", "charger_error", 0xFF, "ERR"),
    ("solar_charger", "battery_voltage", 0x7FFF, "V"), ("solar_charger", "battery_current", 0x7FFF, "I"),
    ("solar_charger", "yield_today", 0xFFFF, "H20"), ("solar_charger", "pv_power", 0xFFFF, "PPV"),
    ("solar_charger", "load_current", 0x1FF, "IL"),
    ("battery_monitor", "time_to_go", 0xFFFF, "TTG"), ("battery_monitor", "battery_voltage", 0x7FFF, "V"),
    ("battery_monitor", "battery_current", 0x1FFFFF, "I"), ("battery_monitor", "battery_current", 0x3FFFFF, "I"),
    ("battery_monitor", "consumed_ah", 0xFFFFF, "CE"), ("battery_monitor", "state_of_charge", 0x3FF, "SOC"),
    ("battery_monitor", "aux_value", 0x7FFF, "VS"),  # aux mode 0: the starter voltage, signed
    ("smart_battery_sense", "aux_value", 0xFFFF, "T"),  # aux mode 2: 0 .. 655.34 K
    ("smart_battery_sense", "battery_voltage", 0x7FFF, "V"),
    ("inverter", "device_state", 0xFF, "CS"), ("inverter", "battery_voltage", 0x7FFF, "V"),
    ("inverter", "ac_apparent_power", 0xFFFF, "AC_OUT_S"), ("inverter", "ac_voltage", 0x7FFF, "AC_OUT_V"),
    ("inverter", "ac_current", 0x7FF, "AC_OUT_I"),
    ("dcdc_converter", "device_state", 0xFF, "CS"), ("dcdc_converter", "charger_error", 0xFF, "ERR"),
    ("dcdc_converter", "input_voltage", 0xFFFF, "DC_IN_V"), ("dcdc_converter", "output_voltage", 0x7FFF, "V"),
    ("ac_charger", "charge_state", 0xFF, "CS"), ("ac_charger", "charger_error", 0xFF, "ERR"),
    ("ac_charger", "output_voltage1", 0x1FFF, "V"), ("ac_charger", "output_current1", 0x7FF, "I"),
    ("ac_charger", "output_voltage2", 0x1FFF, "V2"), ("ac_charger", "output_current2", 0x7FF, "I2"),
    ("ac_charger", "output_voltage3", 0x1FFF, "V3"), ("ac_charger", "output_current3", 0x7FF, "I3"),
    ("ac_charger", "temperature", 0x7F, "T"),
]


@pytest.mark.parametrize(("record", "field", "pattern", "label"), NOT_AVAILABLE,
                         ids=[f"{r}-{f}-0x{p:X}" for r, f, p, _ in NOT_AVAILABLE])
def test_each_fields_not_available_pattern_is_absent(record: str, field: str, pattern: int, label: str) -> None:
    changes = {field: pattern, "aux_mode": 0} if field == "aux_value" and record == "battery_monitor" else {
        field: pattern}
    block = AdvertDecoder(KEY).decode(sensible(record, **changes)).block
    assert label not in block
    assert len(block) >= 3  # the rest still decodes


def test_an_unavailable_battery_current_is_absent_never_2097_amperes() -> None:
    """A Smart Battery Sense sends its current as 0x1FFFFF (victron-ble gives 2097.151 A for it)."""
    block = AdvertDecoder(KEY).decode(sensible("smart_battery_sense", battery_current=0x1FFFFF)).block
    assert block == {"PID": "0xA3A4", "V": "12220", "AR": "0", "T": "22.5"}
    assert metric_values(block) == {"battery_voltage_volts": 12.22, "alarm_reason": [],
                                    "battery_temperature_celsius": 22.5}


@pytest.mark.parametrize(("aux_value", "text", "celsius"), [
    (29565, "22.5", 22.5), (29566, "22.51", 22.51), (27315, "0", 0.0), (27265, "-0.5", -0.5), (29815, "25", 25.0),
])
def test_temperatures_keep_the_adverts_resolution(aux_value: int, text: str, celsius: float) -> None:
    block = AdvertDecoder(KEY).decode(sensible("battery_monitor", aux_mode=2, aux_value=aux_value)).block
    assert block["T"] == text
    assert metric_values(block)["battery_temperature_celsius"] == celsius


def test_several_alarms_at_once_each_named() -> None:
    """AR is a bitmask: low voltage and low SOC at once (AR 5), which victron-ble refuses whole."""
    block = AdvertDecoder(KEY).decode(sensible("battery_monitor", alarm_reason=5)).block
    assert block["AR"] == "5"
    values = metric_values(block)
    assert values["alarm_reason"] == ["Low voltage", "Low SOC"]
    assert values["battery_voltage_volts"] == 12.87
    inverter = AdvertDecoder(KEY).decode(sensible("inverter", alarm_reason=0x101)).block
    assert metric_values(inverter)["alarm_reason"] == ["Low voltage", "Overload"]


def test_an_unknown_code_is_named_unknown_and_the_rest_decodes() -> None:
    values = metric_values(AdvertDecoder(KEY).decode(sensible("solar_charger", charge_state=99)).block)
    assert values["charge_state"] == "unknown (99)"
    assert values["battery_voltage_volts"] == 13.42
    assert values["panel_power_watts"] == 112.0
    error = metric_values(AdvertDecoder(KEY).decode(sensible("dcdc_converter", charger_error=222)).block)
    assert error["charger_error_code"] == "unknown (222)"
    assert error["dc_input_voltage_volts"] == 13.85


def test_a_dcdc_off_reason_combination_decodes() -> None:
    block = AdvertDecoder(KEY).decode(sensible("dcdc_converter", device_state=0, off_reason=0x81)).block
    assert block["OR"] == "0x00000081"
    assert metric_values(block)["off_reason"] == ["No input power", "Engine shutdown detection"]


def test_values_by_metric_name_in_metric_units() -> None:
    block = AdvertDecoder(KEY).decode(bytes.fromhex(SMARTSHUNT_HEX)).block
    assert metric_values(block) == {
        "battery_voltage_volts": 12.87, "battery_current_amperes": -3.125,
        "consumed_charge_coulombs": pytest.approx(-41200 * 3.6), "state_of_charge_ratio": 0.793,
        "time_to_go_seconds": 754 * 60.0, "alarm_reason": [], "starter_voltage_volts": 12.62,
    }
    charger = {"CS": "4", "ERR": "0", "H20": "37", "OR": "0x00000001", "AR": "5"}
    assert metric_values(charger) == {"charge_state": "Absorption", "charger_error_code": "No error",
                                      "yield_today_joules": 37 * 36_000.0, "off_reason": ["No input power"],
                                      "alarm_reason": ["Low voltage", "Low SOC"]}


def test_not_available_fields_are_absent_never_zero() -> None:
    # Every field at its "not available" value, but the codes victron-ble cannot leave out.
    reading = AdvertDecoder(KEY).decode(advert(0xA042, 0x01, {}))
    assert reading.block == {"PID": "0xA042"}
    reading = AdvertDecoder(KEY).decode(advert(0xA389, 0x02, {"alarm_reason": 0, "aux_mode": 3}))
    assert reading.block == {"PID": "0xA389", "AR": "0"}
    assert metric_values(reading.block) == {"alarm_reason": []}


def test_a_wrong_key_is_told_by_the_key_check_byte_and_gives_no_values() -> None:
    data = advert(0xA042, 0x01, {"battery_voltage": 1342})
    with pytest.raises(KeyMismatchError, match=r"does not match this device.*0x8F.*0x11"):
        AdvertDecoder(OTHER_KEY).decode(data)


def test_a_truncated_advert() -> None:
    data = advert(0xA042, 0x01, {"battery_voltage": 1342})
    with pytest.raises(TruncatedAdvertError, match="solar_charger record is 12 bytes, this one 11"):
        AdvertDecoder(KEY).decode(data[:-1])
    with pytest.raises(TruncatedAdvertError, match="no record after the 8-byte header"):
        AdvertDecoder(KEY).decode(data[:8])


def test_an_unknown_record_type() -> None:
    record = bytes(12)
    for record_type, name in ((0x06, "inverter_rs"), (0x0E, "unknown_0x0e")):
        with pytest.raises(UnknownRecordTypeError, match=f"0x{record_type:02X} \\({name}\\) is not supported"):
            AdvertDecoder(KEY).decode(build_advert(0xA042, record_type, record, KEY, 1))


def test_a_product_id_missing_from_our_table_still_decodes() -> None:
    reading = AdvertDecoder(KEY).decode(advert(0xBEEF, 0x01, {"battery_voltage": 1342}))
    assert reading.product == "Unknown product 0xBEEF"
    assert reading.block == {"PID": "0xBEEF", "V": "13420"}


def test_not_an_instant_readout_advert() -> None:
    with pytest.raises(NotInstantReadoutError, match="starts with 0x11"):
        parse_container(b"\x11" + bytes(20))
    with pytest.raises(NotInstantReadoutError, match="after the company id"):
        parse_container(b"\xe1\x02" + bytes.fromhex(SMARTSHUNT_HEX))
    with pytest.raises(NotInstantReadoutError, match="nothing"):
        parse_container(b"")


def test_record_lengths_match_the_library_layouts() -> None:
    """Shorter than `record_bytes`, victron-ble runs out of bits; at `record_bytes` it has all it reads."""
    for parser_class in (SolarCharger, BatteryMonitor, BatterySense, Inverter, DcDcConverter, AcCharger):
        length = KINDS[parser_class].record_bytes
        parser = parser_class(KEY.hex())
        with pytest.raises(IndexError):
            parser.parse_decrypted(bytes(length - 1))
        parser.parse_decrypted(bytes(length))


def test_encoder_layouts_have_the_same_lengths() -> None:
    lengths = {0x01: 12, 0x02: 15, 0x03: 11, 0x04: 10, 0x08: 13}
    assert {t: len(pack_record(t, {})) for t in LAYOUTS} == lengths


def test_a_repeated_advert_is_not_decrypted_again() -> None:
    decoder = AdvertDecoder(KEY)
    data = bytes.fromhex(SMARTSHUNT_HEX)
    first = decoder.decode(data)
    assert decoder.decode(bytes(bytearray(data))) is first  # an equal advert, not the same object
    assert decoder.decode(advert(0xA389, 0x02, {**SMARTSHUNT_VALUES, "battery_voltage": 1288})).block["V"] == "12880"


@pytest.mark.parametrize(("text", "key"), [
    ("8f3a9c55d2e14b07a6c3f0e2b1d49a7c", KEY),
    ("8F3A9C55D2E14B07A6C3F0E2B1D49A7C\n", KEY),
])
def test_parse_key(text: str, key: bytes) -> None:
    assert parse_key(text) == key


@pytest.mark.parametrize("text", ["", "8f3a9c55", "8f3a9c55d2e14b07a6c3f0e2b1d49a7c00",
                                  "zz3a9c55d2e14b07a6c3f0e2b1d49a7c", "8f3a9c55 d2e14b07a6c3f0e2b1d49a7c"])
def test_parse_key_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="32 hexadecimal digits"):
        parse_key(text)


def test_parse_address() -> None:
    assert parse_address(" e1:2b:3c:4d:5e:6f ") == "E1:2B:3C:4D:5E:6F"
    for text in ("E1:2B:3C:4D:5E", "E1-2B-3C-4D-5E-6F", "E12B3C4D5E6F", "G1:2B:3C:4D:5E:6F"):
        with pytest.raises(ValueError, match="not a Bluetooth address"):
            parse_address(text)


def _code(value: object) -> object:
    return getattr(value, "value", value)


# victron-ble's key → (our layout field, the factor from our raw unit to victron-ble's), per parser.
LIBRARY_FIELDS: dict[type, tuple[int, dict[str, tuple[str, float]]]] = {
    SolarCharger: (0x01, {"charge_state": ("charge_state", 1), "charger_error": ("charger_error", 1),
                          "battery_voltage": ("battery_voltage", 0.01),
                          "battery_charging_current": ("battery_current", 0.1), "yield_today": ("yield_today", 10),
                          "solar_power": ("pv_power", 1), "external_device_load": ("load_current", 0.1)}),
    BatteryMonitor: (0x02, {"remaining_mins": ("time_to_go", 1), "voltage": ("battery_voltage", 0.01),
                            "alarm": ("alarm_reason", 1), "aux_mode": ("aux_mode", 1),
                            "current": ("battery_current", 0.001), "consumed_ah": ("consumed_ah", -0.1),
                            "soc": ("state_of_charge", 0.1)}),
    Inverter: (0x03, {"device_state": ("device_state", 1), "alarm": ("alarm_reason", 1),
                      "battery_voltage": ("battery_voltage", 0.01), "ac_apparent_power": ("ac_apparent_power", 1),
                      "ac_voltage": ("ac_voltage", 0.01), "ac_current": ("ac_current", 0.1)}),
    DcDcConverter: (0x04, {"device_state": ("device_state", 1), "charger_error": ("charger_error", 1),
                           "input_voltage": ("input_voltage", 0.01), "output_voltage": ("output_voltage", 0.01),
                           "off_reason": ("off_reason", 1)}),
    AcCharger: (0x08, {"charge_state": ("charge_state", 1), "charger_error": ("charger_error", 1),
                       **{f"output_voltage{n}": (f"output_voltage{n}", 0.01) for n in (1, 2, 3)},
                       **{f"output_current{n}": (f"output_current{n}", 0.1) for n in (1, 2, 3)},
                       "ac_current": ("ac_current", 0.1)}),
}
# Codes victron-ble's enums know, written over the random bytes so that its parser accepts the record.
KNOWN_CODES: dict[int, dict[int, int]] = {0x01: {0: 4, 1: 0}, 0x02: {4: 0, 5: 0}, 0x03: {0: 9, 1: 0, 2: 0},
                                          0x04: {0: 3, 1: 0, 6: 0x80, 7: 0, 8: 0, 9: 0}, 0x08: {0: 5, 1: 0}}


@pytest.mark.parametrize("parser_class", list(LIBRARY_FIELDS), ids=lambda c: c.__name__)
def test_our_layouts_read_what_victron_bles_parsers_read(parser_class: type) -> None:
    """Random records, read by our layout table and by victron-ble's parser: every field agrees (but where
    victron-ble misses "not available": the 22-bit current's 0x1FFFFF and 0x3FFFFF, read as 2097.151 A and -1 mA)."""
    record_type, fields = LIBRARY_FIELDS[parser_class]
    generator = random.Random(record_type)
    for _ in range(300):
        record = bytearray(generator.randbytes(record_bytes(record_type)))
        for index, code in KNOWN_CODES[record_type].items():
            record[index] = code
        library = parser_class(KEY.hex()).parse_decrypted(bytes(record))
        ours = unpack(record_type, bytes(record)).values
        for library_key, (field, factor) in fields.items():
            theirs, mine = _code(library[library_key]), ours[field]
            if mine is None:
                assert theirs is None or (library_key, theirs) in (("current", 2097.151), ("current", -0.001)), (
                    library_key, record.hex())
            else:
                assert theirs == pytest.approx(mine * factor), (library_key, record.hex())
