"""A solar charger's history records (HEX registers 0x104F and 0x1050 + d), decoded field by field. Pure.

Facts from vedirect-hex.md §6. Numbers are little-endian; a field whose bits are all set is not available and
decodes to None, never 0. `HistoryDay.as_json` is the contract form of `hex PORT history --json`, of
`/api/state` and of the daily emoncms inputs.
"""

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HISTORY_DAYS = 31  # 0x1050 today … 0x106E thirty days ago; 0x106F is another register (ve_regs.h: cycle count)
DAY_RECORD_LEN = 34
TOTAL_RECORD_LEN = 19


def _number(data: bytes, offset: int, size: int, scale: float = 1.0, decimals: int = 0) -> float | int | None:
    raw = int.from_bytes(data[offset : offset + size], "little")
    if raw == (1 << 8 * size) - 1:
        return None
    return raw if scale == 1.0 else round(raw * scale, decimals)


def _int(data: bytes, offset: int, size: int) -> int | None:
    value = _number(data, offset, size)
    return None if value is None else int(value)


def _errors(data: bytes, offset: int) -> tuple[int | None, ...]:
    return tuple(_int(data, offset + i, 1) for i in range(4))


@dataclass(frozen=True)
class HistoryDay:
    """One day's record (34 bytes): offsets and units of §6."""

    days_ago: int
    yield_kwh: float | None  # 1: un32, 0.01 kWh
    consumed_kwh: float | None  # 5: un32, 0.01 kWh (load output)
    battery_voltage_max_v: float | None  # 9: un16, 0.01 V
    battery_voltage_min_v: float | None  # 11: un16, 0.01 V
    error_database: int | None  # 13: un8
    errors: tuple[int | None, ...]  # 14: 4 × un8, codes as text ERR
    bulk_min: int | None  # 18: un16, minutes
    absorption_min: int | None  # 20
    float_min: int | None  # 22
    max_power_w: int | None  # 24: un32, W
    max_battery_current_a: float | None  # 28: un16, 0.1 A
    max_pv_voltage_v: float | None  # 30: un16, 0.01 V
    day_sequence: int | None  # 32: un16, +1 each new day

    @classmethod
    def decode(cls, days_ago: int, data: bytes) -> "HistoryDay | None":
        """None when `data` is shorter than a record (longer ones carry fields a newer firmware added)."""
        if len(data) < DAY_RECORD_LEN:
            return None
        return cls(
            days_ago=days_ago,
            yield_kwh=_number(data, 1, 4, 0.01, 2),
            consumed_kwh=_number(data, 5, 4, 0.01, 2),
            battery_voltage_max_v=_number(data, 9, 2, 0.01, 2),
            battery_voltage_min_v=_number(data, 11, 2, 0.01, 2),
            error_database=_int(data, 13, 1),
            errors=_errors(data, 14),
            bulk_min=_int(data, 18, 2),
            absorption_min=_int(data, 20, 2),
            float_min=_int(data, 22, 2),
            max_power_w=_int(data, 24, 4),
            max_battery_current_a=_number(data, 28, 2, 0.1, 1),
            max_pv_voltage_v=_number(data, 30, 2, 0.01, 2),
            day_sequence=_int(data, 32, 2),
        )

    def as_json(self) -> dict[str, Any]:
        """The contract's keys, in its order."""
        return {
            "days_ago": self.days_ago,
            "yield_kwh": self.yield_kwh,
            "consumed_kwh": self.consumed_kwh,
            "battery_voltage_max_v": self.battery_voltage_max_v,
            "battery_voltage_min_v": self.battery_voltage_min_v,
            "max_power_w": self.max_power_w,
            "max_battery_current_a": self.max_battery_current_a,
            "max_pv_voltage_v": self.max_pv_voltage_v,
            "bulk_min": self.bulk_min,
            "absorption_min": self.absorption_min,
            "float_min": self.float_min,
            "errors": list(self.errors),
            "day_sequence": self.day_sequence,
        }


# The daily emoncms inputs: the numbers of a day, without its position and errors.
DAILY_INPUTS = ("yield_kwh", "consumed_kwh", "battery_voltage_max_v", "battery_voltage_min_v", "max_power_w",
                "max_battery_current_a", "max_pv_voltage_v", "bulk_min", "absorption_min", "float_min")


