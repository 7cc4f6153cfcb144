"""products (reference §6) and enums (reference §5), each expected table written out here independently."""

from collections.abc import Mapping

import pytest

from pvmonit_exporter.vedirect import enums
from pvmonit_exporter.vedirect.products import PRODUCTS, parse_pid, product_name

# ---------------------------------------------------------------------------------------------------------
# Products

REFERENCE_PRODUCT_ROWS = 179  # rows of the table in reference §6


def test_table_has_one_entry_per_reference_row() -> None:
    assert len(PRODUCTS) == REFERENCE_PRODUCT_ROWS


@pytest.mark.parametrize(
    ("pid", "name"),
    [
        (0x203, "BMV-700"),
        (0x204, "BMV-702"),
        (0x205, "BMV-700H"),
        (0x300, "BlueSolar MPPT 70/15"),
        (0xA041, "BlueSolar MPPT 150/35"),
        (0xA042, "BlueSolar MPPT 75/15"),
        (0xA048, "BlueSolar MPPT 75/50 rev2"),
        (0xA05F, "SmartSolar MPPT 100/20"),
        (0xA06C, "SmartSolar MPPT 150/70 rev2"),
        (0xA078, "BlueSolar MPPT 150/35 rev3"),
        (0xA07E, "SmartSolar MPPT 100/30 12V"),
        (0xA081, "SmartSolar MPPT 250/70 rev3"),
        (0xA110, "SmartSolar MPPT RS 450/100"),
        (0xA117, "BlueSolar MPPT VE.Can 150/100 rev2"),
        (0xA201, "Phoenix Inverter 12V 250VA 230V"),
        (0xA2F9, "Phoenix Inverter 12V 1200VA 120V"),
        (0xA340, "Phoenix Smart IP43 Charger 12/50 (1+1)"),
        (0xA381, "BMV-712 Smart"),
        (0xA389, "SmartShunt 500A/50mV"),
        (0xC030, "SmartShunt IP65"),
        (0xC038, "SmartShunt 300A/50mV"),
        (0xA3F0, "Orion XS 12V/12V-50A"),
        (0xA402, "RS Inverter Smart 48/6000"),
        (0xA442, "Multi RS Solar 48V 6000VA 230V"),
    ],
)
def test_reference_entries(pid: int, name: str) -> None:
    assert PRODUCTS[pid] == name
    assert product_name(f"0x{pid:X}") == name
    assert product_name(f"0x{pid:04x}") == name


@pytest.mark.parametrize("raw", ["0x300", "0x0300", "0X300", " 0x300 ", "300"])
def test_pid_compares_numerically(raw: str) -> None:
    assert parse_pid(raw) == 0x300
    assert product_name(raw) == "BlueSolar MPPT 70/15"


def test_lowercase_pid() -> None:
    assert parse_pid("0xa053") == parse_pid("0xA053") == 0xA053
    assert product_name("0xa053") == "SmartSolar MPPT 75/15"


@pytest.mark.parametrize("raw", ["", "0x", "PID", "0xA0G2", "---"])
def test_malformed_pid(raw: str) -> None:
    assert parse_pid(raw) is None
    assert product_name(raw) is None


def test_unknown_pid() -> None:
    assert parse_pid("0xFFFF") == 0xFFFF
    assert product_name("0xFFFF") is None


def test_names_are_clean() -> None:
    assert all(name == name.strip() and "|" not in name and "*" not in name for name in PRODUCTS.values())


# ---------------------------------------------------------------------------------------------------------
# Enumerations (reference §5a-§5g)

CHARGE_STATES = {
    0: "Off",
    1: "Low power",
    2: "Fault",
    3: "Bulk",
    4: "Absorption",
    5: "Float",
    6: "Storage",
    7: "Equalize (manual)",
    8: "Passthru",
    9: "Inverting",
    10: "Assisting",
    11: "Power supply",
    244: "Sustain",
    245: "Starting-up",
    246: "Repeated absorption",
    247: "Auto equalize / Recondition",
    248: "BatterySafe",
    252: "External control",
    255: "Unknown",
}

