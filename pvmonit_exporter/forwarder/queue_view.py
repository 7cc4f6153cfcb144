"""The emoncms queue read without writing a byte, for `pvmonit-exporter queue`.

That command is often run with sudo beside a service that owns the queue as another user. Opening the queue
as `DiskQueue` does would create the directory and database when they are absent, write diskcache's settings,
leave `-wal` and `-shm` files owned by root that the service then cannot open, and move a damaged database
aside. Here SQLite opens `cache.db` read-only: as `immutable` when there is no write-ahead log (no writer: the
file is the whole queue, and SQLite creates nothing beside it), else read-only through the writer's own log.

It reads diskcache's table as `DiskQueue` writes it: table `Cache`, one entry per row under increasing integer
keys, the row's text in `value`. tests/forwarder/test_queue_view.py compares both readings of one directory.
"""

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from pvmonit_exporter.forwarder.queue import DEAD_DIR, QueueError, truncation
from pvmonit_exporter.forwarder.snapshot import decode_row
from pvmonit_exporter.forwarder.stats import QueueStats

DATABASE = "cache.db"


class QueueAccessError(QueueError):
    """This user may not read the queue (it belongs to the service's user)."""


def read_queue_stats(directory: Path) -> QueueStats | None:
    """The queue's figures, or None when `directory` does not exist (the forwarder has not run yet)."""
    try:
        os.listdir(directory)
    except FileNotFoundError:
        return None
    except PermissionError:
        raise QueueAccessError(f"{directory}: permission denied") from None
    except OSError as exc:
        raise QueueError(f"{directory}: {exc.strerror or exc}") from None
    rows, oldest, newest = 0, None, None
    with _reading(directory / DATABASE) as connection:
        if connection is not None:
            (rows,) = connection.execute("SELECT COUNT(*) FROM Cache").fetchone()
            oldest = _row_time(connection, "ASC")
            newest = _row_time(connection, "DESC")
    dead_rows = 0
    with _reading(directory / DEAD_DIR / DATABASE) as connection:
        if connection is not None:
            (dead_rows,) = connection.execute("SELECT COUNT(*) FROM Cache").fetchone()
    return QueueStats(rows, oldest, newest, dead_rows, recoveries=0)


@contextmanager
def _reading(database: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to `database`, or None when it does not exist; every error is a QueueError."""
    try:
        with database.open("rb"):  # SQLite itself would only say "unable to open database file"
            pass
    except FileNotFoundError:
        yield None
        return
    except PermissionError:
        raise QueueAccessError(f"{database}: permission denied") from None
    except OSError as exc:
        raise QueueError(f"{database}: {exc.strerror or exc}") from None
    if (cut := truncation(database)) is not None:
        raise QueueError(f"{database} is damaged ({cut}); left as it is")
    writing = database.with_name(database.name + "-wal").exists()
    mode = "ro" if writing else "ro&immutable=1"
    try:
        with closing(sqlite3.connect(f"{database.as_uri()}?mode={mode}", uri=True, timeout=10.0)) as connection:
            yield connection
    except sqlite3.DatabaseError as exc:
        raise QueueError(f"{database}: {exc}; left as it is") from None


def _row_time(connection: sqlite3.Connection, order: str) -> float | None:
    """The time of the first (ASC) or last (DESC) row; None when empty or unreadable as a row."""
    query = f"SELECT value FROM Cache ORDER BY key {order}, raw {order} LIMIT 1"  # noqa: S608 - ASC or DESC
    found = connection.execute(query).fetchone()
    if found is None:
        return None
    try:
        return float(decode_row(str(found[0])).time)
    except ValueError:
        return None
