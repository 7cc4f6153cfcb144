"""device.DeviceReadings: merging blocks, ageing out fields, identity; fed from the recordings."""

from pathlib import Path

import pytest

from pvmonit_exporter.vedirect.device import DeviceReadings, Identity, device_kind, names_serial_number
from pvmonit_exporter.vedirect.framing import Block, Decoder, encode_block

CAPTURES = Path(__file__).resolve().parent.parent / "data" / "captures"


def blocks_of(name: str) -> list[Block]:
    return Decoder().feed((CAPTURES / f"{name}.dump").read_bytes())


def test_bmv_main_and_history_blocks_merge() -> None:
    main, history, next_main = blocks_of("bvm702")[:3]
    readings = DeviceReadings()
    readings.update(main, now=0.0)
    readings.update(history, now=0.5)
    readings.update(next_main, now=1.0)
    current = readings.current(now=1.0, max_age=5.0)
    assert list(current) == [*main, *history]  # in the order first received
    assert current["V"] == next_main["V"]  # the latest value wins
    assert current["H9"] == history["H9"] == "368003"
    assert readings.last_block_time == 1.0


def test_stale_field_disappears() -> None:
    main, history = blocks_of("bvm702")[:2]
    readings = DeviceReadings()
    readings.update(main, now=0.0)
    readings.update(history, now=0.0)
    readings.update(main, now=10.0)  # the history block stops arriving
    assert readings.current(now=10.0, max_age=10.0) == {**main, **history}  # exactly max_age: still there
    current = readings.current(now=10.5, max_age=10.0)
    assert current == main
    assert not any(label.startswith("H") for label in current)
    assert readings.current(now=100.0, max_age=10.0) == {}


def test_clear() -> None:
    readings = DeviceReadings()
    readings.update(blocks_of("bluesolar_1.23")[0], now=0.0)
    readings.clear()
    assert readings.current(now=0.0, max_age=60.0) == {}
    assert readings.last_block_time is None
    assert readings.identity() == Identity()


def test_corrupted_bmv_main_block_leaves_no_trace() -> None:
    """Every single-byte corruption of a BMV main block followed by its history block: no value of the main
    block comes out of the decoder or into the readings."""
    main, history = blocks_of("bvm702")[:2]
    raw_main, raw_history = encode_block(main), encode_block(history)
    assert not set(main) & set(history)
    for position in range(len(raw_main)):
        for flip in (0x01, 0x10, 0x80):
            damaged = bytearray(raw_main)
            damaged[position] ^= flip
            decoded = Decoder().feed(bytes(damaged) + raw_history)
            assert decoded in ([history], []), (position, flip)
            readings = DeviceReadings()
            for block in decoded:
                readings.update(block, now=0.0)
            assert not set(main) & set(readings.current(now=0.0, max_age=60.0)), (position, flip)
            assert readings.identity().product_id == ""


def test_corrupted_bmv_value_costs_only_the_main_block() -> None:
    main, history = blocks_of("bvm702")[:2]
    damaged = encode_block(main).replace(b"\r\nV\t12065\r\n", b"\r\nV\t12075\r\n")
    decoded = Decoder().feed(damaged + encode_block(history))
    assert decoded == [history]
    readings = DeviceReadings()
    readings.update(decoded[0], now=0.0)
    assert readings.current(now=0.0, max_age=5.0) == history


@pytest.mark.parametrize(
    ("name", "identity"),
    [
        ("bluesolar_1.23", Identity("0xA042", "BlueSolar MPPT 75/15", "HQ1411MYIKN", "1.23", "mppt")),
        ("smartsolar_1.39", Identity("0xA05F", "SmartSolar MPPT 100/20", "HQ18486U2B4", "1.39", "mppt")),
        ("bvm702", Identity("0x0203", "BMV-700", "", "3.08", "bmv")),
    ],
)
def test_identity_from_recordings(name: str, identity: Identity) -> None:
    readings = DeviceReadings()
    for block in blocks_of(name)[:2]:
        readings.update(block, now=0.0)
    assert readings.identity() == identity


