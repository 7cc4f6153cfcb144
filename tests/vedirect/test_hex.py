"""HEX frames, the register table and the history records, against vedirect-hex.md (§3 worked examples,
§5 registers, §6 records). The expected tables are written out here independently of the code."""

import struct

import pytest

from pvmonit_exporter.vedirect import hex as vehex
from pvmonit_exporter.vedirect.device import DeviceReadings
from pvmonit_exporter.vedirect.framing import MAX_KEPT_HEX, Decoder, encode_block, encode_hex_message
from pvmonit_exporter.vedirect.history import (
    HISTORY_DAYS,
    HistoryDay,
    HistoryTotal,
    encode_day,
    encode_total,
)
from pvmonit_exporter.vedirect.registers import BY_NAME, REGISTERS, Register, Type, decode_value, lookup


def reply(message: bytes) -> vehex.Reply | None:
    assert message[:1] == b":"
    return vehex.parse_message(message[1:].rstrip(b"\n"))


# ---------------------------------------------------------------------------------------------------------
# §3 worked examples


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        (vehex.ping(), b":154\n"),
        (vehex.get(0xEDF0), b":7F0ED0071\n"),
        (vehex.get(0x1000), b":70010003E\n"),
        (vehex.get(0x1050), b":7501000EE\n"),
        (vehex.get(0xEDD5), b":7D5ED008C\n"),
    ],
)
def test_requests_are_encoded_like_the_worked_examples(request_bytes: bytes, expected: bytes) -> None:
    assert request_bytes == expected


def test_ping_reply() -> None:
    answer = reply(b":51641F9\n")
    assert answer == vehex.PingReply(0x4116)
    assert isinstance(answer, vehex.PingReply)
    assert answer.firmware == "1.16"


@pytest.mark.parametrize(
    ("message", "register", "value", "unit"),
    [
        (b":7F0ED009600DB\n", 0xEDF0, 15.0, "A"),
        (b":70010007800C6\n", 0x1000, 120, "Ah"),
        (b":ADBED00CD0AAC\n", 0xEDDB, 27.65, "°C"),
        (b":A0102000345\n", 0x0201, 3, ""),
    ],
)
def test_register_replies(message: bytes, register: int, value: float, unit: str) -> None:
    answer = reply(message)
    assert isinstance(answer, vehex.RegisterReply)
    assert (answer.register, answer.flags, answer.error) == (register, 0, None)
    spec = REGISTERS[register]
    assert decode_value(spec, answer.data) == (value, None)
    assert spec.unit == unit


def test_set_reply_is_decoded() -> None:
    answer = reply(b":8ABED0004B1\n")
    assert answer == vehex.RegisterReply(vehex.Response.SET, 0xEDAB, 0, b"\x04")


def test_async_message_from_an_issue_log() -> None:
    assert reply(b":A0202000200000045\n") == vehex.RegisterReply(vehex.Response.ASYNC, 0x0202, 0, b"\x02\x00\x00\x00")


def test_frame_error_reply() -> None:
    answer = reply(b":4AAAAFD\n")
    assert answer == vehex.RefusedReply(vehex.Response.FRAME_ERROR, b"\xaa\xaa")
    assert isinstance(answer, vehex.RefusedReply)
    assert answer.error == "frame error"


def test_done_reply_carries_a_number() -> None:
    answer = vehex.parse_message(encode_hex_message(0x1, b"\x5f\xa0")[1:-1])
    assert isinstance(answer, vehex.DoneReply)
    assert answer.number == 0xA05F


@pytest.mark.parametrize(("flags", "error"), [(0x01, "unknown id"), (0x02, "not supported"),
                                              (0x04, "parameter error"), (0x06, "flags 0x06")])
def test_response_flags_are_distinct_results(flags: int, error: str) -> None:
    message = encode_hex_message(0x7, bytes([0xF0, 0xED, flags]))
    answer = reply(message)
    assert isinstance(answer, vehex.RegisterReply)
    assert answer.error == error


@pytest.mark.parametrize(
    "body",
    [b"7F0ED009600DC", b"7F0ED009600D", b"", b"5", b"7F0ED55", b"9AA4C", b"51641XX"],
    ids=["bad checksum", "odd length", "empty", "command only", "get without flags", "command 9", "not hex"],
)
def test_invalid_messages_are_none(body: bytes) -> None:
    assert vehex.parse_message(body) is None


def test_lowercase_is_accepted() -> None:
    assert reply(b":7f0ed009600db\n") == reply(b":7F0ED009600DB\n")


# ---------------------------------------------------------------------------------------------------------
# §5 the register table, field by field

