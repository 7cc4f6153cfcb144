"""Home Assistant ids: pure, shared by the configuration's checks and the publisher.

An object id is `pvmonit_` + what identifies the device itself (its serial number, else its Bluetooth address,
else its configured name), lower case, `[a-z0-9_]` only: it does not change when the port, the name or the
firmware changes, so that dashboards, the Energy dashboard and automations keep their entities.
"""

import re

OBJECT_ID_PREFIX = "pvmonit_"
_NOT_ID = re.compile(r"[^a-z0-9_]")


def object_id(identifier: str) -> str:
    """`HQ2215ABCDE` → `pvmonit_hq2215abcde`; `E1:2B:3C:4D:5E:6F` → `pvmonit_e1_2b_3c_4d_5e_6f`."""
    return OBJECT_ID_PREFIX + _NOT_ID.sub("_", identifier.strip().lower())


def device_identifier(serial_number: str, ble_address: str | None, name: str) -> str:
    """What a device's object id is made of: its SER#, else its Bluetooth address, else its configured name."""
    return serial_number or ble_address or name
