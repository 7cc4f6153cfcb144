"""State views → rows: PvMonit's payload, the SI payload, what is left out, and the row text."""

import math

import pytest

from pvmonit_exporter.config import DEFAULT_EMONCMS_FIELDS, DeviceConfig, EmoncmsConfig, ProbeConfig
from pvmonit_exporter.config.emoncms_names import emoncms_name
from pvmonit_exporter.forwarder.snapshot import (
    Row,
    SnapshotBuilder,
    decode_row,
    encode_row,
    raw_value,
    si_value,
)
from pvmonit_exporter.state import State
from pvmonit_exporter.vedirect.fields import decode
from pvmonit_exporter.vedirect.framing import Block, DecoderStats
from tests.forwarder.conftest import BMV_BLOCK, MPPT_BLOCK, START
from tests.forwarder.fake_emoncms import ManualClock

DEVICES = (DeviceConfig("mppt", "/dev/ttyUSB0"), DeviceConfig("bmv", "/dev/ttyUSB1"))


def config(**overrides: object) -> EmoncmsConfig:
    base = {"url": "http://127.0.0.1:1/emoncms", "apikey": "k", "queue_dir": "/nonexistent"}
    return EmoncmsConfig(**{**base, **overrides})  # type: ignore[arg-type]


def rows_for(blocks: dict[str, Block], *, devices: tuple[DeviceConfig, ...] = DEVICES,
             probes: tuple[ProbeConfig, ...] = (), probe_values: dict[str, float] | None = None,
             **overrides: object) -> list[Row]:
    state = State(devices, probes, clock=lambda: START)
    for name, block in blocks.items():
        state.record_blocks(name, [block], DecoderStats())
    for name, value in (probe_values or {}).items():
        state.record_probe(name, value)
    builder = SnapshotBuilder(config(**overrides), devices, probes)
    return builder.rows(1_780_315_500, state.devices(), state.probes())


def test_pvmonit_payload_is_raw_labels_and_default_fields() -> None:
    rows = rows_for({"mppt": MPPT_BLOCK, "bmv": BMV_BLOCK})

    assert rows == [
        Row(1_780_315_500, "mppt", {"CS": 3, "PPV": 92, "V": 26180, "ERR": 0, "I": 3500, "VPV": 41200,
                                    "H19": 1234, "H20": 12, "H21": 150, "H22": 30, "H23": 200}),
        Row(1_780_315_500, "bmv", {"V": 26200, "I": -1500, "P": -39, "CE": -12000, "SOC": 876, "TTG": -1,
                                   "Alarm": 0, "AR": 0}),
    ]


def test_pvmonit_default_lists_are_pvmonit_0_2s() -> None:
    """config-default.php of PvMonit 0.2 (reference pvmonit-2016.md): H14 was spelt `h14` there, never sent."""
    assert DEFAULT_EMONCMS_FIELDS["mppt"] == ("CS", "PPV", "V", "ERR", "I", "VPV", "H19", "H20", "H21", "H22", "H23")
    assert DEFAULT_EMONCMS_FIELDS["bmv"] == (
        "V", "VS", "VM", "DM", "I", "T", "P", "CE", "SOC", "TTG", "Alarm", "AR", "H1", "H2", "H3", "H4", "H5",
        "H6", "H7", "H8", "H9", "H10", "H11", "H12", "H13", "H15", "H16", "H17", "H18")
    assert DEFAULT_EMONCMS_FIELDS["inverter"] == ("P", "CS", "MODE", "AC_OUT_V", "AC_OUT_I", "WARN")


def test_a_device_row_goes_to_its_emoncms_node_spaces_kept() -> None:
    devices = (DeviceConfig("mppt", "/dev/ttyUSB0"), DeviceConfig("bmv", "/dev/ttyUSB1", emoncms_node="712 Smart"))
    rows = rows_for({"mppt": MPPT_BLOCK, "bmv": {**BMV_BLOCK, "Alarm": "ON"}}, devices=devices)

    assert [row.node for row in rows] == ["mppt", "712 Smart"]
    assert rows[1].values["Alarm"] == 1
    assert encode_row(rows[1]).startswith('[1780315500,"712 Smart",')


