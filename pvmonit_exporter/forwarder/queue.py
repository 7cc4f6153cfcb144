"""A durable FIFO of rows on diskcache (SQLite), bounded, with a dead-letter store and corrupt-database recovery.

Layout of `queue_dir`: `cache.db` (+ `-wal`, `-shm`) holds the queue, one entry per row, under diskcache's
increasing integer keys (push order = time order); `reserve` is room kept for a full disk (below); `dead/` is a
second store for rows emoncms rejected for their content; `corrupt-<time>/` directories hold databases that
could not be read, kept for a human to look at.

Durability: an `append` that returned has been committed with SQLite in WAL mode and `synchronous=FULL`, so
the row survives kill -9 and power loss. Rows are removed only after emoncms said `ok`, so a crash between
sending and removing resends the batch (at-least-once; emoncms overwrites the same timestamp).

Keys are reused: diskcache numbers a new entry max(key) + 1, or restarts at the same first key when the queue
is empty. So a row is removed only while its key still holds the very text that was peeked (checked inside the
deleting transaction): when another process removed that row meanwhile and a new row was queued under the same
key, the new row stays.

Every operation either completes or raises `QueueError` (disk full, read-only, I/O error) having changed
nothing; a database SQLite reports as corrupt, and that a fresh connection's integrity check confirms damaged,
is moved aside, logged, and the operation is retried once on a fresh, empty queue, so a damaged file never
stops the exporter. The check keeps a healthy database where it is when an I/O error only looked like
corruption. A database file that is empty or shorter than its header says (truncated) is moved aside the same
way when it is opened: SQLite would read it as an empty or shorter queue without a word.

Before every operation the store checks that `queue_dir` and `cache.db` are still the directory and file it
opened (device and inode): when someone deletes or replaces them under the running daemon, SQLite would go on
writing into the deleted files and every row queued after that would be lost at the next restart. Instead it
says so once at ERROR and opens (creating if needed) the queue now at that path.

Disk full: SQLite needs room even to delete (the WAL grows by the pages a delete changes), so a queue that
filled the disk itself, or shares it with logs that did, could not delete the rows emoncms accepted, and the
space would never come back. `reserve` (1 MiB, allocated for real) is kept in `queue_dir` for that: when a
delete fails for want of room, the reserve is deleted, the delete retried in its room, and the WAL checkpointed
and truncated, which gives back the space the queue's rows took; the reserve is made again as soon as there is
room. Should even that fail (no reserve left), a row emoncms accepted but that cannot be deleted is remembered
in memory as sent: `peek` skips it and `stats` does not count it, so it is never sent twice by this process,
and every later `remove` (or `retry_removals`) deletes it again; once that succeeds, the WAL is checkpointed.
A restart forgets that memory: those rows are then sent again (emoncms overwrites the same timestamps).

A read that comes back short (a failing SD card) makes SQLite fill the rest of the page with zeros: SQLite
then reports the page malformed, or diskcache trips over a row that is not there (a `ValueError`). Either is
a `QueueError` like any failed read, and the connection that misread is closed, so that the page is read
again from the disk next time instead of from that connection's cache.

The `queue` command does not open a DiskQueue: it reads without writing (`queue_view`). `close()` is final: a
closed queue refuses every operation rather than reopening its files.
"""

import contextlib
import errno
import itertools
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import diskcache

from pvmonit_exporter.forwarder.snapshot import Row, decode_row, encode_row
from pvmonit_exporter.forwarder.stats import QueueStats

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEAD_DIR = "dead"
RESERVE_FILE = "reserve"
RESERVE_BYTES = 1 << 20  # room to delete a batch of sent rows and checkpoint the WAL on a full disk
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
_SQLITE_IOERR, _SQLITE_FULL = 10, 13
_FULL_BELOW = 64 * 1024  # free bytes under which an I/O error is taken for a full disk
# What diskcache raises when a read came back short and SQLite filled the rest of the page with zeros: a row
# it expected is missing (`((value,),) = …` → ValueError), a column is None (TypeError)…
_MISREAD = (ValueError, TypeError, AttributeError, KeyError, IndexError)
_SQLITE_HEADER = b"SQLite format 3\x00"
_HEADER_BYTES = 100


class QueueError(Exception):
    """The queue's storage cannot be used now (disk full, read-only, I/O error); nothing was changed.
    `full`: the disk had no room (SQLITE_FULL, ENOSPC)."""

    def __init__(self, message: str, *, full: bool = False) -> None:
        super().__init__(message)
        self.full = full


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


