"""fields: the label table against reference §4, and decode / format_firmware / format_decoded."""

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvmonit_exporter.vedirect import enums
from pvmonit_exporter.vedirect.fields import (
    FIELDS,
    Kind,
    decode,
    format_decoded,
    format_firmware,
)

# Reference §4a (doc 3.22 Table I) and §4b, written out here independently of fields.py:
# label → (kind, SI unit, factor from the raw integer to that unit).
MILLIVOLT = (Kind.NUMBER, "V", 0.001)
MILLIAMPERE = (Kind.NUMBER, "A", 0.001)
MILLIAMPERE_HOUR = (Kind.NUMBER, "C", 3.6)  # 1 mAh = 3.6 C
HUNDREDTH_KWH = (Kind.NUMBER, "J", 36_000.0)  # 0.01 kWh = 36 kJ
WATT = (Kind.NUMBER, "W", 1.0)
PER_MILLE = (Kind.NUMBER, "", 0.001)
COUNT = (Kind.NUMBER, "", 1.0)
ON_OFF = (Kind.ON_OFF, "", 1.0)
ENUM = (Kind.ENUM, "", 1.0)
TEXT = (Kind.TEXT, "", 1.0)

REFERENCE_FIELDS = {
    # §4a
    "V": MILLIVOLT,
    "VS": MILLIVOLT,
    "VM": MILLIVOLT,
    "DM": PER_MILLE,
    "VPV": MILLIVOLT,
    "PPV": WATT,
    "I": MILLIAMPERE,
    "IL": MILLIAMPERE,
    "LOAD": ON_OFF,
    "T": (Kind.NUMBER, "°C", 1.0),
    "P": WATT,
    "CE": MILLIAMPERE_HOUR,
    "SOC": PER_MILLE,
    "TTG": (Kind.NUMBER, "s", 60.0),
    "Alarm": ON_OFF,
    "Relay": ON_OFF,
    "AR": (Kind.DEC_BITMASK, "", 1.0),
    "H1": MILLIAMPERE_HOUR,
    "H2": MILLIAMPERE_HOUR,
    "H3": MILLIAMPERE_HOUR,
    "H4": COUNT,
    "H5": COUNT,
    "H6": MILLIAMPERE_HOUR,
    "H7": MILLIVOLT,
    "H8": MILLIVOLT,
    "H9": (Kind.NUMBER, "s", 1.0),
    "H10": COUNT,
    "H11": COUNT,
    "H12": COUNT,
    "H13": COUNT,
    "H14": COUNT,
    "H15": MILLIVOLT,
    "H16": MILLIVOLT,
    "H17": HUNDREDTH_KWH,
    "H18": HUNDREDTH_KWH,
    "H19": HUNDREDTH_KWH,
    "H20": HUNDREDTH_KWH,
    "H21": WATT,
    "H22": HUNDREDTH_KWH,
    "H23": WATT,
    "ERR": ENUM,
    "CS": ENUM,
    "BMV": TEXT,
    "FW": TEXT,
    "PID": TEXT,
    "SER#": TEXT,
    "HSDS": COUNT,
    "MODE": ENUM,
    "AC_OUT_V": (Kind.NUMBER, "V", 0.01),
    "AC_OUT_I": (Kind.NUMBER, "A", 0.1),
    "WARN": (Kind.DEC_BITMASK, "", 1.0),
    # §4b
    "V2": MILLIVOLT,
    "V3": MILLIVOLT,
    "I2": MILLIAMPERE,
    "I3": MILLIAMPERE,
    "OR": (Kind.HEX_BITMASK, "", 1.0),
    "MPPT": ENUM,
    "FWE": TEXT,
    "AC_OUT_S": (Kind.NUMBER, "VA", 1.0),
    "MON": ENUM,
    "DC_IN_V": (Kind.NUMBER, "V", 0.01),
    "DC_IN_I": (Kind.NUMBER, "A", 0.1),
    "DC_IN_P": WATT,
    "HC#": TEXT,
    "CAP_BLE": (Kind.HEX_BITMASK, "", 1.0),
}

NUMBERS = sorted(label for label, (kind, _, _) in REFERENCE_FIELDS.items() if kind is Kind.NUMBER)


def test_every_reference_label_is_in_the_table_and_nothing_else() -> None:
    assert set(FIELDS) == set(REFERENCE_FIELDS)


