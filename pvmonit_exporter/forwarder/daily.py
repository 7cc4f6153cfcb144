"""A charger's closed days → emoncms: one row per day on node `<node>_daily`, stamped 12:00 local time of the
day's date, so that a daily PHPFina feed puts it in that date's slot in any time zone.

Only closed days (days_ago ≥ 1) go: today's record is still growing. They go **oldest first**: emoncms drops a
point older than a feed's newest (PHPTimeSeries) or than its first (PHPFina), so a month sent newest first
would leave one day in each new feed (Modules/feed/engine/PHPFina.php and PHPTimeSeries.php, `post_multiple`).

Each day goes once, and again only when its record changed. What was sent is remembered in the queue
directory (`daily-sent.json`) under the charger's **serial number and day sequence number**, with the date and
the timestamp it was sent with, never under the timestamp: a restart under another time zone, or a day
rollover that would date the month differently, sends nothing again, and a changed day goes again at its
first timestamp (where both engines overwrite it). Dates of days not sent yet follow the charger's day
numbers from the days already sent, or from the state's anchor when that is later (a wrong early guess is
corrected; dates never go backwards into days already sent). After the Pi was off for N days, the N missing
days go out by themselves at the next read. The rows travel through the same durable queue as the snapshots.
`daily_rows` is pure; `DailyRows` keeps the record of what was sent.
"""

import datetime
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pvmonit_exporter.config import DeviceConfig
from pvmonit_exporter.config.emoncms_names import device_node
from pvmonit_exporter.forwarder.snapshot import Row
from pvmonit_exporter.state import DeviceView
from pvmonit_exporter.vedirect.history import DAILY_INPUTS, DayAnchor

logger = logging.getLogger(__name__)

SENT_FILE = "daily-sent.json"
NODE_SUFFIX = "_daily"
_FORMAT = 2  # daily-sent.json keyed on serial and day number (format 1, until 2026-12, was keyed on timestamps)
_FORGET_AFTER = datetime.timedelta(days=90)  # a charger holds 31 days: older entries can never come back

Values = Mapping[str, float]


@dataclass(frozen=True)
class SentDay:
    """A closed day as it was queued: where, for which date, at which timestamp, with which values."""

    node: str
    date: datetime.date
    time: int
    values: Values


Sent = Mapping[tuple[str, int], SentDay]  # (serial number, day sequence number) → the day as queued


@dataclass(frozen=True)
class DailyRow:
    """A row to queue for one closed day of the charger with serial number `serial`."""

    serial: str
    sequence: int
    date: datetime.date
    row: Row


def local_noon(day: datetime.date) -> int:
    """12:00 of `day` in the system's time zone, as Unix seconds (mktime applies that date's DST rules)."""
    return int(time.mktime((day.year, day.month, day.day, 12, 0, 0, 0, 0, -1)))


def _sent_anchor(serial: str, sent: Sent) -> DayAnchor | None:
    """The charger's newest day already sent, as an anchor for the dates of the days not sent yet."""
    days = [(day.date, sequence) for (owner, sequence), day in sent.items() if owner == serial]
    if not days:
        return None
    date, sequence = max(days)
    return DayAnchor(sequence, date)


def daily_rows(views: Sequence[DeviceView], nodes: Mapping[str, str], sent: Sent,
               noon: Callable[[datetime.date], int] = local_noon) -> list[DailyRow]:
    """The rows of closed days not sent yet, or changed since, oldest first. A device is skipped until its
    serial number is known: it is what "already sent" is keyed on."""
    rows = []
    for view in views:
        node = nodes.get(view.name)
        serial = view.identity.serial_number
        if node is None or not serial:
            continue
        node += NODE_SUFFIX
        anchor = _sent_anchor(serial, sent)
        for day, state_date in zip(view.history, view.history_dates, strict=True):
            sequence = day.day_sequence
            if day.days_ago < 1 or sequence is None:
                continue
            document = day.as_json()
            values = {name: document[name] for name in DAILY_INPUTS if document[name] is not None}
            if not values:
                continue  # emoncms would store nulls as 0
            known = sent.get((serial, sequence))
            if known is not None:
                if known.node != node or dict(known.values) != values:
                    rows.append(DailyRow(serial, sequence, known.date, Row(known.time, node, values)))
                continue
            sent_date = None if anchor is None else anchor.date_of(sequence)
            dates = [date for date in (state_date, sent_date) if date is not None]
            if dates:
                date = max(dates)
                rows.append(DailyRow(serial, sequence, date, Row(noon(date), node, values)))
    return sorted(rows, key=lambda daily: daily.row.time)


class DailyRows:
    """`daily_rows` with the record of what was sent, kept in `queue_dir`."""

    def __init__(self, queue_dir: Path, devices: Sequence[DeviceConfig]) -> None:
        self._path = queue_dir / SENT_FILE
        self._nodes = {d.name: device_node(d.name, d.emoncms_node) for d in devices if d.history}
        self._sent: dict[tuple[str, int], SentDay] = self._load()

    def rows(self, views: Sequence[DeviceView]) -> list[DailyRow]:
        return daily_rows(views, self._nodes, self._sent)

    def queued(self, rows: Sequence[DailyRow], now: float) -> None:
        """`rows` are in the durable queue: never queue them again unless they change."""
        for daily in rows:
            self._sent[daily.serial, daily.sequence] = SentDay(daily.row.node, daily.date, daily.row.time,
                                                               dict(daily.row.values))
        oldest = datetime.date.fromtimestamp(now) - _FORGET_AFTER
        self._sent = {key: day for key, day in self._sent.items() if day.date >= oldest}
        document = {"format": _FORMAT, "days": [
            {"serial": serial, "sequence": sequence, "node": day.node, "date": day.date.isoformat(),
             "time": day.time, "values": dict(day.values)}
            for (serial, sequence), day in sorted(self._sent.items())]}
        temporary = self._path.with_name(self._path.name + ".tmp")
        try:
            temporary.write_text(json.dumps(document, sort_keys=True), encoding="utf-8")
            os.replace(temporary, self._path)
        except OSError as exc:  # the rows are queued; at worst a restart queues them once more
            logger.warning("emoncms forwarder: cannot record the daily rows sent in %s: %s", self._path, exc)

    def _load(self) -> dict[tuple[str, int], SentDay]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("emoncms forwarder: %s is unreadable (%s): closed days will be sent again", self._path,
                           exc)
            return {}
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            logger.info("emoncms forwarder: %s is from an older version: closed days are sent once more, at the "
                        "same timestamps (emoncms overwrites them)", self._path)
            return {}
        try:
            return {(str(day["serial"]), int(day["sequence"])): _sent_day(day) for day in data["days"]}
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning("emoncms forwarder: %s is unreadable (%s): closed days will be sent again", self._path,
                           exc)
            return {}


def _sent_day(day: Mapping[str, Any]) -> SentDay:
    values = {str(name): float(value) for name, value in day["values"].items()}
    return SentDay(str(day["node"]), datetime.date.fromisoformat(day["date"]), int(day["time"]), values)
