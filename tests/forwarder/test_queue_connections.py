"""A stopped forwarder leaves no connection to its queue open, not even until the next garbage collection.

diskcache opens one SQLite connection per thread and `Cache.close()` closes only the caller's: the snapshot and
flush threads' connections (the database and its WAL, two descriptors each, and a page cache) used to outlive
them, held in a reference cycle, until the cyclic collector happened to run. A daemon reloaded 600 times went
from 22 to 79 descriptors. With the collector off, the count is exact."""

import gc
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.forwarder.conftest import MPPT_BLOCK, Rig
from tests.forwarder.fake_emoncms import FakeEmoncms
from tests.helpers import wait_for


def queue_descriptors(queue_dir: Path) -> list[str]:
    """This process's descriptors open on a file under `queue_dir`."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile (listdir's own descriptor)
        if target.startswith(str(queue_dir)):
            found.append(target)
    return found


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("collector_off")
def test_stopping_the_forwarder_closes_every_thread_s_queue_connection(
        make_rig: Callable[..., Rig], fake: FakeEmoncms, tmp_path: Path) -> None:
    for round_number in range(3):
        rig = make_rig()
        rig.forwarder.start()
        rig.tick({"mppt": MPPT_BLOCK}, wait_for)
        wait_for(fake.recorded)  # the flush thread has read the queue and sent the row
        assert queue_descriptors(tmp_path / "queue")
        rig.forwarder.stop()
        assert queue_descriptors(tmp_path / "queue") == [], round_number
