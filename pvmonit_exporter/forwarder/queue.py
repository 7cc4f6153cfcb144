"""A durable FIFO of rows on diskcache (SQLite), bounded, with a dead-letter store and corrupt-database recovery.

Layout of `queue_dir`: `cache.db` (+ `-wal`, `-shm`) holds the queue, one entry per row, under diskcache's
increasing integer keys (push order = time order); `dead/` is a second store for rows emoncms rejected for their
content; `corrupt-<time>/` directories hold databases that could not be read, kept for a human to look at.

Durability: an `append` that returned has been committed with SQLite in WAL mode and `synchronous=FULL`, so
the row survives kill -9 and power loss. Rows are removed only after emoncms said `ok`, so a crash between
sending and removing resends the batch (at-least-once; emoncms overwrites the same timestamp).

Keys are reused: diskcache numbers a new entry max(key) + 1, or restarts at the same first key when the queue
is empty. So a row is removed only while its key still holds the very text that was peeked (checked inside the
deleting transaction): when another process removed that row meanwhile and a new row was queued under the same
key, the new row stays.

Every operation either completes or raises `QueueError` (disk full, read-only, I/O error) having changed
nothing; a database SQLite reports as corrupt is moved aside, logged, and the operation is retried once on a
fresh, empty queue, so a damaged file never stops the exporter.
"""

import itertools
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import diskcache

from pvmonit_exporter.forwarder.snapshot import Row, decode_row, encode_row

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEAD_DIR = "dead"
_DB_FILES = ("cache.db", "cache.db-wal", "cache.db-shm")

# diskcache's defaults are a cache's, not a queue's: they evict entries and only sync at checkpoints.
_SETTINGS: dict[str, Any] = {
    # WAL with synchronous=FULL (2): COMMIT returns only after the WAL has been fsynced, so an enqueue that
    # returned survives a power cut. diskcache's default NORMAL (1) syncs only at checkpoints in WAL mode: a
    # power cut could silently lose the last committed rows. The cost is one fsync per enqueue (one snapshot),
    # negligible at one snapshot per interval. WAL also lets readers (status, CLI) run beside the writer.
    "sqlite_journal_mode": "wal",
    "sqlite_synchronous": 2,
    # A queue must never drop rows on its own: no eviction, no culling; the bound is ours, counted and logged.
    "eviction_policy": "none",
    "cull_limit": 0,
    "statistics": 0,
    "tag_index": 0,
    # Rows are small; keep every value inside SQLite, because diskcache writes large values to separate files
    # without fsync.
    "disk_min_file_size": 2**24,
}

# SQLite primary result codes that mean "this file is not a usable database" rather than "the disk refused".
_SQLITE_ERROR, _SQLITE_CORRUPT, _SQLITE_NOTADB = 1, 11, 26


class QueueError(Exception):
    """The queue's storage cannot be used now (disk full, read-only, I/O error); nothing was changed."""


@dataclass(frozen=True)
class QueuedRow:
    """A row with its queue key; `row` is None when the stored text could not be read back as a row."""

    key: int
    text: str
    row: Row | None


@dataclass(frozen=True)
class DeadLetter:
    """A row emoncms refused for its content, with the server's message and when it was set aside."""

    text: str
    error: str
    time: float


