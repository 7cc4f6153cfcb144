"""kill -9 of a forwarder process while it queues and while it sends, then a restart: no acknowledged row is lost.

The child (`crash_child.py`) prints every row it was told is on disk; the parent kills it with SIGKILL at random
moments, starts it again, and finally drains the queue. Every printed row must be in the fake emoncms; a row may
arrive twice (at-least-once: a batch stored by emoncms but not yet removed from the queue is sent again, which
emoncms turns into an overwrite of the same slot), and rows first arrive in time order.
"""

import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from tests.forwarder.conftest import START
from tests.forwarder.fake_emoncms import FakeEmoncms, Point
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
Key = tuple[str, str, int]


def child(mode: str, queue_dir: Path, fake: FakeEmoncms, first_step: int,
          stdout: IO[bytes] | int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tests.forwarder.crash_child", mode, str(queue_dir), fake.url, str(START),
               str(first_step)]
    return subprocess.Popen(command, cwd=ROOT, stdout=stdout)


def produce_and_kill(queue_dir: Path, fake: FakeEmoncms, output: Path, first_step: int,
                     before_kill: Callable[[], object]) -> list[tuple[Key, float]]:
    """Run a producing child until it has acknowledged rows, then call `before_kill()` and SIGKILL it."""
    with output.open("wb") as out:
        process = child("produce", queue_dir, fake, first_step, out)
        try:
            wait_for(lambda: output.stat().st_size > 0, timeout=30)
            before_kill()
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    assert process.returncode == -signal.SIGKILL
    acknowledged = []
    for line in output.read_text().splitlines():
        node, name, at, value = json.loads(line)
        acknowledged.append(((node, name, at), value))
    return acknowledged


def drain(queue_dir: Path, fake: FakeEmoncms) -> None:
    process = child("drain", queue_dir, fake, 0, subprocess.DEVNULL)
    assert process.wait(timeout=120) == 0


def check_delivered(acknowledged: list[tuple[Key, float]], stored: list[Point]) -> dict[Key, int]:
    """Every acknowledged row stored with its value, first arrivals in time order; returns arrivals per key."""
    first: dict[Key, float] = {}
    arrivals: dict[Key, int] = {}
    order: list[Key] = []
    for point in stored:
        key = (point.node, point.input, point.time)
        if key not in first:
            first[key] = point.value
            order.append(key)
        arrivals[key] = arrivals.get(key, 0) + 1
    missing = [key for key, _ in acknowledged if key not in first]
    assert missing == []
    assert [(key, first[key]) for key, _ in acknowledged] == acknowledged
    times = [key[2] for key in order]
    assert times == sorted(times)
    return arrivals


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["enqueue", "flush"])
def test_random_kills_lose_no_acknowledged_row(tmp_path: Path, phase: str) -> None:
    rng = random.Random(f"kill-9-{phase}")
    queue_dir = tmp_path / "queue"
    with FakeEmoncms(clock=lambda: START) as fake:
        if phase == "enqueue":
            fake.go_down()  # nothing can leave the queue: the child spends its time queueing and syncing
        else:
            fake.delay = 0.03  # slow answers after storing: kills land in the middle of requests
        acknowledged: list[tuple[Key, float]] = []
        for round_number in range(4):
            acknowledged += produce_and_kill(queue_dir, fake, tmp_path / f"round{round_number}.out",
                                             round_number * 100_000, lambda: time.sleep(rng.uniform(0.05, 0.5)))
        if phase == "enqueue":
            fake.come_up()
        fake.delay = 0.0
        drain(queue_dir, fake)
        stored = fake.stored()

    assert len(acknowledged) > 4  # every round acknowledged rows before its kill
    check_delivered(acknowledged, stored)


@pytest.mark.slow
def test_a_kill_during_a_request_resends_that_batch_after_restart(tmp_path: Path) -> None:
    queue_dir = tmp_path / "queue"
    with FakeEmoncms(clock=lambda: START) as fake:
        fake.delay = 3.0  # emoncms stores the rows, then takes its time to answer

        acknowledged = produce_and_kill(queue_dir, fake, tmp_path / "out", 0,
                                        lambda: wait_for(fake.recorded, timeout=30))
        stored_before_restart = len(fake.stored())
        fake.delay = 0.0
        drain(queue_dir, fake)
        stored = fake.stored()

    assert stored_before_restart > 0
    arrivals = check_delivered(acknowledged, stored)
    assert max(arrivals.values()) == 2  # the batch in flight at the kill was sent again, once