@pytest.mark.parametrize("label", REFERENCE_FIELDS)
def test_kind_unit_and_scale_match_the_reference(label: str) -> None:
    kind, unit, scale = REFERENCE_FIELDS[label]
    spec = FIELDS[label]
    assert spec.label == label
    assert spec.kind is kind
    if kind is Kind.NUMBER:
        assert spec.unit == unit
        assert spec.scale == pytest.approx(scale)
        assert spec.metric is not None
        assert decode(label, "1000").value == pytest.approx(1000 * scale)
        assert decode(label, "-25").value == pytest.approx(-25 * scale)


@pytest.mark.parametrize(
    ("label", "names"),
    [
        ("CS", enums.CHARGE_STATES),
        ("ERR", enums.CHARGER_ERRORS),
        ("MPPT", enums.TRACKER_MODES),
        ("MODE", enums.DEVICE_MODES),
        ("MON", enums.MONITOR_MODES),
        ("AR", enums.ALARM_REASONS),
        ("WARN", enums.ALARM_REASONS),  # doc 3.22: same bits as AR
        ("OR", enums.OFF_REASONS),
    ],
)
def test_enumerations_and_bitmasks_use_their_table(label: str, names: object) -> None:
    assert FIELDS[label].names is names


@pytest.mark.parametrize("label", [*REFERENCE_FIELDS, "UNKNOWN"])
@pytest.mark.parametrize("raw", ["---", " --- "])
def test_not_available_is_none_never_zero(label: str, raw: str) -> None:
    item = decode(label, raw)
    assert item.value is None
    assert item.raw == raw
    assert format_decoded(item) == ("n/a" if item.known else raw)


def test_time_to_go_minus_one_is_infinite() -> None:
    item = decode("TTG", "-1")
    assert item.value == math.inf
    assert format_decoded(item) == "infinite"
    assert decode("TTG", "942").value == pytest.approx(942 * 60)
    assert decode("V", "-1").value == pytest.approx(-0.001)  # only TTG has the special meaning


@pytest.mark.parametrize("label", ["LOAD", "Relay", "Alarm"])
@pytest.mark.parametrize(
    ("raw", "value", "text"),
    [("ON", 1.0, "ON"), ("On", 1.0, "ON"), ("OFF", 0.0, "OFF"), ("Off", 0.0, "OFF"), ("on", 1.0, "ON")],
)
def test_on_off(label: str, raw: str, value: float, text: str) -> None:
    item = decode(label, raw)
    assert (item.value, item.text) == (value, text)
    assert format_decoded(item) == text


@pytest.mark.parametrize("raw", ["", "1", "YES", "ONN", "0"])
def test_on_off_garbage_is_none(raw: str) -> None:
    assert decode("Relay", raw).value is None


def test_off_reason_hex_bitmask() -> None:
    item = decode("OR", "0x00000005")
    assert item.value == 5
    assert list(item.flags) == ["No input power", "Switched off (device mode register)"]
    assert decode("OR", "0x00000000").flags == ()
    assert format_decoded(decode("OR", "0x00000000")) == "None"
    assert decode("OR", "0x00000200").flags == ("Battery temperature",)


def test_unknown_bits_are_named_by_value() -> None:
    assert decode("OR", "0x00000401").flags == ("No input power", "bit 0x400")
    assert decode("AR", "16385").flags == ("Low voltage", "bit 0x4000")


def test_alarm_reason_decimal_bitmask() -> None:
    item = decode("AR", "5")
    assert list(item.flags) == ["Low voltage", "Low SOC"]
    assert format_decoded(item) == "Low voltage, Low SOC"
    assert decode("AR", "0").flags == ()
    assert decode("WARN", "256").flags == ("Overload",)


def test_unknown_label_is_kept_raw() -> None:
    item = decode("XYZ#", "12 Some text")
    assert item.known is False
    assert item.raw == item.text == "12 Some text"
    assert item.value is None
    assert format_decoded(item) == "12 Some text"
    assert decode("V", "12530").known is True


def test_enumeration_words() -> None:
    assert decode("CS", "3").text == "Bulk"
    assert decode("CS", "3").value == 3.0
    assert decode("CS", "99").text == "unknown (99)"
    assert decode("ERR", "0").text == "No error"
    assert decode("MPPT", "2").text == "MPPT tracker active"
    assert decode("MON", "-9").text == "Solar charger"