ALL = {"mppt", "bmv", "inverter", "charger", "unknown"}
M, B = {"mppt"}, {"bmv"}
REFERENCE = {  # id: (type, scale, unit, kinds)
    0x0100: (Type.PRODUCT_ID, 1.0, "", ALL),
    0x0102: (Type.APP_VERSION, 1.0, "", ALL),
    0x010A: (Type.STRING, 1.0, "", ALL),
    0x010B: (Type.STRING, 1.0, "", ALL),
    0x0140: (Type.UN32, 1.0, "", ALL),
    0x0200: (Type.UN8, 1.0, "", ALL),
    0x0201: (Type.UN8, 1.0, "", ALL),
    0x0205: (Type.UN8, 1.0, "", ALL),
    0x0207: (Type.UN32, 1.0, "", ALL),
    0xEDBB: (Type.UN16, 0.01, "V", M),
    0xEDBD: (Type.UN16, 0.1, "A", M),
    0xEDBC: (Type.UN32, 0.01, "W", M),
    0xEDD5: (Type.UN16, 0.01, "V", M),
    0xEDD7: (Type.SN16, 0.1, "A", M),
    0xEDD3: (Type.UN16_OR_32, 0.01, "kWh", M),
    0xEDD1: (Type.UN16_OR_32, 0.01, "kWh", M),
    0xEDD2: (Type.UN16_OR_32, 1.0, "W", M),
    0xEDD0: (Type.UN16_OR_32, 1.0, "W", M),
    0xEDDC: (Type.UN32, 0.01, "kWh", M),
    0xEDDD: (Type.UN32, 0.01, "kWh", M),
    0xEDDA: (Type.UN8, 1.0, "", M),
    0xEDDB: (Type.SN16, 0.01, "°C", M),
    0xEDEC: (Type.UN16, 0.01, "K", M),
    0xEDF0: (Type.UN16, 0.1, "A", M),
    0xEDF1: (Type.UN8, 1.0, "", M),
    0xEDF7: (Type.UN16, 0.01, "V", M),
    0xEDF6: (Type.UN16, 0.01, "V", M),
    0xEDF4: (Type.UN16, 0.01, "V", M),
    0xEDF2: (Type.SN16, 0.01, "mV/K", M),
    0xEDEF: (Type.UN8, 1.0, "V", M),
    0xEDA8: (Type.UN8, 1.0, "", M),
    0xEDAB: (Type.UN8, 1.0, "", M),  # load output control (load-control.md: velib, un8 mode)
    0xEDAD: (Type.UN16, 0.1, "A", M),
    0x2031: (Type.UN16, 1.0, "min", M),
    0xED8D: (Type.SN16, 0.01, "V", B),
    0xED8F: (Type.SN16, 0.1, "A", B),
    0xED8E: (Type.SN16, 1.0, "W", B),
    0xED7D: (Type.SN16, 0.01, "V", B),
    0xED8C: (Type.SN32, 0.001, "A", B),
    0x0FFF: (Type.UN16, 0.01, "%", B),
    0x0FFE: (Type.UN16, 1.0, "min", B),
    0x1000: (Type.UN16, 1.0, "Ah", B),
    0x0382: (Type.UN16, 0.01, "V", B),
    0x0383: (Type.SN16, 0.1, "%", B),
    0x104F: (Type.HISTORY_TOTAL, 1.0, "", M),
    **{0x1050 + day: (Type.HISTORY_DAY, 1.0, "", M) for day in range(31)},
}


def test_table_has_every_reference_register_and_nothing_else() -> None:
    assert set(REGISTERS) == set(REFERENCE)


@pytest.mark.parametrize("register_id", sorted(REFERENCE), ids=lambda r: f"0x{r:04X}")
def test_register_matches_the_reference(register_id: int) -> None:
    spec = REGISTERS[register_id]
    assert (spec.type, spec.scale, spec.unit, set(spec.kinds)) == REFERENCE[register_id]
    assert spec.id == register_id
    assert BY_NAME[spec.name] is spec


@pytest.mark.parametrize(
    ("register_id", "metric", "si_value_of_raw_100"),
    [
        (0xEDDB, "charger_temperature_celsius", 1.0),
        (0xEDF7, "battery_absorption_voltage_volts", 1.0),
        (0xEDF6, "battery_float_voltage_volts", 1.0),
        (0xEDF0, "battery_max_charge_current_amperes", 10.0),
        (0xEDDD, "system_yield_joules", 3_600_000.0),
        (0x1000, "battery_capacity_coulombs", 360_000.0),
    ],
)
def test_contract_metrics_and_their_si_scale(register_id: int, metric: str, si_value_of_raw_100: float) -> None:
    spec = REGISTERS[register_id]
    assert spec.metric == metric
    assert 100 * spec.si_scale == pytest.approx(si_value_of_raw_100)


