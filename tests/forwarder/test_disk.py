"""The queue's disk failing under the forwarder's two threads: one short read (the FUSE fault model of
`flaky_fs.py`, aimed at one thread), a disk the queue filled itself, a restart on a full disk (a real 4 MiB
tmpfs). Neither thread may end or stall; each change of the disk's state is one log line."""

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pvmonit_exporter.forwarder.queue import RESERVE_FILE, DiskQueue, QueueError
from pvmonit_exporter.forwarder.snapshot import Row
from tests.forwarder.conftest import MPPT_BLOCK, START, Rig, fill_up
from tests.forwarder.fake_emoncms import FakeEmoncms
from tests.helpers import wait_for

MakeRig = Callable[..., Rig]


def mppt(step: int) -> dict[str, str]:
    return {**MPPT_BLOCK, "V": str(26000 + step)}


def thread_id(name: str) -> int:
    """The kernel's id of the forwarder thread called `name`: what the FUSE fault file names."""
    ids = [thread.native_id for thread in threading.enumerate() if thread.name == name]
    assert len(ids) == 1, f"no thread {name}"
    assert ids[0] is not None
    return ids[0]


def lines(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level and text in r.getMessage()]


def backlog(count: int) -> list[Row]:
    return [Row(int(START) - 300 * (count - i), "old", {"v": i}) for i in range(count)]


@pytest.mark.slow
def test_one_short_read_under_the_snapshot_thread_costs_no_snapshot(
        flaky_disk: tuple[Path, Path], make_rig: MakeRig, fake: FakeEmoncms,
        caplog: pytest.LogCaptureFixture) -> None:
    """Before: diskcache's `ValueError` (a row missing from the misread page) stayed in the thread's connection
    cache, so every later snapshot failed the same way: 10 of 10 lost, uncounted."""
    caplog.set_level(logging.INFO)
    mount, fault = flaky_disk
    with DiskQueue(mount / "queue", 100_000) as queue:  # pages beyond the first for the fault to hit
        queue.append(backlog(3000))
    rig = make_rig(queue_dir=mount / "queue")
    rig.forwarder.start()
    rig.tick({"mppt": mppt(0)}, wait_for)
    wait_for(lambda: rig.forwarder.status().queue_rows == 0)
    fault.write_text(str(thread_id("emoncms-snapshots")))

    ticks = [rig.tick({"mppt": mppt(step)}, wait_for) for step in range(1, 11)]
    wait_for(lambda: rig.forwarder.status().rows_sent_total == 3011)

    assert not fault.exists()  # the snapshot thread did read short, once
    status = rig.forwarder.status()
    assert status.rows_dropped_total["disk_error"] == 0
    assert status.errors_total["disk"] == 1
    assert [(p.time, p.value) for p in fake.stored() if p.input == "V"][1:] == [
        (int(tick), 26000.0 + step) for step, tick in enumerate(ticks, start=1)]
    assert len(lines(caplog, logging.ERROR, "cannot queue snapshots")) == 1
    assert len(lines(caplog, logging.INFO, "queueing snapshots works again")) == 1


@pytest.mark.slow
def test_one_short_read_under_the_flush_thread_then_every_row_is_sent(
        flaky_disk: tuple[Path, Path], make_rig: MakeRig, fake: FakeEmoncms,
        caplog: pytest.LogCaptureFixture) -> None:
    """Before: the `ValueError` came out of the figures read after a failed send and ended the flush thread:
    0 of 3002 rows sent once emoncms answered again."""
    caplog.set_level(logging.INFO)
    mount, fault = flaky_disk
    with DiskQueue(mount / "queue", 100_000) as queue:
        queue.append(backlog(3000))
    rig = make_rig(queue_dir=mount / "queue")
    fake.fail_status = 503
    fake.hold = threading.Event()  # the flush thread waits in its first request…
    rig.forwarder.start()
    wait_for(fake.recorded)
    rig.tick({"mppt": mppt(0)}, wait_for)  # …while another connection writes: it reads afresh after the answer
    fault.write_text(str(thread_id("emoncms-flush")))
    fake.hold.set()
    wait_for(lambda: not fault.exists())  # the flush thread did read short, once
    fake.hold, fake.fail_status = None, None  # emoncms answers again
    # The backlog is sent before the clock moves on: a request in flight across the jump would be stored one
    # interval late (`Rig.tick`).
    wait_for(lambda: rig.forwarder.status().rows_sent_total == 3001)

    rig.tick({"mppt": mppt(1)}, wait_for)
    wait_for(lambda: rig.forwarder.status().rows_sent_total == 3002)

    assert rig.forwarder.status().queue_rows == 0
    assert rig.forwarder.status().errors_total["disk"] == 1
    assert len({(p.node, p.time) for p in fake.stored()}) == 3002
    assert "emoncms-flush" in {thread.name for thread in threading.enumerate()}
    assert len(lines(caplog, logging.ERROR, "emoncms queue: ")) == 1
    assert len(lines(caplog, logging.INFO, "sending the queue works again")) == 1