def test_text_fields_are_kept() -> None:
    item = decode("BMV", "SmartShunt 500A/50mV")
    assert (item.value, item.text) == (None, "SmartShunt 500A/50mV")
    assert decode("PID", "0xA042").text == "0xA042"


@pytest.mark.parametrize("raw", ["12.5", "", "abc", "1e3", "0x10", "12 530", "--", "-", "+-1"])
@pytest.mark.parametrize("label", ["V", "CS", "AR", "TTG"])
def test_malformed_numbers_are_none(label: str, raw: str) -> None:
    item = decode(label, raw)
    assert item.value is None
    assert item.raw == raw


@pytest.mark.parametrize("raw", ["zz", "", "0x", "0xG1", "5.0"])
def test_malformed_hex_bitmask_is_none(raw: str) -> None:
    assert decode("OR", raw).value is None


def test_digit_group_underscores_are_not_a_number() -> None:
    """Python's int() accepts "1_000"; no device sends it, so it is as malformed as "1,000"."""
    assert decode("V", "1,000").value is None
    assert decode("V", "1_000").value is None


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted([*REFERENCE_FIELDS, "UNKNOWN"])),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=33)
    | st.integers(-(10**12), 10**12).map(str)
    | st.from_regex(r"[ +-]?[0-9_ xA-F.e]{1,12}", fullmatch=True),
)
def test_decode_never_raises(label: str, raw: str) -> None:
    """Any printable ASCII value (all a checksum-valid block can carry): a result, never an exception;
    a NUMBER has a value exactly when it is sent as an optionally signed decimal integer."""
    item = decode(label, raw)
    assert item.raw == raw
    assert isinstance(format_decoded(item), str)
    if label in NUMBERS:
        assert (item.value is not None) == bool(re.fullmatch(r"[+-]?[0-9]+", raw))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("123", "1.23"),
        ("139", "1.39"),
        ("0308", "3.08"),
        ("0419", "4.19"),
        ("C208", "2.08 rc C"),
        ("316FF", "3.16"),
        ("31605", "3.16 beta 05"),
        ("0342FF", "3.42"),
        ("031605", "3.16 beta 05"),
        ("", ""),
        ("x", "x"),
    ],
)
def test_format_firmware(raw: str, expected: str) -> None:
    assert format_firmware(raw) == expected


@pytest.mark.parametrize(
    ("label", "raw", "expected"),
    [
        ("V", "26180", "26.18 V"),
        ("V", "12530", "12.53 V"),
        ("I", "-7625", "-7.625 A"),
        ("CS", "3", "Bulk"),
        ("PPV", "8", "8 W"),
        ("T", "25", "25 °C"),
        ("SOC", "839", "83.9 %"),
        ("SOC", "1000", "100.0 %"),
        ("DM", "-12", "-1.2 %"),
        ("H19", "8272", "82.72 kWh"),
        ("H17", "6843", "68.43 kWh"),
        ("H20", "0", "0.00 kWh"),
        ("CE", "-65473", "-65.5 Ah"),
        ("H6", "-5526294", "-5526.3 Ah"),
        ("TTG", "1234", "20 h 34 min"),
        ("TTG", "45", "45 min"),
        ("TTG", "-1", "infinite"),
        ("H9", "368003", "102 h 13 min"),
        ("H9", "42", "42 s"),
        ("MPPT", "2", "MPPT tracker active"),
        ("H4", "3", "3"),
        ("LOAD", "ON", "ON"),
        ("V", "---", "n/a"),
        ("PID", "0xA042", "0xA042"),
        ("ERR", "2", "Battery voltage too high"),
    ],
)
def test_format_decoded(label: str, raw: str, expected: str) -> None:
    assert format_decoded(decode(label, raw)) == expected


@pytest.mark.parametrize(
    ("raw", "flags"),
    [
        ("0x00000003", ("BLE supports switching off", "BLE switching off is permanent")),
        ("2", ("BLE switching off is permanent",)),
        ("0x0", ()),
    ],
)
def test_ble_capabilities(raw: str, flags: tuple[str, ...]) -> None:
    item = decode("CAP_BLE", raw)
    assert item.known
    assert item.flags == flags
    assert FIELDS["CAP_BLE"].metric is None  # a property of the device, not a time series