CHARGER_ERRORS = {
    0: "No error",
    2: "Battery voltage too high",
    17: "Charger temperature too high",
    18: "Charger over current",
    19: "Charger current reversed",
    20: "Bulk time limit exceeded",
    21: "Current sensor issue",
    26: "Terminals overheated",
    28: "Converter issue",
    33: "Input voltage too high (solar panel)",
    34: "Input current too high (solar panel)",
    38: "Input shutdown (excessive battery voltage)",
    39: "Input shutdown (current flow during off mode)",
    65: "Lost communication with one of devices",
    66: "Synchronised charging device configuration issue",
    67: "BMS connection lost",
    68: "Network misconfigured",
    116: "Factory calibration data lost",
    117: "Invalid/incompatible firmware",
    119: "User settings invalid",
}

ALARM_REASONS = {
    1: "Low voltage",
    2: "High voltage",
    4: "Low SOC",
    8: "Low starter voltage",
    16: "High starter voltage",
    32: "Low temperature",
    64: "High temperature",
    128: "Mid voltage",
    256: "Overload",
    512: "DC-ripple",
    1024: "Low V AC out",
    2048: "High V AC out",
    4096: "Short circuit",
    8192: "BMS lockout",
}

OFF_REASONS = {
    0x00000001: "No input power",
    0x00000002: "Switched off (power switch)",
    0x00000004: "Switched off (device mode register)",
    0x00000008: "Remote input",
    0x00000010: "Protection active",
    0x00000020: "Paygo",
    0x00000040: "BMS",
    0x00000080: "Engine shutdown detection",
    0x00000100: "Analysing input voltage",
    0x00000200: "Battery temperature",
}

TRACKER_MODES = {0: "Off", 1: "Voltage or current limited", 2: "MPPT tracker active"}

DEVICE_MODES = {
    0: "Off",
    1: "Charger on",
    2: "Inverter on",
    3: "Device on",
    4: "Device off",
    5: "Eco",
    253: "Hibernate",
}

MONITOR_MODES = {
    -9: "Solar charger",
    -8: "Wind turbine",
    -7: "Shaft generator",
    -6: "Alternator",
    -5: "Fuel cell",
    -4: "Water generator",
    -3: "DC/DC charger",
    -2: "AC charger",
    -1: "Generic source",
    0: "Battery monitor",
    1: "Generic load",
    2: "Electric drive",
    3: "Fridge",
    4: "Water pump",
    5: "Bilge pump",
    6: "DC system",
    7: "Inverter",
    8: "Water heater",
}


@pytest.mark.parametrize(
    ("actual", "expected"),
    [
        (enums.CHARGE_STATES, CHARGE_STATES),
        (enums.CHARGER_ERRORS, CHARGER_ERRORS),
        (enums.ALARM_REASONS, ALARM_REASONS),
        (enums.OFF_REASONS, OFF_REASONS),
        (enums.TRACKER_MODES, TRACKER_MODES),
        (enums.DEVICE_MODES, DEVICE_MODES),
        (enums.MONITOR_MODES, MONITOR_MODES),
        (enums.BLE_CAPABILITIES, {1: "BLE supports switching off", 2: "BLE switching off is permanent"}),
    ],
    ids=["CS", "ERR", "AR", "OR", "MPPT", "MODE", "MON", "CAP_BLE"],
)
def test_enumeration_matches_reference(actual: Mapping[int, str], expected: dict[int, str]) -> None:
    assert dict(actual) == expected


@pytest.mark.parametrize(
    "bits", [enums.ALARM_REASONS, enums.OFF_REASONS, enums.BLE_CAPABILITIES], ids=["AR", "OR", "CAP_BLE"]
)
def test_bitmask_keys_are_single_bits(bits: Mapping[int, str]) -> None:
    assert all(bit > 0 and bit & (bit - 1) == 0 for bit in bits)
