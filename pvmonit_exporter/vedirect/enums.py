"""Every enumeration and bitmask of the text protocol (reference §5), one table each.

Names are English, short enough for a label value and a phone screen.
"""

from collections.abc import Mapping

# §5a CS — state of operation (MPPT chargers, inverters, chargers).
CHARGE_STATES: Mapping[int, str] = {
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

# §5b ERR — charger error code.
CHARGER_ERRORS: Mapping[int, str] = {
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

# §5c AR — alarm reason, and WARN — warning reason (same bits), sent as a decimal sum of bits.
ALARM_REASONS: Mapping[int, str] = {
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

# §5d OR — off reason, sent as hexadecimal text such as `0x00000001`.
OFF_REASONS: Mapping[int, str] = {
    0x001: "No input power",
    0x002: "Switched off (power switch)",
    0x004: "Switched off (device mode register)",
    0x008: "Remote input",
    0x010: "Protection active",
    0x020: "Paygo",
    0x040: "BMS",
    0x080: "Engine shutdown detection",
    0x100: "Analysing input voltage",
    0x200: "Battery temperature",
}

# §4b CAP_BLE — Bluetooth capabilities (protocol 3.33+). A property of the device, not a measurement: no metric.
BLE_CAPABILITIES: Mapping[int, str] = {
    0x1: "BLE supports switching off",
    0x2: "BLE switching off is permanent",
}

# §5e MPPT — tracker operation mode.
TRACKER_MODES: Mapping[int, str] = {
    0: "Off",
    1: "Voltage or current limited",
    2: "MPPT tracker active",
}

# §5f MODE — device mode (inverters).
DEVICE_MODES: Mapping[int, str] = {
    0: "Off",
    1: "Charger on",
    2: "Inverter on",
    3: "Device on",
    4: "Device off",
    5: "Eco",
    253: "Hibernate",
}

# §5g MON — DC monitor mode (BMV-71x, SmartShunt): negative = sources, positive = loads.
MONITOR_MODES: Mapping[int, str] = {
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
