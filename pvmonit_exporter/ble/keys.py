"""A Bluetooth device's address and Instant Readout key as a user types them. Pure, and free of the [ble] extra,
so that a configuration is checked without it."""

import re

KEY_HEX_DIGITS = 32
_KEY_RE = re.compile(rf"[0-9A-Fa-f]{{{KEY_HEX_DIGITS}}}")
_ADDRESS_RE = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")


def parse_key(text: str) -> bytes:
    """A device key as VictronConnect shows it (32 hexadecimal digits) → 16 bytes; ValueError otherwise.

    The message never repeats the text: it is a secret, even when mistyped."""
    digits = text.strip()
    if not _KEY_RE.fullmatch(digits):
        raise ValueError(f"a key is {KEY_HEX_DIGITS} hexadecimal digits (VictronConnect: Product info → "
                         f"Instant readout details → Show); found {len(digits)} characters")
    return bytes.fromhex(digits)


def parse_address(text: str) -> str:
    """`e1:2b:3c:4d:5e:6f` → `E1:2B:3C:4D:5E:6F`; ValueError when it is not a Bluetooth address."""
    address = text.strip().upper()
    if not _ADDRESS_RE.fullmatch(address):
        raise ValueError(f"{text!r} is not a Bluetooth address like E1:2B:3C:4D:5E:6F")
    return address