def _is_full(exc: BaseException, directory: Path) -> bool:
    """True when `exc` is the disk having no room: SQLITE_FULL, ENOSPC, or an I/O error where not a page is free
    (SQLite says "disk I/O error" when it cannot make its -shm file on a full disk)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return False
    if code & 0xFF == _SQLITE_FULL:
        return True
    try:
        room = os.statvfs(directory)
    except OSError:
        return False
    return code & 0xFF == _SQLITE_IOERR and room.f_bavail * room.f_frsize < _FULL_BELOW


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    """True for a damaged or foreign database file; False for a disk that refuses (full, read-only, I/O)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return not isinstance(exc, sqlite3.OperationalError)
    return code & 0xFF in (_SQLITE_ERROR, _SQLITE_CORRUPT, _SQLITE_NOTADB)


def truncation(database: Path) -> str | None:
    """Why `database` is cut short (empty, or shorter than its header says), or None when it is not.

    SQLite takes an empty file for a new, empty database and a truncated one for a shorter one: neither is an
    empty queue. An empty file beside a WAL holding data is a database never checkpointed yet, not a truncated
    one; a file that is not SQLite at all is left to SQLite, which refuses it itself."""
    try:
        size = database.stat().st_size
        if size == 0:
            wal = database.with_name(database.name + "-wal")
            return None if wal.exists() and wal.stat().st_size else "it is empty (0 bytes)"
        with database.open("rb") as file:
            header = file.read(_HEADER_BYTES)
    except FileNotFoundError:
        return None
    if not header.startswith(_SQLITE_HEADER[:size]):
        return None
    if size < _HEADER_BYTES:
        return f"it is {size} bytes, shorter than SQLite's {_HEADER_BYTES}-byte header"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    header_current = header[92:96] == header[24:28]  # else the page count predates a legacy writer's change
    if header_current and size < pages * page_size:
        return f"it is {size} bytes where its header says {pages * page_size} ({pages} pages): truncated"
    return None


def confirmed_damage(database: Path) -> str | None:
    """What a fresh read-only connection's `PRAGMA quick_check` finds wrong with `database`; None when it finds
    nothing or cannot tell (an I/O error now is no proof that the file is damaged)."""
    try:
        uri = database.absolute().as_uri() + "?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=10.0)) as connection:
            problems = [str(line) for (line,) in connection.execute("PRAGMA quick_check(3)").fetchall()]
    except sqlite3.DatabaseError as exc:
        return str(exc) if _is_corrupt(exc) else None
    return None if problems == ["ok"] else "; ".join(problems)


