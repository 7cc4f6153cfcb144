"""A charger's closed days → emoncms: one row per day on node `<node>_daily`, stamped 12:00 local time of the
day's date, so that a daily PHPFina feed puts it in that date's slot in any time zone.

Only closed days (days_ago ≥ 1) go: today's record is still growing. Each goes once, and again only when its
record changed; what was sent is remembered in the queue directory (`daily-sent.json`), so a restart sends
nothing twice, and after the Pi was off for N days the N missing days go out by themselves at the next read.
The rows travel through the same durable queue as the snapshots. `daily_rows` is pure; `DailyRows` keeps the
record of what was sent.
"""

import datetime
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pvmonit_exporter.config import DeviceConfig
from pvmonit_exporter.forwarder.names import device_node
from pvmonit_exporter.forwarder.snapshot import Row, encode_row
from pvmonit_exporter.state import DeviceView
from pvmonit_exporter.vedirect.history import DAILY_INPUTS

logger = logging.getLogger(__name__)

SENT_FILE = "daily-sent.json"
NODE_SUFFIX = "_daily"
_FORGET_AFTER = 90 * 86_400  # a charger holds 31 days: older entries can never come back

Sent = Mapping[str, str]  # "<node> <time>" → the row's text as queued


def local_noon(day: datetime.date) -> int:
    """12:00 of `day` in the system's time zone, as Unix seconds (mktime applies that date's DST rules)."""
    return int(time.mktime((day.year, day.month, day.day, 12, 0, 0, 0, 0, -1)))


def daily_rows(views: Sequence[DeviceView], nodes: Mapping[str, str], sent: Sent,
               noon: Callable[[datetime.date], int] = local_noon) -> list[Row]:
    """The rows of closed days not sent yet, or changed since."""
    rows = []
    for view in views:
        node = nodes.get(view.name)
        if node is None:
            continue
        for day, date in zip(view.history, view.history_dates, strict=True):
            if day.days_ago < 1 or date is None:
                continue
            document = day.as_json()
            values = {name: document[name] for name in DAILY_INPUTS if document[name] is not None}
            if not values:
                continue  # emoncms would store nulls as 0
            row = Row(noon(date), node + NODE_SUFFIX, values)
            if sent.get(_key(row)) != encode_row(row):
                rows.append(row)
    return rows


def _key(row: Row) -> str:
    return f"{row.node} {row.time}"


class DailyRows:
    """`daily_rows` with the record of what was sent, kept in `queue_dir`."""

    def __init__(self, queue_dir: Path, devices: Sequence[DeviceConfig]) -> None:
        self._path = queue_dir / SENT_FILE
        self._nodes = {d.name: device_node(d.name, d.emoncms_node) for d in devices if d.history}
        self._sent: dict[str, str] = self._load()

    def rows(self, views: Sequence[DeviceView]) -> list[Row]:
        return daily_rows(views, self._nodes, self._sent)

    def queued(self, rows: Sequence[Row], now: float) -> None:
        """`rows` are in the durable queue: never queue them again unless they change."""
        for row in rows:
            self._sent[_key(row)] = encode_row(row)
        self._sent = {key: text for key, text in self._sent.items()
                      if now - int(key.rsplit(" ", 1)[1]) < _FORGET_AFTER}
        temporary = self._path.with_name(self._path.name + ".tmp")
        try:
            temporary.write_text(json.dumps(self._sent, sort_keys=True), encoding="utf-8")
            os.replace(temporary, self._path)
        except OSError as exc:  # the rows are queued; at worst a restart queues them once more
            logger.warning("emoncms forwarder: cannot record the daily rows sent in %s: %s", self._path, exc)

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("emoncms forwarder: %s is unreadable (%s): closed days will be sent again", self._path,
                           exc)
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(key): str(value) for key, value in data.items()}