@dataclass(frozen=True)
class QueueStats:
    rows: int
    oldest: float | None  # time of the oldest queued row
    newest: float | None
    dead_rows: int
    recoveries: int  # corrupt databases moved aside since this process started


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    """True for a damaged or foreign database file; False for a disk that refuses (full, read-only, I/O)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return not isinstance(exc, sqlite3.OperationalError)
    return code & 0xFF in (_SQLITE_ERROR, _SQLITE_CORRUPT, _SQLITE_NOTADB)


class _Store:
    """One diskcache directory, opened on first use and re-created after a corrupt database is moved aside."""

    def __init__(self, directory: Path, what: str, timeout: float) -> None:
        self.directory = directory
        self.what = what
        self.timeout = timeout
        self.recoveries = 0
        self._cache: Any = None

    def run(self, operation: Callable[[Any], T]) -> T:
        for attempt in (1, 2):
            try:
                if self._cache is None:
                    self._cache = diskcache.Cache(str(self.directory), timeout=self.timeout, **_SETTINGS)
                return operation(self._cache)
            except sqlite3.DatabaseError as exc:
                if attempt == 1 and _is_corrupt(exc):
                    self._move_aside(exc)
                    continue
                raise QueueError(f"{self.what} {self.directory}: {exc}") from exc
            except (OSError, diskcache.Timeout) as exc:
                detail = str(exc) or "the database stayed locked or read-only"
                raise QueueError(f"{self.what} {self.directory}: {detail}") from exc
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _move_aside(self, exc: sqlite3.DatabaseError) -> None:
        self.close()
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.directory / f"corrupt-{stamp}"
        for n in itertools.count(1):
            if not target.exists():
                break
            target = self.directory / f"corrupt-{stamp}-{n}"
        try:
            target.mkdir(parents=True)
            for name in _DB_FILES:
                path = self.directory / name
                if path.exists():
                    path.rename(target / name)
        except OSError as move_error:
            raise QueueError(f"{self.what} {self.directory} is unreadable ({exc}) and could not be moved "
                             f"aside: {move_error}") from move_error
        self.recoveries += 1
        logger.error("%s database in %s is unreadable (%s): moved it to %s and started an empty one; "
                     "its rows will not be sent", self.what, self.directory, exc, target)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None


def _row_time(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(decode_row(text).time)
    except ValueError:
        return None


class DiskQueue:
    """The queue in `directory`, at most `max_rows` rows (oldest dropped first), dead letters in `dead/`.

    Thread-safe: one lock serialises this process's operations (a snapshot thread appends while a flush thread
    reads and removes). Other processes (the `queue --flush` command) may use the same directory: SQLite
    serialises their transactions, and `remove` deletes a row only if its key still holds the text that was
    peeked, so no process can remove a row another one queued under a reused key. What concurrent senders can
    still do: send the same rows twice (emoncms overwrites the same timestamp) and, for a row emoncms refuses,
    both write a dead letter for it.
    """

    def __init__(self, directory: Path, max_rows: int, *, max_dead_rows: int | None = None,
                 timeout: float = 10.0) -> None:
        self.directory = directory
        self.max_rows = max_rows
        self.max_dead_rows = max_rows if max_dead_rows is None else max_dead_rows
        self._lock = threading.Lock()
        self._queue = _Store(directory, "emoncms queue", timeout)
        self._dead = _Store(directory / DEAD_DIR, "emoncms dead-letter store", timeout)

    def append(self, rows: Sequence[Row]) -> int:
        """Queue `rows` durably, in order; returns how many of the oldest rows were dropped for the bound."""
        texts = [encode_row(row) for row in rows]

        def operation(cache: Any) -> int:
            with cache.transact():
                for text in texts:
                    cache.push(text)
                return _trim(cache, self.max_rows)

        with self._lock:
            return self._queue.run(operation)

    def peek(self, limit: int) -> list[QueuedRow]:
        """The oldest `limit` rows, oldest first, left in the queue."""

        def operation(cache: Any) -> list[QueuedRow]:
            items = []
            for key in itertools.islice(cache.iterkeys(), limit):
                text = cache.get(key)
                if text is None:  # removed by another process since the key was listed
                    continue
                try:
                    row: Row | None = decode_row(str(text))
                except ValueError:
                    row = None
                items.append(QueuedRow(int(key), str(text), row))
            return items

        with self._lock:
            return self._queue.run(operation)

    def remove(self, items: Iterable[QueuedRow]) -> int:
        """Delete the peeked `items` in one transaction; returns how many were deleted.

        An item is deleted only if its key still holds the text it was peeked with: a key that is gone (another
        process removed the row) or that now holds another row (queued since, under the reused key) is left
        alone — deleting by key alone would lose that new row unsent.
        """
        wanted = [(item.key, item.text) for item in items]

        def operation(cache: Any) -> int:
            removed = 0
            with cache.transact():  # BEGIN IMMEDIATE: no other process writes between the read and the delete
                for key, text in wanted:
                    if cache.get(key) == text:
                        cache.delete(key)
                        removed += 1
            return removed

        with self._lock:
            return self._queue.run(operation)

    def bury(self, items: Sequence[QueuedRow], error: str, now: float) -> int:
        """Move rows to the dead-letter store with the reason; returns dead letters dropped for its bound.

        The dead letter is written before the row leaves the queue: a crash in between leaves a duplicate
        dead letter at worst, never a lost row. The rows leave the queue through `remove`, so a row queued
        meanwhile under a reused key stays.
        """
        letters = [json.dumps({"row": item.text, "error": error, "time": now}, ensure_ascii=False)
                   for item in items]

        def store(cache: Any) -> int:
            with cache.transact():
                for letter in letters:
                    cache.push(letter)
                return _trim(cache, self.max_dead_rows)

        with self._lock:
            dropped = self._dead.run(store)
        self.remove(items)
        return dropped

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter, oldest first."""

        def operation(cache: Any) -> list[DeadLetter]:
            letters = []
            for key in cache.iterkeys():
                text = cache.get(key)
                if text is None:
                    continue
                data = json.loads(str(text))
                letters.append(DeadLetter(data["row"], data["error"], data["time"]))
            return letters

        with self._lock:
            return self._dead.run(operation)

    def stats(self) -> QueueStats:
        def queue_stats(cache: Any) -> tuple[int, float | None, float | None]:
            first = next(cache.iterkeys(), None)
            last = next(cache.iterkeys(reverse=True), None)
            oldest = None if first is None else _row_time(cache.get(first))
            newest = None if last is None else _row_time(cache.get(last))
            return len(cache), oldest, newest

        with self._lock:
            rows, oldest, newest = self._queue.run(queue_stats)
            dead = self._dead.run(len)
            recoveries = self._queue.recoveries + self._dead.recoveries
        return QueueStats(rows, oldest, newest, dead, recoveries)

    def close(self) -> None:
        with self._lock:
            self._queue.close()
            self._dead.close()

    def __enter__(self) -> "DiskQueue":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _trim(cache: Any, max_rows: int) -> int:
    """Pull the oldest entries until at most `max_rows` remain (inside the caller's transaction)."""
    dropped = 0
    while len(cache) > max_rows:
        key, _ = cache.pull()
        if key is None:
            break
        dropped += 1
    return dropped