def _identity(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_dev, info.st_ino


class _Store:
    """One diskcache directory: opened on first use, re-opened when its directory or database file was deleted
    or replaced, re-created after a damaged database is moved aside."""

    def __init__(self, directory: Path, what: str, timeout: float) -> None:
        self.directory = directory
        self.database = directory / _DB_FILES[0]
        self.what = what
        self.timeout = timeout
        self.recoveries = 0
        self.reopenings = 0  # times the directory or database was found deleted or replaced
        self._cache: Any = None
        self._opened: tuple[tuple[int, int], tuple[int, int]] | None = None  # (directory, database) identities
        self._closed = False

    def run(self, operation: Callable[[Any], T]) -> T:
        if self._closed:
            raise QueueError(f"{self.what} {self.directory} is closed")
        for attempt in (1, 2):
            try:
                self._open()
                return operation(self._cache)
            except sqlite3.DatabaseError as exc:
                if attempt == 1 and _is_corrupt(exc):
                    if damage := confirmed_damage(self.database):
                        self._move_aside(f"{exc}; integrity check: {damage}")
                        continue
                    # The file is whole: a read failed. The connection may keep the page it misread in its
                    # cache, so the next operation starts from a fresh one.
                    self._close_cache()
                raise QueueError(f"{self.what} {self.directory}: {exc}", full=_is_full(exc, self.directory)) from exc
            except _MISREAD as exc:
                # Not a bug of ours: diskcache read a page that came back short. Kept, the connection would
                # serve that page from its cache to every later operation of this thread, which would all
                # fail the same way for good; so this is a failed read like SQLite's own.
                message = f"a read of the database came back damaged ({type(exc).__name__}: {exc})"
                if attempt == 1 and (damage := confirmed_damage(self.database)):
                    self._move_aside(f"{message}; integrity check: {damage}")
                    continue
                self._close_cache()
                raise QueueError(f"{self.what} {self.directory}: {message}") from exc
            except (OSError, diskcache.Timeout) as exc:
                detail = str(exc) or "the database stayed locked or read-only"
                raise QueueError(f"{self.what} {self.directory}: {detail}", full=_is_full(exc, self.directory)) from exc
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _open(self) -> None:
        if self._cache is not None and self._opened is not None:
            if (change := self._changed(self._opened)) is None:
                return
            self._close_cache()
            self.reopenings += 1
            logger.error("%s: %s while in use; opening the queue now at %s (creating it if needed) — rows only in "
                         "the old one are not sent", self.what, change, self.directory)
        if (cut := truncation(self.database)) is not None:
            self._move_aside(cut)
        try:
            self._cache = diskcache.Cache(str(self.directory), timeout=self.timeout, **_SETTINGS)
        except (AttributeError, TypeError, ValueError) as exc:
            # diskcache reading a settings table that came back damaged (a misread page, a corrupt file)
            raise sqlite3.DatabaseError(f"its settings are unreadable ({type(exc).__name__}: {exc})") from exc
        try:
            self._opened = (_identity(self.directory), _identity(self.database))
        except OSError:
            self._close_cache()
            raise

    def _changed(self, identities: tuple[tuple[int, int], tuple[int, int]]) -> str | None:
        """How the directory and database file opened (`identities`) differ from what is at their paths now."""
        for path, opened in zip((self.directory, self.database), identities, strict=True):
            try:
                if _identity(path) != opened:
                    return f"{path} was replaced"
            except FileNotFoundError:
                return f"{path} was deleted"
        return None

    def _move_aside(self, reason: str) -> None:
        self._close_cache()
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
            raise QueueError(f"{self.what} {self.directory} is unreadable ({reason}) and could not be moved "
                             f"aside: {move_error}") from move_error
        self.recoveries += 1
        logger.error("%s database in %s is unreadable (%s): moved it to %s and started an empty one; "
                     "its rows will not be sent", self.what, self.directory, reason, target)

    def checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it: gives back the space a full disk kept."""
        with closing(sqlite3.connect(self.database, timeout=self.timeout)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def forget(self) -> None:
        """Close the files without a word: the caller knows they were deleted or replaced."""
        self._close_cache()

    def release_thread(self) -> None:
        """Close the calling thread's connection, keeping the others: diskcache opens one per thread and closes
        only the caller's, and an ended thread's stays open (two descriptors and a page cache) until a garbage
        collection happens to run."""
        if self._cache is not None:
            self._cache.close()

    def _close_cache(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None
            self._opened = None

    def close(self) -> None:
        """Close for good: later operations raise `QueueError` instead of reopening the files."""
        self._close_cache()
        self._closed = True


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
        # Rows emoncms accepted whose delete failed (disk full), by key: sent, still to delete (module docstring).
        self._unremoved: dict[int, str] = {}
        self._reserve_missing = True  # made at the first append or remove that succeeds
        self._reserve_releases = 0
        self._reopenings = 0  # `_queue.reopenings` when `_unremoved` was last known to match its database

    def append(self, rows: Sequence[Row]) -> int:
        """Queue `rows` durably, in order; returns how many of the oldest rows were dropped for the bound."""
        texts = [encode_row(row) for row in rows]

        def operation(cache: Any) -> int:
            with cache.transact():
                for text in texts:
                    cache.push(text)
                return _trim(cache, self.max_rows)

        with self._lock:
            self._run(lambda cache: None)  # opens the queue, creating its directory
            if not self._keep_reserve():
                raise QueueError(f"emoncms queue {self.directory}: the disk is full (its last {RESERVE_BYTES // 1024} "
                                 "KiB are kept to send and delete the rows queued)", full=True)
            return self._run(operation)

    def peek(self, limit: int) -> list[QueuedRow]:
        """The oldest `limit` rows, oldest first, left in the queue (rows sent but not yet deleted skipped)."""

        def operation(cache: Any) -> list[QueuedRow]:
            items: list[QueuedRow] = []
            for key in cache.iterkeys():
                if len(items) >= limit:
                    break
                text = cache.get(key)
                if text is None or self._unremoved.get(int(key)) == text:  # gone, or sent and not yet deleted
                    continue
                try:
                    row: Row | None = decode_row(str(text))
                except ValueError:
                    row = None
                items.append(QueuedRow(int(key), str(text), row))
            return items

        with self._lock:
            return self._run(operation, frees=True)

    def remove(self, items: Iterable[QueuedRow]) -> int:
        """Delete the peeked `items` in one transaction; returns how many were deleted.

        An item is deleted only if its key still holds the text it was peeked with: a key that is gone (another
        process removed the row) or that now holds another row (queued since, under the reused key) is left
        alone — deleting by key alone would lose that new row unsent.
        """
        wanted = {item.key: item.text for item in items}
        with self._lock:
            return self._remove(wanted)[0]

    def retry_removals(self) -> int:
        """Delete the rows sent earlier whose delete failed; returns how many were deleted."""
        with self._lock:
            return self._remove({})[1] if self._unremoved else 0

    def _remove(self, wanted: Mapping[int, str]) -> tuple[int, int]:
        """Delete `wanted` and the rows whose delete failed before; remember `wanted` as sent when it fails.
        Returns how many of each were deleted."""
        try:
            self._run(lambda cache: None, frees=True)  # a queue found replaced forgets what it was to delete
        except QueueError:
            self._unremoved.update(wanted)
            raise
        earlier = {key: text for key, text in self._unremoved.items() if key not in wanted}

        def delete(cache: Any, rows: Mapping[int, str]) -> int:
            removed = 0
            for key, text in rows.items():
                if cache.get(key) == text:
                    cache.delete(key)
                    removed += 1
            return removed

        def operation(cache: Any) -> tuple[int, int]:
            with cache.transact():  # BEGIN IMMEDIATE: no other process writes between the read and the delete
                return delete(cache, wanted), delete(cache, earlier)

        try:
            removed = self._run(operation, frees=True)
        except QueueError:
            self._unremoved.update(wanted)
            raise
        self._unremoved.clear()
        if earlier:
            logger.info("emoncms queue: deleted the %d rows sent while the disk refused it", len(earlier))
        if earlier or self._reserve_missing:  # the disk was full: the space is in the WAL now, give it back
            try:
                self._run(lambda cache: self._queue.checkpoint())
            except QueueError as exc:  # the rows are deleted; the WAL is checkpointed at a later commit
                logger.warning("emoncms queue: could not checkpoint its WAL: %s", exc)
        self._keep_reserve()
        return removed

    def _keep_reserve(self) -> bool:
        """Make sure the reserve file exists (module docstring); False when the disk has no room for it (try
        again later). A file system that cannot hold one (read-only…) is no reason to refuse rows: True."""
        if not self._reserve_missing:
            return True
        reserve = self.directory / RESERVE_FILE
        try:
            descriptor = os.open(reserve, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(descriptor, 0, RESERVE_BYTES)
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        except OSError as exc:
            with contextlib.suppress(OSError):  # a part-made reserve would hold the last free blocks
                reserve.unlink(missing_ok=True)
            return exc.errno not in (errno.ENOSPC, errno.EDQUOT)
        self._reserve_missing = False
        return True

    def _release_reserve(self) -> bool:
        """Delete the reserve file to make room for deleting rows on a full disk; False when there is none."""
        try:
            (self.directory / RESERVE_FILE).unlink()
        except OSError:
            return False
        finally:
            self._reserve_missing = True
        self._reserve_releases += 1
        logger.warning("emoncms queue: the disk is full: released the %d KiB kept in %s, to read the queue and "
                       "delete the rows emoncms accepted (made again once there is room)", RESERVE_BYTES // 1024,
                       self.directory / RESERVE_FILE)
        return True

    def _run(self, operation: Callable[[Any], T], *, frees: bool = False) -> T:
        """`operation` on the queue store. When the store had to be reopened (its directory deleted or
        replaced), the rows still to delete are forgotten and the dead-letter store, inside that directory, is
        reopened too, without a second ERROR for the same event.

        `frees`: the operation leads to space given back (opening, reading, deleting — not queueing more): on a
        full disk, it is tried again in the room of the reserve."""
        try:
            try:
                return self._queue.run(operation)
            except QueueError as exc:
                if frees and exc.full and self._release_reserve():
                    return self._queue.run(operation)
                raise
        finally:
            if self._queue.reopenings != self._reopenings:
                self._reopenings = self._queue.reopenings
                self._unremoved.clear()
                self._reserve_missing = True
                self._dead.forget()

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
            self._run(lambda cache: None)  # notices a deleted or replaced directory before the dead letters do
            dropped = self._dead.run(store)
            self._remove({item.key: item.text for item in items})
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
            self._run(lambda cache: None)  # notices a deleted or replaced directory before the dead letters do
            return self._dead.run(operation)

    def stats(self) -> QueueStats:
        def waiting(cache: Any, keys: Iterable[int]) -> float | None:
            """The time of the first row in `keys` that waits to be sent."""
            for key in keys:
                text = cache.get(key)
                if text is not None and self._unremoved.get(int(key)) != text:
                    return _row_time(text)
            return None

        def queue_stats(cache: Any) -> tuple[int, float | None, float | None]:
            rows = len(cache) - sum(1 for key, text in self._unremoved.items() if cache.get(key) == text)
            return rows, waiting(cache, cache.iterkeys()), waiting(cache, cache.iterkeys(reverse=True))

        with self._lock:
            rows, oldest, newest = self._run(queue_stats, frees=True)
            dead = self._dead.run(len)
            recoveries = self._queue.recoveries + self._dead.recoveries
        return QueueStats(rows, oldest, newest, dead, recoveries, self._reserve_releases)

    def release_thread(self) -> None:
        """For a thread that is ending: close its own connections to the queue (see `_Store.release_thread`)."""
        with self._lock:
            self._queue.release_thread()
            self._dead.release_thread()

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