def test_si_payload_uses_metric_names_and_si_values() -> None:
    rows = rows_for({"mppt": MPPT_BLOCK, "bmv": BMV_BLOCK}, payload="si")

    mppt, bmv = rows
    assert mppt.values["battery_voltage_volts"] == pytest.approx(26.18)
    assert mppt.values["battery_current_amperes"] == pytest.approx(3.5)
    assert mppt.values["yield_total_joules"] == pytest.approx(1234 * 36_000)
    assert mppt.values["charge_state"] == 3  # an enumeration is sent as its code
    assert "CS" not in mppt.values
    # TTG -1 means infinite: nothing is sent for it rather than -60 s or infinity.
    assert bmv.values == {"battery_voltage_volts": pytest.approx(26.2), "battery_current_amperes": -1.5,
                          "battery_power_watts": -39, "state_of_charge_ratio": pytest.approx(0.876),
                          "consumed_charge_coulombs": pytest.approx(-43_200), "alarm_on": 0, "alarm_reason": 0}


def test_stale_device_and_missing_fields_are_left_out_never_null_or_zero() -> None:
    partial = {"PID": "0xA053", "V": "26180", "PPV": "---"}
    rows = rows_for({"mppt": partial})  # the BMV never sent anything

    assert rows == [Row(1_780_315_500, "mppt", {"V": 26180})]
    assert "null" not in encode_row(rows[0])


def test_a_device_gone_stale_gives_no_row() -> None:
    clock = ManualClock(START)
    state = State(DEVICES, clock=clock)  # the clock drives the ticker that ages the readings too
    state.record_blocks("mppt", [MPPT_BLOCK], DecoderStats())
    builder = SnapshotBuilder(config(), DEVICES, ())

    clock.set(START + 1)
    assert builder.rows(0, state.devices(), state.probes()) != []
    clock.set(START + 60)
    assert builder.rows(0, state.devices(), state.probes()) == []


def test_device_override_text_fields_hex_and_on_off() -> None:
    devices = (DeviceConfig("mppt", "/dev/ttyUSB0", emoncms_fields=("OR", "LOAD", "SER#", "PID", "FW", "V")),)
    rows = rows_for({"mppt": {**MPPT_BLOCK, "OR": "0x00000001"}}, devices=devices)

    # Text fields are never sent (emoncms would store 0); hex text and ON/OFF become numbers.
    assert rows == [Row(1_780_315_500, "mppt", {"OR": 1, "LOAD": 1, "V": 26180})]


def test_a_value_the_metrics_reject_is_left_out_of_the_row() -> None:
    rows = rows_for({"mppt": {**MPPT_BLOCK, "V": "1_000", "PPV": " 92 "}})

    assert decode("V", "1_000").value is None  # what /metrics makes of it
    assert rows == [Row(1_780_315_500, "mppt", {"CS": 3, "ERR": 0, "I": 3500, "VPV": 41200, "H19": 1234,
                                                "H20": 12, "H21": 150, "H22": 30, "H23": 200})]


@pytest.mark.parametrize("raw", ["26180", "-1", "+5", "1_000", " 12 ", "12 ", "0x10", "1e3", "---", "", "٣"])
@pytest.mark.parametrize("label", ["V", "TTG", "CS", "AR", "OR"])
def test_raw_value_is_sent_exactly_when_the_metrics_take_it(label: str, raw: str) -> None:
    assert (raw_value(label, raw) is None) == (decode(label, raw).value is None)


def test_fields_per_kind_come_from_the_configuration() -> None:
    rows = rows_for({"mppt": MPPT_BLOCK}, fields={"mppt": ("V", "MPPT", "HSDS"), "bmv": ()})

    assert rows == [Row(1_780_315_500, "mppt", {"V": 26180, "MPPT": 2, "HSDS": 17})]


