"""The disk queue: FIFO across restarts, the bound, dead letters, durable settings, disk errors, corruption."""

import logging
import sqlite3
from pathlib import Path

import diskcache
import pytest

from pvmonit_exporter.forwarder.queue import DiskQueue, QueueError
from pvmonit_exporter.forwarder.snapshot import Row


def rows(start: int, count: int, node: str = "mppt") -> list[Row]:
    return [Row(start + 300 * i, node, {"V": 26000 + i}) for i in range(count)]


def test_fifo_order_survives_a_restart(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, 100) as queue:
        queue.append(rows(1000, 3))
    with DiskQueue(tmp_path, 100) as queue:
        queue.append(rows(2000, 2))
        items = queue.peek(10)
        stats = queue.stats()

    assert [item.row.time for item in items if item.row] == [1000, 1300, 1600, 2000, 2300]
    assert (stats.rows, stats.oldest, stats.newest) == (5, 1000.0, 2300.0)


def test_remove_ignores_rows_already_gone(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, 100) as queue:
        queue.append(rows(0, 4))
        first_two = queue.peek(2)
        assert queue.remove(first_two) == 2
        assert queue.remove(first_two) == 0
        assert [item.row.time for item in queue.peek(10) if item.row] == [600, 900]


def test_a_row_queued_under_a_reused_key_is_not_removed(tmp_path: Path) -> None:
    """The daemon peeks a row; `queue --flush` (another process: another connection) sends and removes it; the
    next snapshot is queued under the same key (diskcache restarts its keys when the queue is empty); then the
    daemon's `ok` arrives. Removing by key alone would delete the new row, never sent."""
    with DiskQueue(tmp_path, 100) as daemon, DiskQueue(tmp_path, 100) as other:
        daemon.append(rows(0, 1))
        (peeked,) = daemon.peek(10)
        assert other.remove(other.peek(10)) == 1
        daemon.append(rows(300, 1))
        (queued,) = daemon.peek(10)
        assert queued.key == peeked.key  # the key really is reused

        assert daemon.remove([peeked]) == 0
        assert [item.row for item in daemon.peek(10)] == rows(300, 1)


def test_keys_are_reused_after_the_last_row_too_and_remove_checks_each_row(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, 100) as daemon, DiskQueue(tmp_path, 100) as other:
        daemon.append(rows(0, 3))
        peeked = daemon.peek(10)
        other.remove(other.peek(10)[1:])  # the newest two leave: the next key is the second one's again
        other.append(rows(5000, 1))

        assert daemon.remove(peeked) == 1  # only the first row is still the one peeked
        assert [item.row for item in daemon.peek(10)] == rows(5000, 1)
        assert [item.key for item in daemon.peek(10)] == [peeked[1].key]


def test_bury_leaves_a_row_queued_under_a_reused_key(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, 100) as daemon, DiskQueue(tmp_path, 100) as other:
        daemon.append(rows(0, 1))
        peeked = daemon.peek(10)
        other.remove(other.peek(10))
        other.append(rows(300, 1))

        daemon.bury(peeked, "Format error, json value is not numeric", 1.0)
        assert [item.row for item in daemon.peek(10)] == rows(300, 1)
        assert [letter.text for letter in daemon.dead_letters()] == ['[0,"mppt",{"V":26000}]']


def test_bound_drops_the_oldest_rows_and_says_how_many(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, 5) as queue:
        assert queue.append(rows(0, 4)) == 0
        assert queue.append(rows(1200, 3)) == 2
        assert [item.row.time for item in queue.peek(10) if item.row] == [600, 900, 1200, 1500, 1800]


def test_settings_make_every_commit_durable(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, 5) as queue:
        queue.append(rows(0, 1))
    connection = sqlite3.connect(tmp_path / "cache.db")
    try:
        settings = dict(connection.execute("SELECT key, value FROM Settings").fetchall())
        journal = connection.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        connection.close()

    # diskcache re-applies sqlite_* settings on every connection it opens.
    assert settings["sqlite_synchronous"] == 2
    assert settings["eviction_policy"] == "none"
    assert journal == "wal"


def test_dead_letters_are_kept_with_their_reason_and_bounded(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, 100, max_dead_rows=2) as queue:
        queue.append(rows(0, 4))
        items = queue.peek(4)
        assert queue.bury(items[:1], "Format error, json value is not numeric", 5.0) == 0
        assert queue.bury(items[1:3], "other", 6.0) == 1
        letters = queue.dead_letters()
        stats = queue.stats()

    assert [(letter.text, letter.error) for letter in letters] == [
        ('[300,"mppt",{"V":26001}]', "other"), ('[600,"mppt",{"V":26002}]', "other")]
    assert (stats.rows, stats.dead_rows) == (1, 2)
    assert (tmp_path / "dead" / "cache.db").exists()


def test_an_unreadable_entry_is_returned_without_a_row(tmp_path: Path) -> None:
    cache = diskcache.Cache(str(tmp_path))
    cache.push("garbage")
    cache.close()
    with DiskQueue(tmp_path, 10) as queue:
        queue.append(rows(0, 1))
        items = queue.peek(10)

    assert [(item.text, item.row is None) for item in items] == [("garbage", True),
                                                                 ('[0,"mppt",{"V":26000}]', False)]


def test_a_garbage_database_is_moved_aside_and_a_fresh_queue_started(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "cache.db").write_bytes(b"this is not an sqlite database" * 200)

    with DiskQueue(tmp_path, 10) as queue:
        queue.append(rows(0, 2))
        stats = queue.stats()

    assert (stats.rows, stats.recoveries) == (2, 1)
    (aside,) = tmp_path.glob("corrupt-*")
    assert (aside / "cache.db").read_bytes().startswith(b"this is not")
    assert any("unreadable" in r.getMessage() and str(aside) in r.getMessage() for r in caplog.records
               if r.levelno == logging.ERROR)


def test_a_damaged_page_found_later_is_recovered_too(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, 100_000) as queue:
        queue.append(rows(0, 2000))
    database = tmp_path / "cache.db"
    data = bytearray(database.read_bytes())
    data[8192:16384] = b"\xff" * 8192  # overwrite pages in the middle of the table
    database.write_bytes(bytes(data))

    with DiskQueue(tmp_path, 100_000) as queue:
        queue.peek(5000)
        queue.append(rows(10, 1))
        stats = queue.stats()

    assert stats.recoveries == 1
    assert stats.rows == 1
    assert list(tmp_path.glob("corrupt-*/cache.db"))


def test_a_full_disk_is_a_queue_error_and_changes_nothing(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, 100_000) as queue:
        queue.append(rows(0, 1))
    # A real SQLITE_FULL: cap the database's size in pages (diskcache re-applies this setting on every open).
    diskcache.Cache(str(tmp_path), sqlite_max_page_count=40).close()

    with DiskQueue(tmp_path, 100_000) as queue:
        error = None
        for start in range(0, 10_000_000, 50_000):
            try:
                queue.append(rows(start, 100))
            except QueueError as exc:
                error = exc
                break
        assert "database or disk is full" in str(error)
        before = queue.stats().rows
        with pytest.raises(QueueError):
            queue.append(rows(99_999_999, 100))
        after = queue.stats()

    assert after.rows == before  # the failed append was rolled back whole
    assert after.recoveries == 0  # a full disk is not a corrupt database: nothing moved aside


def test_a_queue_directory_that_cannot_be_created_is_a_queue_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with DiskQueue(tmp_path / "file" / "queue", 10) as queue, pytest.raises(QueueError, match="file"):
        queue.append(rows(0, 1))
