"""The disk queue: FIFO across restarts, the bound, dead letters, durable settings, disk errors, corruption."""

import logging
import shutil
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import diskcache
import pytest

from pvmonit_exporter.forwarder.queue import RESERVE_FILE, DiskQueue, QueueError, _Store, truncation
from pvmonit_exporter.forwarder.snapshot import Row
from tests.forwarder.conftest import fill_up


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


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]


def test_a_queue_directory_deleted_while_in_use_is_recreated_and_nothing_queued_after_is_lost(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    queue_dir = tmp_path / "queue"
    with DiskQueue(queue_dir, 100) as queue:
        queue.append(rows(0, 2))
        shutil.rmtree(queue_dir)  # an operator cleaning up, a tmpfiles rule…
        queue.append(rows(600, 3))
        queue.append(rows(1500, 1))
        assert queue.stats().rows == 4

    with DiskQueue(queue_dir, 100) as restarted:  # after a restart: the rows queued since are there
        assert [item.row for item in restarted.peek(10)] == rows(600, 3) + rows(1500, 1)
    (error,) = errors(caplog)  # said once, at ERROR
    assert f"{queue_dir} was deleted while in use" in error


def test_a_queue_directory_replaced_while_in_use_is_used_from_then_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    queue_dir = tmp_path / "queue"
    with DiskQueue(queue_dir, 100) as queue:
        queue.append(rows(0, 1))
        queue_dir.rename(tmp_path / "queue.old")
        queue_dir.mkdir()  # a new, empty directory under the same name
        queue.append(rows(300, 1))

    with DiskQueue(queue_dir, 100) as restarted:
        assert [item.row for item in restarted.peek(10)] == rows(300, 1)
    (error,) = errors(caplog)
    assert "was replaced while in use" in error


@pytest.mark.parametrize("cut", [lambda whole: 0, lambda whole: 60, lambda whole: whole // 2],
                         ids=["empty", "inside-the-header", "half"])
def test_an_empty_or_truncated_database_is_moved_aside_not_read_as_empty(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, cut: Callable[[int], int]) -> None:
    with DiskQueue(tmp_path, 100_000) as queue:
        queue.append(rows(0, 3000))
    database = tmp_path / "cache.db"
    size = cut(database.stat().st_size)
    with database.open("r+b") as file:
        file.truncate(size)

    with DiskQueue(tmp_path, 100_000) as queue:
        stats = queue.stats()

    assert (stats.rows, stats.recoveries) == (0, 1)
    (aside,) = tmp_path.glob("corrupt-*")
    assert (aside / "cache.db").stat().st_size == size
    (error,) = errors(caplog)
    assert "is unreadable" in error
    assert str(aside) in error


def test_a_database_written_whole_is_not_taken_for_truncated(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, 100_000) as queue:
        queue.append(rows(0, 3000))
        queue.remove(queue.peek(2990))  # free pages stay in the file: it is longer than needed, not shorter
    assert truncation(tmp_path / "cache.db") is None
    (tmp_path / "other").write_bytes(b"not sqlite")
    assert truncation(tmp_path / "other") is None  # SQLite refuses it itself
    assert truncation(tmp_path / "missing.db") is None


def test_a_healthy_database_is_not_moved_aside_for_an_error_that_only_looks_like_corruption(
        tmp_path: Path) -> None:
    """An I/O error can surface as "database disk image is malformed" while the file is whole: a fresh
    connection's integrity check tells them apart. The error here is SQLite's own, from reading a damaged
    database elsewhere, while the queue's own database is sound."""
    damaged = tmp_path / "damaged.db"
    with DiskQueue(tmp_path / "elsewhere", 100_000) as other:
        other.append(rows(0, 2000))
    data = bytearray((tmp_path / "elsewhere" / "cache.db").read_bytes())
    data[8192:16384] = b"\xff" * 8192
    damaged.write_bytes(bytes(data))
    queue_dir = tmp_path / "queue"
    with DiskQueue(queue_dir, 100) as queue:
        queue.append(rows(0, 3))
    store = _Store(queue_dir, "emoncms queue", 10.0)

    def read_the_damaged_one(cache: object) -> None:
        with closing(sqlite3.connect(damaged)) as connection:
            connection.execute("SELECT * FROM Settings").fetchall()

    with pytest.raises(QueueError, match="malformed"):
        store.run(read_the_damaged_one)
    store.close()

    assert not list(queue_dir.glob("corrupt-*"))
    assert store.recoveries == 0
    with DiskQueue(queue_dir, 100) as queue:
        assert queue.stats().rows == 3


@pytest.mark.slow
def test_a_read_that_fails_once_does_not_move_a_healthy_database_aside(
        flaky_disk: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    """A real I/O fault: one read of the database comes back short (a failing SD card), which SQLite reports as
    "database disk image is malformed" although the file is whole. The queue must not move it aside."""
    mount, fault = flaky_disk
    queue_dir = mount / "queue"
    with DiskQueue(queue_dir, 100_000) as queue:
        queue.append(rows(0, 3000))

    with DiskQueue(queue_dir, 100_000) as queue:
        assert queue.stats().rows == 3000  # opened before the fault: diskcache has read its settings
        fault.touch()
        with pytest.raises(QueueError, match="malformed"):
            queue.peek(5000)
        assert not fault.exists()  # the fault did happen, once
        assert [item.row for item in queue.peek(5000)] == rows(0, 3000)  # the next read is fine: nothing lost
        assert queue.stats().recoveries == 0

    assert not list(queue_dir.glob("corrupt-*"))
    assert errors(caplog) == []


@pytest.mark.slow
def test_a_read_that_fails_once_while_opening_is_one_queue_error(flaky_disk: tuple[Path, Path]) -> None:
    """The misread page is diskcache's settings table, read when the queue opens: diskcache then fails with an
    AttributeError, which must become a QueueError like any unreadable database (one log line, no traceback)."""
    mount, fault = flaky_disk
    queue_dir = mount / "queue"
    with DiskQueue(queue_dir, 100_000) as queue:
        queue.append(rows(0, 3000))
    fault.touch()

    with DiskQueue(queue_dir, 100_000) as queue:
        with pytest.raises(QueueError, match="settings are unreadable"):
            queue.peek(1)
        assert not fault.exists()
        assert [item.row for item in queue.peek(2)] == rows(0, 2)

    assert not list(queue_dir.glob("corrupt-*"))


def test_a_closed_queue_is_never_reopened(tmp_path: Path) -> None:
    queue = DiskQueue(tmp_path / "queue", 100)
    queue.append(rows(0, 1))
    queue.close()
    shutil.rmtree(tmp_path / "queue")

    for operation in (lambda: queue.append(rows(300, 1)), lambda: queue.peek(1), queue.stats):
        with pytest.raises(QueueError, match="is closed"):
            operation()
    assert not (tmp_path / "queue").exists()


@pytest.mark.slow
def test_rows_sent_on_a_full_disk_are_never_peeked_again_and_deleted_once_space_returns(
        small_disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    queue_dir = small_disk / "queue"
    with DiskQueue(queue_dir, 100_000) as queue:
        queue.append(rows(0, 30))
        with closing(sqlite3.connect(queue_dir / "cache.db")) as connection:  # an empty WAL: a delete needs space
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert queue.stats().dead_rows == 0  # the dead-letter store exists before the disk fills up
        (queue_dir / RESERVE_FILE).unlink()  # used up already: memory is the last resort
        filler = fill_up(small_disk)
        sent = queue.peek(10)  # emoncms accepted these…

        with pytest.raises(QueueError, match="database or disk is full"):
            queue.remove(sent)  # …but they cannot be deleted

        assert [item.row for item in queue.peek(100)] == rows(0, 30)[10:]  # never handed out again
        assert queue.stats().rows == 20
        assert queue.stats().oldest == 3000
        with pytest.raises(QueueError):
            queue.retry_removals()
        filler.unlink()  # space returns
        assert queue.retry_removals() == 10
        assert queue.stats().rows == 20
        assert (queue_dir / "cache.db-wal").stat().st_size == 0  # checkpointed: the space is given back
    with DiskQueue(queue_dir, 100_000) as restarted:
        assert [item.row for item in restarted.peek(100)] == rows(0, 30)[10:]
    assert any("deleted the 10 rows sent while the disk refused it" in r.getMessage() for r in caplog.records)


def test_a_damaged_database_in_a_relative_queue_dir_is_moved_aside_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # `queue_dir: queue` in a configuration, relative to the working directory
    Path("queue").mkdir()
    (tmp_path / "queue" / "cache.db").write_bytes(b"this is not an sqlite database" * 200)

    with DiskQueue(Path("queue"), 10) as queue:
        queue.append(rows(0, 1))
        assert queue.stats().recoveries == 1