def test_probe_row_under_the_probe_node_with_power() -> None:
    probes = (
        ProbeConfig("shed", "file", "temperature", path="/x", emoncms_input="temp"),
        ProbeConfig("clamp", "file", "current", path="/y", power_voltage=230.0),
        ProbeConfig("silent", "file", "temperature", path="/z"),
    )
    rows = rows_for({}, probes=probes, probe_values={"shed": 21.5, "clamp": 2.0})

    # PvMonit's node 1; a clamp's input carries watts (amperes × 230), as PvMonit's `conso` did.
    assert rows == [Row(1_780_315_500, "1", {"temp": 21.5, "clamp": 460.0})]


def test_with_the_si_payload_a_clamp_sends_watts_and_its_amperes_beside() -> None:
    probes = (ProbeConfig("clamp", "serial", "current", port="/dev/x", power_voltage=230.0, emoncms_input="conso"),
              ProbeConfig("amps", "serial", "current", port="/dev/y"))
    rows = rows_for({}, probes=probes, probe_values={"clamp": 2.0, "amps": 1.5}, payload="si", probe_node="house")

    assert rows == [Row(1_780_315_500, "house", {"conso": 460.0, "conso_current": 2.0, "amps": 1.5})]


def test_no_probe_row_without_probe_values() -> None:
    probes = (ProbeConfig("shed", "file", "temperature", path="/x"),)
    assert rows_for({}, probes=probes) == []


@pytest.mark.parametrize(
    ("label", "raw", "expected"),
    [
        ("V", "26180", 26180), ("OR", "0x00000100", 256), ("OR", "00000100", 256), ("LOAD", "off", 0),
        ("TTG", "-1", -1), ("PID", "0xA053", None), ("V", "---", None), ("V", "x", None),
        ("UNKNOWN", "0x10", 16), ("UNKNOWN", "12", 12), ("UNKNOWN", "abc", None),
        # Python's int() takes these; no device sends them and the metrics reject them (`parse_int`).
        ("V", "1_000", None), ("V", " 12 ", None), ("OR", "0x0000_0100", None), ("UNKNOWN", "1_0", None),
        ("UNKNOWN", "0x1_0", None),
        # A Bluetooth temperature keeps the advert's resolution in the pvmonit payload too; only T may.
        ("T", "22.5", 22.5), ("T", "-3.25", -3.25), ("V", "12.5", None), ("T", "22.", None),
    ],
)
def test_raw_value(label: str, raw: str, expected: float | None) -> None:
    assert raw_value(label, raw) == expected


@pytest.mark.parametrize(
    ("label", "raw", "expected"),
    [
        ("V", "12800", ("battery_voltage_volts", 12.8)), ("OR", "0x00000001", ("off_reason", 1.0)),
        ("AR", "2", ("alarm_reason", 2.0)), ("LOAD", "ON", ("load_output_on", 1.0)),
        ("TTG", "-1", None), ("TTG", "90", ("time_to_go_seconds", 5400.0)), ("FW", "159", None),
        ("UNKNOWN", "1", None), ("SOC", "---", None),
    ],
)
def test_si_value(label: str, raw: str, expected: tuple[str, float] | None) -> None:
    assert si_value(label, raw) == expected


def test_names_are_sanitised_as_emoncms_does() -> None:
    assert emoncms_name("SER#") == "SER"
    assert emoncms_name('a"b\\c é-1.x_y z') == "abc é-1.x_y z"


def test_row_text_is_compact_unescaped_json_and_round_trips() -> None:
    row = Row(1_780_315_500, "serre-été", {"V": 26180, "t": 21.5})
    text = encode_row(row)

    assert text == '[1780315500,"serre-été",{"V":26180,"t":21.5}]'
    assert "\\" not in text
    assert decode_row(text) == row


@pytest.mark.parametrize(
    "text", ["not json", "[1,2,3]", '{"a":1}', '[1,"n",{"v":"ON"}]', '[1,"n",{"v":null}]', '[true,"n",{}]'],
)
def test_decode_row_rejects_what_is_not_a_row(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - json's and our own errors are both ValueError
        decode_row(text)


def test_a_non_finite_probe_value_is_not_sent() -> None:
    probes = (ProbeConfig("shed", "file", "temperature", path="/x"),)
    assert rows_for({}, probes=probes, probe_values={"shed": math.nan}) == []