def fill_with_queue(queue_dir: Path) -> int:
    """Queue snapshots of 20 devices until the disk is full, as a long outage does; returns the rows queued."""
    queued = 0
    with DiskQueue(queue_dir, 1_000_000) as queue:
        for step in range(100_000):
            try:
                queue.append([Row(int(START) - 86_400 + step, f"d{i}", {"V": step, "I": i}) for i in range(20)])
            except QueueError as exc:
                refusal = str(exc)
                break
            queued += 20
        else:
            raise AssertionError("the disk never filled up")
    assert "full" in refusal
    return queued


@pytest.mark.slow
def test_a_disk_the_queue_filled_takes_snapshots_again_once_emoncms_took_the_rows(
        small_disk: Path, make_rig: MakeRig, fake: FakeEmoncms, caplog: pytest.LogCaptureFixture) -> None:
    """Before: deleting the rows emoncms accepted needed room in the WAL, which had none, so the space never
    came back and every snapshot was dropped until a restart (10 of 10)."""
    caplog.set_level(logging.INFO)
    queue_dir = small_disk / "queue"
    queued = fill_with_queue(queue_dir)
    rig = make_rig(queue_dir=queue_dir)
    with fake.down():
        rig.forwarder.start()
        for step in range(5):  # the disk is full: these are dropped, and said once
            rig.tick({"mppt": mppt(step)}, wait_for)
    assert rig.forwarder.status().rows_dropped_total["disk_error"] == 5
    wait_for(lambda: rig.forwarder.status().rows_sent_total == queued)

    ticks = [rig.tick({"mppt": mppt(step)}, wait_for) for step in range(5, 15)]
    wait_for(lambda: rig.forwarder.status().rows_sent_total == queued + 10)

    status = rig.forwarder.status()
    assert status.rows_dropped_total["disk_error"] == 5  # the next snapshot after emoncms took the rows is kept
    assert [p.time for p in fake.stored() if p.node == "mppt" and p.input == "V"] == [int(t) for t in ticks]
    assert status.queue_rows == 0
    assert (queue_dir / RESERVE_FILE).stat().st_size == 1 << 20  # made again for the next time
    assert len(lines(caplog, logging.ERROR, "cannot queue snapshots")) == 1
    assert len(lines(caplog, logging.INFO, "queueing snapshots works again")) == 1


@pytest.mark.slow
def test_a_restart_on_a_full_disk_sends_no_row_emoncms_accepted_again(
        small_disk: Path, make_rig: MakeRig, fake: FakeEmoncms) -> None:
    """Before: rows emoncms accepted that the full disk would not let go were remembered in memory only, so
    the restart sent them all again once it could (12 of 12)."""
    queue_dir = small_disk / "queue"
    with DiskQueue(queue_dir, 100) as queue:
        queue.append(backlog(12))
    first = make_rig(queue_dir=queue_dir)
    with fake.down():
        assert not first.forwarder.flush_all(deadline=time.monotonic())  # the daemon runs…
    filler = fill_up(small_disk)  # …when the disk fills up
    first.forwarder.flush_all(deadline=time.monotonic() + 10)
    first.forwarder.stop()
    accepted = len(fake.stored())

    second = make_rig(queue_dir=queue_dir)  # the restart, on the full disk
    second.forwarder.flush_all(deadline=time.monotonic() + 10)
    filler.unlink()
    assert second.forwarder.flush_all(deadline=time.monotonic() + 10)

    assert accepted == 12
    assert len(fake.stored()) == 12  # none of them twice
    assert first.forwarder.status().errors_total["disk"] >= 1  # the delete the full disk refused, counted