def encode_day(fields: Mapping[str, Any]) -> bytes:
    """A 34-byte record from `as_json`-style fields (None → all bits set): the inverse of `HistoryDay.decode`,
    used by the simulator and tests."""

    def raw(key: str, size: int, scale: float = 1.0) -> bytes:
        value = fields.get(key)
        number = (1 << 8 * size) - 1 if value is None else round(value / scale)
        return number.to_bytes(size, "little")

    errors = list(fields.get("errors") or [0, 0, 0, 0])
    return b"".join((
        b"\x00",
        raw("yield_kwh", 4, 0.01),
        raw("consumed_kwh", 4, 0.01),
        raw("battery_voltage_max_v", 2, 0.01),
        raw("battery_voltage_min_v", 2, 0.01),
        raw("error_database", 1),
        bytes(0xFF if code is None else code for code in errors),
        raw("bulk_min", 2),
        raw("absorption_min", 2),
        raw("float_min", 2),
        raw("max_power_w", 4),
        raw("max_battery_current_a", 2, 0.1),
        raw("max_pv_voltage_v", 2, 0.01),
        raw("day_sequence", 2),
    ))


@dataclass(frozen=True)
class HistoryTotal:
    """The totals record (0x104F): lifetime figures and how many past days the charger holds."""

    error_database: int | None
    errors: tuple[int | None, ...]
    user_yield_kwh: float | None
    system_yield_kwh: float | None
    max_pv_voltage_v: float | None
    max_battery_voltage_v: float | None
    days_available: int | None  # 0 = only today, 1 = also yesterday, …

    @property
    def days_to_read(self) -> int:
        """How many day records to ask for, today first: never more than the charger can hold, whatever
        `days_available` says (a full history says 30: today and 30 days before)."""
        return min(HISTORY_DAYS, (self.days_available or 0) + 1)

    @classmethod
    def decode(cls, data: bytes) -> "HistoryTotal | None":
        """None when `data` is shorter than the record; newer firmware sends a longer one (26 bytes): its
        fields come after these and are ignored."""
        if len(data) < TOTAL_RECORD_LEN:
            return None
        return cls(
            error_database=_int(data, 1, 1),
            errors=_errors(data, 2),
            user_yield_kwh=_number(data, 6, 4, 0.01, 2),
            system_yield_kwh=_number(data, 10, 4, 0.01, 2),
            max_pv_voltage_v=_number(data, 14, 2, 0.01, 2),
            max_battery_voltage_v=_number(data, 16, 2, 0.01, 2),
            days_available=_int(data, 18, 1),
        )


def encode_total(user_yield_kwh: float, system_yield_kwh: float, max_pv_voltage_v: float,
                 max_battery_voltage_v: float, days_available: int) -> bytes:
    """A totals record, the inverse of `HistoryTotal.decode` (no errors recorded): for the simulator and tests."""
    return b"".join((
        b"\x00\x00", bytes(4),
        round(user_yield_kwh * 100).to_bytes(4, "little"),
        round(system_yield_kwh * 100).to_bytes(4, "little"),
        round(max_pv_voltage_v * 100).to_bytes(2, "little"),
        round(max_battery_voltage_v * 100).to_bytes(2, "little"),
        bytes([days_available]),
    ))


# A charger's day starts at dawn, never after noon: a reading before noon while the charger is still off (no
# light yet) belongs to the day that began at the previous dawn, i.e. yesterday's date.
_DAWN_BEFORE_HOUR = 12


@dataclass(frozen=True)
class DayAnchor:
    """One day sequence number and the calendar date of that charger day; every other day's date follows."""

    sequence: int
    date: datetime.date

    def date_of(self, sequence: int) -> datetime.date:
        offset = (sequence - self.sequence + 32768) % 65536 - 32768  # the nearest way round a wrapped counter
        return self.date + datetime.timedelta(days=offset)


def anchor_today(today_sequence: int, local_now: datetime.datetime, charger_off: bool,
                 previous: DayAnchor | None) -> DayAnchor:
    """The anchor after a read whose day 0 has `today_sequence`, at local time `local_now`.

    A known anchor is kept while it can be right (dates must not move once given): day 0 is today, or
    yesterday before noon (between midnight and dawn the charger's day 0 is still the previous calendar day).
    Otherwise — no anchor yet, a rollover that proves it wrong, days the charger did not count — day 0 is
    today's date, unless it is before noon and the charger is still off: then it is yesterday's."""
    today = local_now.date()
    before_noon = local_now.hour < _DAWN_BEFORE_HOUR
    if previous is not None:
        known = previous.date_of(today_sequence)
        if known == today or (before_noon and known == today - datetime.timedelta(days=1)):
            return previous
    if charger_off and before_noon:
        today -= datetime.timedelta(days=1)
    return DayAnchor(today_sequence, today)