def test_only_the_contract_registers_are_metrics() -> None:
    assert {spec.id for spec in REGISTERS.values() if spec.metric} == {0xEDDB, 0xEDF7, 0xEDF6, 0xEDF0, 0xEDDD, 0x1000}


@pytest.mark.parametrize(
    ("text", "register_id"),
    [("battery_max_current", 0xEDF0), ("0xEDF0", 0xEDF0), ("0xedf0", 0xEDF0), ("EDF0", 0xEDF0),
     ("history_day_30", 0x106E), ("0x1234", 0x1234)],
)
def test_lookup_by_name_or_hex_id(text: str, register_id: int) -> None:
    found = lookup(text)
    assert found is not None
    assert found.id == register_id


@pytest.mark.parametrize("text", ["", "nonsense", "0x12345", "0xZZ"])
def test_lookup_rejects_what_is_neither(text: str) -> None:
    assert lookup(text) is None


def test_register_not_in_the_table_is_shown_raw() -> None:
    spec = lookup("0x1234")
    assert isinstance(spec, Register)
    assert decode_value(spec, b"\x01\xab") == ("01AB", None)


@pytest.mark.parametrize(
    ("register_id", "data", "expected"),
    [
        (0xEDDB, b"\xff\x7f", (None, None)),  # sn16: 0x7FFF is not available, never 0
        (0xEDDB, b"\xff\xff", (-0.01, None)),  # sn16: all bits set is -1 unit
        (0xEDBB, b"\xff\xff", (None, None)),  # un16: all bits set is not available
        (0xEDDB, b"\x38\xff", (-2.0, None)),  # sn16
        (0xEDF1, b"\xff", (255, None)),  # battery type 0xFF = user defined, a real value
        (0xEDD3, b"\x10\x27", (100.0, None)),  # un16 on VE.Direct
        (0xEDD3, b"\x10\x27\x00\x00", (100.0, None)),  # un32 on VE.Can
        (0xEDF0, b"\x96", (None, "malformed")),
        (0x010A, b"HQ1328Y6TF6\x00\x00", ("HQ1328Y6TF6", None)),
        (0x0100, b"\x00\x5f\xa0\xff", ("0xA05F", None)),  # un8, then the id little-endian (recorded)
        (0x0102, b"\x00\xff\x16\x01", (0x0116FF, None)),  # un8, then un24
        (0x0102, b"\xff\x16\x01", (None, "malformed")),
    ],
)
def test_decode_value(register_id: int, data: bytes, expected: tuple[object, str | None]) -> None:
    assert decode_value(REGISTERS[register_id], data) == expected


# ---------------------------------------------------------------------------------------------------------
# §6 history records, field by field

DAY = struct.pack(
    "<BIIHHB4BHHHIHHH",
    0,  # record version
    123,  # yield 1.23 kWh
    40,  # consumed 0.40 kWh
    1438,  # battery max 14.38 V
    1261,  # battery min 12.61 V
    0,  # error database
    0, 2, 17, 0,  # errors
    120,  # bulk min
    60,  # absorption min
    240,  # float min
    342,  # max power W
    213,  # max battery current 21.3 A
    4120,  # max PV 41.20 V
    211,  # day sequence
)


def test_day_record_layout_is_34_bytes() -> None:
    assert len(DAY) == 34


def test_day_record_field_by_field() -> None:
    day = HistoryDay.decode(0, DAY)
    assert day is not None
    assert day.as_json() == {
        "days_ago": 0, "yield_kwh": 1.23, "consumed_kwh": 0.4, "battery_voltage_max_v": 14.38,
        "battery_voltage_min_v": 12.61, "max_power_w": 342, "max_battery_current_a": 21.3,
        "max_pv_voltage_v": 41.2, "bulk_min": 120, "absorption_min": 60, "float_min": 240,
        "errors": [0, 2, 17, 0], "day_sequence": 211,
    }
    assert day.error_database == 0


def test_day_record_all_bits_set_is_not_available() -> None:
    day = HistoryDay.decode(3, b"\x00" + b"\xff" * 33)
    assert day is not None
    document = day.as_json()
    assert document.pop("days_ago") == 3
    assert document.pop("errors") == [None] * 4
    assert set(document.values()) == {None}


