"""VE.Direct HEX frames: requests a reader sends, and what a device answers. Pure: no I/O, no threads.

Facts from vedirect-hex.md §1-§4. A message on the line is `:` + command nibble + payload bytes + checksum
(two hex digits each) + LF, with command + payload + checksum ≡ 0x55 (mod 256). The framing decoder cuts the
messages out of the text stream (`framing.Decoder.take_hex_messages`); `parse_message` turns one into a reply.
A refused register (unknown id, not supported, parameter error) is a reply with an error, never an exception.
"""

import enum
from dataclasses import dataclass

from pvmonit_exporter.vedirect.framing import encode_hex_message, hex_message_is_valid
from pvmonit_exporter.vedirect.registers import WRITABLE


class Command(enum.IntEnum):
    """Commands a host sends (§2). Restart exists but this package never builds it; set only for the registers in
    `registers.WRITABLE`."""

    PING = 0x1
    APP_VERSION = 0x3
    PRODUCT_ID = 0x4
    GET = 0x7
    SET = 0x8


class Response(enum.IntEnum):
    """Commands of the messages a device sends (§2)."""

    DONE = 0x1  # the answer to app version and product id
    UNKNOWN_COMMAND = 0x3
    FRAME_ERROR = 0x4
    PING = 0x5
    GET = 0x7
    SET = 0x8
    ASYNC = 0xA


# Response flags (§2): each its own result. Any other non-zero value is reported with its number.
FLAG_ERRORS = {0x01: "unknown id", 0x02: "not supported", 0x04: "parameter error"}


def flag_error(flags: int) -> str | None:
    """None for 0x00 (OK), else the words for the flags."""
    if flags == 0:
        return None
    return FLAG_ERRORS.get(flags, f"flags 0x{flags:02X}")


def ping() -> bytes:
    return encode_hex_message(Command.PING, b"")


def app_version() -> bytes:
    return encode_hex_message(Command.APP_VERSION, b"")


def product_id() -> bytes:
    return encode_hex_message(Command.PRODUCT_ID, b"")


def get(register: int) -> bytes:
    """`:7` + register id (un16 little-endian) + flags 0: `get(0xEDF0)` → `:7F0ED0071\\n`."""
    return encode_hex_message(Command.GET, register.to_bytes(2, "little") + b"\x00")


def set_register(register: int, data: bytes) -> bytes:
    """`:8` + register id (un16 little-endian) + flags 0 + value. Only a register the exporter may write
    (`registers.WRITABLE`): anything else is a programming error, refused here."""
    if register not in WRITABLE:
        raise ValueError(f"register 0x{register:04X} is not one the exporter writes")
    return encode_hex_message(Command.SET, register.to_bytes(2, "little") + b"\x00" + data)


def format_version(version: int) -> str:
    """A ping reply's un16 (§2: `0x4116` → `1.16`; the high nibble is the firmware type, not the version)."""
    return f"{version >> 8 & 0xF}.{version & 0xFF:02X}"


@dataclass(frozen=True)
class RegisterReply:
    """A get or set answer, or an async message: register id, flags and the value's bytes."""

    command: Response
    register: int
    flags: int
    data: bytes

    @property
    def error(self) -> str | None:
        return flag_error(self.flags)


@dataclass(frozen=True)
class PingReply:
    version: int

    @property
    def firmware(self) -> str:
        return format_version(self.version)


@dataclass(frozen=True)
class DoneReply:
    """The answer to app version or product id: which one it is, only the request in flight says."""

    data: bytes

    @property
    def number(self) -> int:
        return int.from_bytes(self.data, "little")


@dataclass(frozen=True)
class RefusedReply:
    """The device did not understand the command (`unknown`) or the frame (`frame error`)."""

    command: Response
    data: bytes

    @property
    def error(self) -> str:
        return "unknown command" if self.command is Response.UNKNOWN_COMMAND else "frame error"


Reply = RegisterReply | PingReply | DoneReply | RefusedReply


def parse_frame(body: bytes) -> tuple[int, bytes] | None:
    """Command and payload of one HEX message without its `:` and LF (either case), or None when its
    checksum or its form is wrong. Both directions: a device parses requests with it too (the simulator)."""
    if not hex_message_is_valid(body):
        return None
    return int(body[:1], 16), bytes.fromhex(body[1:-2].decode("ascii"))


def encode_register(command: Response, register: int, flags: int, data: bytes = b"") -> bytes:
    """A get/set answer or an async message, as a device sends it."""
    return encode_hex_message(command, register.to_bytes(2, "little") + bytes([flags]) + data)


def parse_message(body: bytes) -> Reply | None:
    """One HEX message from a device, without its `:` and LF, or None when it is not a valid device message
    (bad checksum, odd length, unknown command, too short for its command). Accepts either case."""
    frame = parse_frame(body)
    if frame is None:
        return None
    command, payload = frame
    if command in (Response.GET, Response.SET, Response.ASYNC):
        if len(payload) < 3:
            return None
        return RegisterReply(Response(command), int.from_bytes(payload[:2], "little"), payload[2], payload[3:])
    if command == Response.PING:
        return PingReply(int.from_bytes(payload[:2], "little")) if len(payload) >= 2 else None
    if command == Response.DONE:
        return DoneReply(payload)
    if command in (Response.UNKNOWN_COMMAND, Response.FRAME_ERROR):
        return RefusedReply(Response(command), payload)
    return None
