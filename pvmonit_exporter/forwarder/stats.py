"""The forwarder's figures: counters both threads write and every scrape reads, behind one lock.

Reading (`ForwarderStats.status`) copies what is in memory: a scrape never waits for the disk or the network.
"""

import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from pvmonit_exporter.forwarder.kinds import DROP_REASONS, ERROR_KINDS, SKIP_REASONS, DropReason, ErrorKind, SkipReason


@dataclass(frozen=True)
class QueueStats:
    """The disk queue's figures, as `DiskQueue.stats()` and the read-only view report them."""

    rows: int
    oldest: float | None  # time of the oldest queued row
    newest: float | None
    dead_rows: int
    recoveries: int  # corrupt databases moved aside since this process started
    reserve_releases: int = 0  # deletes the disk refused for want of room, done in the reserve's room instead


@dataclass(frozen=True)
class ForwarderStatus:
    """The forwarder's figures at one moment: what the metrics and `/api/state` show."""

    url: str
    queue_dir: str
    interval_seconds: float
    queue_rows: int
    queue_oldest_row_timestamp: float | None  # None when the queue is empty
    queue_newest_row_timestamp: float | None
    dead_letter_rows: int
    rows_sent_total: int
    rows_dropped_total: Mapping[str, int]
    errors_total: Mapping[str, int]
    last_success_timestamp: float  # 0 before the first success
    snapshots_total: int
    snapshots_skipped_total: Mapping[str, int]
    corrupt_queues_moved_aside: int
    next_retry_timestamp: float | None  # while backing off after a failure
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {f.name: (dict(value) if isinstance(value := getattr(self, f.name), Mapping) else value)
                for f in fields(self)}


class ForwarderStats:
    """Counters, the last success and error, the backoff schedule and the queue's last known figures."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent = 0
        self._dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self._errors: dict[str, int] = dict.fromkeys(ERROR_KINDS, 0)
        self._skipped: dict[str, int] = dict.fromkeys(SKIP_REASONS, 0)
        self._snapshots = 0
        self._last_success = 0.0
        self._last_error: str | None = None
        self._failures = 0  # failed attempts in a row
        self._retry_at: float | None = None  # monotonic time of the next attempt while backing off
        self._queue = QueueStats(0, None, None, 0, 0)

    def error(self, kind: ErrorKind, message: str | None = None) -> None:
        """Count an error; `message` (already free of secrets) becomes the last error."""
        with self._lock:
            self._errors[kind] += 1
            if message is not None:
                self._last_error = message

    def dropped(self, reason: DropReason, rows: int) -> None:
        with self._lock:
            self._dropped[reason] += rows

    def skipped(self, reason: SkipReason) -> None:
        with self._lock:
            self._skipped[reason] += 1

    def snapshot_taken(self) -> None:
        with self._lock:
            self._snapshots += 1

    def sent(self, rows: int, now: float) -> int:
        """emoncms accepted `rows`: count them, end any backoff; returns the failed attempts it ends."""
        with self._lock:
            failures = self._failures
            self._sent += rows
            self._last_success = now
            self._failures = 0
            self._retry_at = None
            self._last_error = None
            return failures

    def failed(self, message: str) -> int:
        """An attempt failed: returns how many have failed in a row, this one included."""
        with self._lock:
            self._failures += 1
            self._last_error = message
            return self._failures

    def retry_at(self, monotonic: float | None) -> None:
        with self._lock:
            self._retry_at = monotonic

    def backoff_remaining(self, monotonic_now: float) -> float:
        with self._lock:
            return 0.0 if self._retry_at is None else max(0.0, self._retry_at - monotonic_now)

    def queue(self, stats: QueueStats) -> None:
        with self._lock:
            self._queue = stats

    @property
    def queue_rows(self) -> int:
        with self._lock:
            return self._queue.rows

    def status(self, url: str, queue_dir: str, interval: float, now: float, monotonic_now: float) -> ForwarderStatus:
        with self._lock:
            stats = self._queue
            retry_at = None if self._retry_at is None else now + max(0.0, self._retry_at - monotonic_now)
            errors = dict(self._errors)
            errors["disk"] += stats.recoveries + stats.reserve_releases
            return ForwarderStatus(
                url=url,
                queue_dir=queue_dir,
                interval_seconds=interval,
                queue_rows=stats.rows,
                queue_oldest_row_timestamp=stats.oldest,
                queue_newest_row_timestamp=stats.newest,
                dead_letter_rows=stats.dead_rows,
                rows_sent_total=self._sent,
                rows_dropped_total=dict(self._dropped),
                errors_total=errors,
                last_success_timestamp=self._last_success,
                snapshots_total=self._snapshots,
                snapshots_skipped_total=dict(self._skipped),
                corrupt_queues_moved_aside=stats.recoveries,
                next_retry_timestamp=retry_at,
                last_error=self._last_error,
            )
