"""`queue_view`: the queue read without writing, and `pvmonit-exporter queue` built on it (no key needed,
one line without permission, `--flush` on an empty queue sends nothing and says so)."""

import os
from pathlib import Path

import pytest

import pvmonit_exporter.commands.queue  # noqa: F401 - imported before a test drops root (see main_as_nobody)
from pvmonit_exporter.forwarder.queue import DiskQueue, QueueError
from pvmonit_exporter.forwarder.queue_view import read_queue_stats
from pvmonit_exporter.forwarder.snapshot import Row
from tests.config import assert_one_line_error, run_cli, run_cli_unprivileged, world_readable_dir
from tests.forwarder.fake_emoncms import READ_KEY, FakeEmoncms

NOW = 1_780_315_500


def rows(start: int, count: int) -> list[Row]:
    return [Row(NOW + 300 * i, "mppt", {"V": i}) for i in range(start, start + count)]


def tree(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under `directory`: (mode, mtime in ns, bytes)."""
    return {str(path.relative_to(directory)): (path.stat().st_mode, path.stat().st_mtime_ns,
                                               path.read_bytes() if path.is_file() else b"")
            for path in sorted(directory.rglob("*"))}


def filled_queue(queue_dir: Path) -> None:
    """A queue with rows and dead letters, closed cleanly (no -wal file left), as a stopped service leaves it."""
    with DiskQueue(queue_dir, 1000) as queue:
        queue.append(rows(0, 5))
        queue.bury(queue.peek(2), "refused", NOW)
    assert not (queue_dir / "cache.db-wal").exists()


def test_a_closed_queue_reads_as_diskqueue_reads_it_and_nothing_is_written(tmp_path: Path) -> None:
    queue_dir = tmp_path / "queue"
    filled_queue(queue_dir)
    before = tree(queue_dir)

    stats = read_queue_stats(queue_dir)

    assert tree(queue_dir) == before  # no -wal, -shm or settings written, nothing created
    with DiskQueue(queue_dir, 1000) as queue:
        assert stats == queue.stats()
    assert (stats.rows, stats.dead_rows, stats.oldest, stats.newest) == (3, 2, NOW + 600, NOW + 1200)


def test_a_queue_in_use_is_read_through_its_write_ahead_log(tmp_path: Path) -> None:
    queue_dir = tmp_path / "queue"
    with DiskQueue(queue_dir, 1000) as queue:
        queue.append(rows(0, 4))
        assert (queue_dir / "cache.db-wal").exists()  # the rows may still be only in the log
        stats = read_queue_stats(queue_dir)
        assert stats is not None
        assert (stats.rows, stats.oldest, stats.newest) == (4, NOW, NOW + 900)
        queue.append(rows(4, 1))
        assert read_queue_stats(queue_dir) == queue.stats()


def test_an_absent_queue_is_none_and_is_not_created(tmp_path: Path) -> None:
    assert read_queue_stats(tmp_path / "queue") is None
    assert not (tmp_path / "queue").exists()
    (tmp_path / "queue").mkdir()
    stats = read_queue_stats(tmp_path / "queue")
    assert stats is not None
    assert (stats.rows, stats.dead_rows) == (0, 0)
    assert list((tmp_path / "queue").iterdir()) == []


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_database_is_reported_and_left_as_it_is(tmp_path: Path, damage: str) -> None:
    with DiskQueue(tmp_path, 100_000) as queue:
        queue.append(rows(0, 3000))
    database = tmp_path / "cache.db"
    if damage == "garbage":
        database.write_bytes(b"this is not an sqlite database" * 200)
    else:
        with database.open("r+b") as file:
            file.truncate(database.stat().st_size // 2)
    before = tree(tmp_path)

    with pytest.raises(QueueError, match="left as it is"):
        read_queue_stats(tmp_path)

    assert tree(tmp_path) == before
    assert not list(tmp_path.glob("corrupt-*"))


# --- the command ---------------------------------------------------------------------------------------------


def write_config(directory: Path, url: str, queue_dir: Path, key_line: str) -> Path:
    config = directory / "config.yaml"
    config.write_text(f"devices:\n  - name: mppt\n    port: /dev/ttyUSB0\nemoncms:\n  url: {url}\n  {key_line}\n"
                      f"  queue_dir: {queue_dir}\n", encoding="utf-8")
    return config


@pytest.mark.slow
def test_showing_the_queue_needs_no_key(tmp_path: Path, fake: FakeEmoncms) -> None:
    """With the README's LoadCredential= set-up the key file is absent while the service is stopped."""
    queue_dir = tmp_path / "queue"
    filled_queue(queue_dir)
    absent = "/run/credentials/pvmonit-exporter.service/emoncms.key"
    config = write_config(tmp_path, fake.url, queue_dir, f"apikey_file: {absent}")

    result = run_cli("queue", "--config.file", str(config))

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "rows queued: 3\n" in result.stdout
    assert "dead letters: 2 " in result.stdout
    assert fake.recorded() == []
    flush = run_cli("queue", "--flush", "--config.file", str(config))  # sending does need it
    assert "emoncms.apikey_file: cannot read " in assert_one_line_error(flush, f"{config}:6: ")


@pytest.mark.slow
def test_showing_an_absent_queue_says_so(tmp_path: Path, fake: FakeEmoncms) -> None:
    config = write_config(tmp_path, fake.url, tmp_path / "queue", "apikey: 0123456789abcdef0123456789abcdef")
    result = run_cli("queue", "--config.file", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"queue: {tmp_path / 'queue'} does not exist yet (the forwarder creates it when it "
                             "first runs)\n")
    assert not (tmp_path / "queue").exists()


@pytest.mark.slow
def test_without_permission_one_line_suggests_sudo_and_nothing_changes(fake: FakeEmoncms) -> None:
    with world_readable_dir() as work:
        queue_dir = work / "queue"
        filled_queue(queue_dir)
        queue_dir.chmod(0o700)  # the service's StateDirectory is 0700, owned by its user
        config = write_config(work, fake.url, queue_dir, "apikey: 0123456789abcdef0123456789abcdef")
        config.chmod(0o644)
        before = tree(queue_dir)
        if os.geteuid() != 0:
            queue_dir.chmod(0o000)  # not root: deny this very user
        try:
            result = run_cli_unprivileged("queue", "--config.file", str(config), work=work)
        finally:
            queue_dir.chmod(0o700)
        after = tree(queue_dir)
    line = assert_one_line_error(result, f"{queue_dir}: permission denied: ")
    assert f"try: sudo pvmonit-exporter queue --config.file {config}" in line
    assert after == before


@pytest.mark.slow
@pytest.mark.parametrize("key", [READ_KEY, "ffffffffffffffffffffffffffffffff"])
def test_flushing_an_empty_queue_sends_nothing_and_does_not_vouch_for_the_key(tmp_path: Path, fake: FakeEmoncms,
                                                                               key: str) -> None:
    """Before, a wrong or read-only key got "sent: 0 rows" and exit 0, as if emoncms had taken it."""
    queue_dir = tmp_path / "queue"
    with DiskQueue(queue_dir, 100):
        pass
    config = write_config(tmp_path, fake.url, queue_dir, f"apikey: {key}")

    result = run_cli("queue", "--flush", "--config.file", str(config))

    assert result.returncode == 0, result.stderr
    assert result.stdout == (f"queue: {queue_dir} is empty: nothing was sent. To check the URL and the key: "
                             f"pvmonit-exporter check-config --emoncms --config.file {config}\n")
    assert "sent:" not in result.stdout
    assert fake.recorded() == []