@pytest.mark.parametrize("offset", range(1, 34))
def test_one_unavailable_field_leaves_the_others(offset: int) -> None:
    """Each field reads its own bytes: one field set to all ones touches no other."""
    widths = [(1, 4), (5, 4), (9, 2), (11, 2), (13, 1), (14, 1), (15, 1), (16, 1), (17, 1), (18, 2), (20, 2),
              (22, 2), (24, 4), (28, 2), (30, 2), (32, 2)]
    start, width = next((s, w) for s, w in widths if s <= offset < s + w)
    damaged = DAY[:start] + b"\xff" * width + DAY[start + width :]
    good, bad = HistoryDay.decode(0, DAY), HistoryDay.decode(0, damaged)
    assert good is not None
    assert bad is not None
    changed = {key for key, value in bad.as_json().items() if value != good.as_json()[key]}
    if start == 13:  # the error database is not in the JSON form
        assert changed == set()
        assert bad.error_database is None
    else:
        assert len(changed) == 1


def test_short_day_record_is_rejected_and_longer_one_accepted() -> None:
    assert HistoryDay.decode(0, DAY[:33]) is None
    assert HistoryDay.decode(0, DAY + b"\x00\x00") == HistoryDay.decode(0, DAY)
    assert decode_value(REGISTERS[0x1050], DAY[:20]) == (None, "malformed")


def test_encode_day_is_the_inverse_of_decode() -> None:
    day = HistoryDay.decode(0, DAY)
    assert day is not None
    assert encode_day({**day.as_json(), "error_database": 0}) == DAY
    empty = b"\x00" + b"\xff" * 13 + bytes(4) + b"\xff" * 16  # no errors given: four zero codes
    assert HistoryDay.decode(0, encode_day({})) == HistoryDay.decode(0, empty)


def test_total_record() -> None:
    raw = struct.pack("<BB4BIIHHB", 0, 0, 0, 0, 0, 0, 827200, 1234500, 9412, 1490, 30)
    total = HistoryTotal.decode(raw)
    assert total == HistoryTotal(0, (0, 0, 0, 0), 8272.0, 12345.0, 94.12, 14.9, 30)
    assert encode_total(8272.0, 12345.0, 94.12, 14.9, 30) == raw
    assert HistoryTotal.decode(raw[:-1]) is None


def test_history_day_registers() -> None:
    assert HISTORY_DAYS == 31
    assert REGISTERS[0x106E].name == "history_day_30"
    value, error = decode_value(REGISTERS[0x1052], DAY)
    assert error is None
    assert isinstance(value, HistoryDay)
    assert value.days_ago == 2


# ---------------------------------------------------------------------------------------------------------
# Async messages: cut out by the decoder, they update the device's readings


def test_decoder_keeps_hex_messages_only_when_asked() -> None:
    stream = encode_block({"PID": "0xA042", "V": "12530"}) + b":A0102000345\n:ADBED00CD0AAC\n"
    keeping, plain = Decoder(keep_hex=True), Decoder()
    keeping.feed(stream)
    plain.feed(stream)
    assert keeping.take_hex_messages() == [b"A0102000345", b"ADBED00CD0AAC"]
    assert keeping.take_hex_messages() == []
    assert plain.take_hex_messages() == []


def test_kept_hex_messages_are_bounded() -> None:
    decoder = Decoder(keep_hex=True)
    decoder.feed(b":A0102000345\n" * (MAX_KEPT_HEX + 10))
    assert len(decoder.take_hex_messages()) == MAX_KEPT_HEX


def test_async_values_update_the_readings() -> None:
    readings = DeviceReadings()
    readings.update({"PID": "0xA042", "V": "12530", "CS": "3"}, now=0.0)
    for body in (b"A0102000543", b"ADBED00CD0AAC", b"AD5ED00E6049F"):
        message = vehex.parse_message(body)
        assert isinstance(message, vehex.RegisterReply)
        readings.update_register(message.register, message.data, now=5.0)
    assert readings.current(now=5.0, max_age=1.0) == {"V": "12540", "CS": "5"}
    assert readings.registers[0xEDDB] == b"\xcd\x0a"


def test_async_value_of_another_kind_of_device_leaves_the_text_readings() -> None:
    """0xED8D is a BMV's battery voltage; on an MPPT it is not the V field."""
    readings = DeviceReadings()
    readings.update({"PID": "0xA042", "V": "12530"}, now=0.0)
    readings.update_register(0xED8D, b"\x10\x27", now=1.0)
    assert readings.values["V"] == "12530"
    assert readings.registers[0xED8D] == b"\x10\x27"