def test_identity_survives_stale_values() -> None:
    readings = DeviceReadings()
    readings.update(blocks_of("bluesolar_1.23")[0], now=0.0)
    assert readings.current(now=1000.0, max_age=10.0) == {}
    assert readings.identity().product == "BlueSolar MPPT 75/15"


@pytest.mark.parametrize(
    ("block", "identity"),
    [
        (
            {"PID": "0xA231", "FW": "0114", "MODE": "2", "AC_OUT_V": "23000"},
            Identity("0xA231", "Phoenix Inverter 12V 250VA 230V", "", "1.14", "inverter"),
        ),
        (
            {"PID": "0xA06C", "FWE": "316FF", "PPV": "120"},
            Identity("0xA06C", "SmartSolar MPPT 150/70 rev2", "", "3.16", "mppt"),
        ),
        (
            {"PID": "0xA332", "FWE": "031605", "V": "27000"},
            Identity("0xA332", "Blue Smart IP22 Charger 24/8", "", "3.16 beta 05", "charger"),
        ),
        ({"PID": "0xC038", "V": "13000"}, Identity("0xC038", "SmartShunt 300A/50mV", "", "", "bmv")),
        ({"PID": "0x0300", "FW": "C208"}, Identity("0x0300", "BlueSolar MPPT 70/15", "", "2.08 rc C", "mppt")),
        (
            {"PID": "0xa381", "BMV": "712 Smart", "FW": "0419", "MON": "0"},
            Identity("0xA381", "BMV-712 Smart", "", "4.19", "bmv"),
        ),
        ({"PID": "0xA389", "V": "13000", "I": "0"}, Identity("0xA389", "SmartShunt 500A/50mV", "", "", "bmv")),
        (
            {"PID": "0xA340", "V": "13000"},
            Identity("0xA340", "Phoenix Smart IP43 Charger 12/50 (1+1)", "", "", "charger"),
        ),
        ({"PID": "0xA442"}, Identity("0xA442", "Multi RS Solar 48V 6000VA 230V", "", "", "inverter")),
        ({"BMV": "602S", "FW": "212", "SOC": "1000"}, Identity("", "BMV-602S", "", "2.12", "bmv")),
        ({"PID": "0xBEEF", "PPV": "5"}, Identity("0xBEEF", "Unknown product 0xBEEF", "", "", "mppt")),
        ({"PID": "nonsense"}, Identity("nonsense", "Unknown product nonsense", "", "", "unknown")),
    ],
)
def test_identity_of_other_devices(block: Block, identity: Identity) -> None:
    readings = DeviceReadings()
    readings.update(block, now=0.0)
    assert readings.identity() == identity


@pytest.mark.parametrize(
    ("pid", "fields", "kind"),
    [
        (0x203, {}, "bmv"),
        (0x205, {}, "bmv"),
        (0x300, {}, "mppt"),
        (0xA042, {}, "mppt"),
        (0xA110, {}, "mppt"),
        (0xA2F9, {}, "inverter"),
        (0xA402, {}, "inverter"),
        (0xA38B, {}, "bmv"),
        (0xC030, {}, "bmv"),
        (0xC038, {}, "bmv"),
        (0xA3F0, {}, "charger"),
        (None, {"PPV": "1"}, "mppt"),
        (None, {"AC_OUT_V": "23000"}, "inverter"),
        (None, {"SOC": "1000"}, "bmv"),
        (None, {}, "unknown"),
    ],
)
def test_device_kind(pid: int | None, fields: dict[str, str], kind: str) -> None:
    assert device_kind(pid, fields) == kind


@pytest.mark.parametrize(
    ("block", "verdict"),
    [
        ({"PID": "0xA04A", "SER#": "HQ1328Y6TF6", "V": "26180"}, True),
        ({"PID": "0xA04A", "SER#": "HQ2222ZZZZZ", "V": "26180"}, False),
        ({"PID": "0x203", "V": "12065", "SOC": "839"}, False),  # a BMV-70x: a device, and not the one
        ({"BMV": "602S", "V": "12065"}, False),  # a BMV-60x names itself by its model only
        ({"H1": "-149322", "H2": "-82854"}, None),  # a history block names no device
    ],
)
def test_names_serial_number(block: Block, verdict: bool | None) -> None:
    assert names_serial_number(block, "HQ1328Y6TF6") is verdict
