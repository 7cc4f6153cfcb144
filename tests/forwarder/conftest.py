"""Fixtures for the forwarder tests: a fake emoncms, a manual clock, sample VE.Direct blocks, a forwarder factory."""

import ctypes.util
import errno
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pvmonit_exporter.config import DeviceConfig, EmoncmsConfig, ProbeConfig
from pvmonit_exporter.forwarder.threads import Forwarder
from pvmonit_exporter.state import State
from pvmonit_exporter.vedirect.framing import Block, DecoderStats
from tests.forwarder.fake_emoncms import WRITE_KEY, FakeEmoncms, ManualClock

# 2026-06-01 12:03:17 UTC: after BUILD_YEAR, and not on a 300 s boundary.
START = datetime(2026, 6, 1, 12, 3, 17, tzinfo=UTC).timestamp()

MPPT_BLOCK: Block = {
    "PID": "0xA053", "FW": "159", "SER#": "HQ2132ABCDE", "V": "26180", "I": "3500", "VPV": "41200",
    "PPV": "92", "CS": "3", "MPPT": "2", "OR": "0x00000000", "ERR": "0", "LOAD": "ON", "IL": "0",
    "H19": "1234", "H20": "12", "H21": "150", "H22": "30", "H23": "200", "HSDS": "17",
}
BMV_BLOCK: Block = {
    "PID": "0x203", "V": "26200", "I": "-1500", "P": "-39", "CE": "-12000", "SOC": "876", "TTG": "-1",
    "Alarm": "OFF", "Relay": "OFF", "AR": "0", "BMV": "700", "FW": "308",
}


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests honours proxy variables: the tests must reach 127.0.0.1 directly and nothing else."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeEmoncms]:
    with FakeEmoncms(clock=clock) as server:
        yield server


def emoncms_config(queue_dir: Path, url: str, **overrides: Any) -> EmoncmsConfig:
    config = EmoncmsConfig(url=url, apikey=WRITE_KEY, queue_dir=queue_dir, interval=300.0, timeout=2.0)
    return replace(config, **overrides)


class Rig:
    """A State and a Forwarder on the manual clock, writing to the fake; `tick()` makes one snapshot happen.

    With `emoncms` (the fake that shares the clock), `tick()` also waits for the snapshot to reach it whenever it
    takes rows: see `tick`."""

    def __init__(self, config: EmoncmsConfig, clock: ManualClock, devices: tuple[DeviceConfig, ...],
                 probes: tuple[ProbeConfig, ...], *, emoncms: FakeEmoncms | None = None,
                 **forwarder_options: Any) -> None:
        self.config, self.clock, self.devices, self.emoncms = config, clock, devices, emoncms
        self.state = State(devices, probes, clock=clock)
        options = {"backoff_initial": 0.02, "backoff_max": 0.1, "poll_interval": 0.005, **forwarder_options}
        self.forwarder = Forwarder(config, self.state, devices, probes, clock=clock, **options)

    def feed(self, device: str, block: Block) -> None:
        self.state.record_blocks(device, [block], DecoderStats())

    def next_tick(self) -> float:
        interval = self.config.interval
        return (self.clock() // interval + 1) * interval

    def tick(self, blocks: dict[str, Block], wait: Callable[[Callable[[], object]], object]) -> float:
        """Record `blocks` just before the next tick, move the clock past it and wait for the snapshot; when
        `emoncms` takes rows now, wait until the snapshot is stored there and the queue is empty.

        Why the second wait: the fake and the forwarder share the clock, and emoncms stores a bulk row at
        `its now − sentat + row time`. Between real ticks 300 s pass and a request takes milliseconds, so both
        clocks agree; the manual clock jumps those 300 s at once, and a jump that lands between the forwarder
        reading `sentat` and the fake reading its now stores that request's rows one interval late. So the
        clock moves on only once the rows that emoncms takes have reached it, as they would in those 300 s.
        A test that ticks while a backlog is still being sent must wait for it first for the same reason."""
        tick = self.next_tick()
        before = self.forwarder.status()
        self.clock.set(tick - 1)
        for device, block in blocks.items():
            self.feed(device, block)
        self.clock.set(tick + 0.5)
        wait(lambda: self.forwarder.status().snapshots_total > before.snapshots_total)
        if self.emoncms is not None and self.emoncms.takes_rows_now(self.config.apikey):
            emoncms = self.emoncms
            wait(lambda: self._delivered(emoncms, int(tick), before.rows_dropped_total["disk_error"]))
        return tick

    def _delivered(self, emoncms: FakeEmoncms, tick: int, dropped_before: int) -> bool:
        """The queue is empty and the snapshot stamped `tick` reached `emoncms` (or the disk refused its rows).
        The queue's figures alone are not enough: the flush thread may store figures it read just before the
        snapshot was queued after the snapshot thread stored its own."""
        status = self.forwarder.status()
        if status.queue_rows:
            return False
        return (status.rows_dropped_total["disk_error"] > dropped_before
                or any(point.time == tick for point in emoncms.stored()))


@pytest.fixture
def make_rig(tmp_path: Path, fake: FakeEmoncms, clock: ManualClock) -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(devices: tuple[DeviceConfig, ...] = (DeviceConfig("mppt", "/dev/ttyUSB0"),),
             probes: tuple[ProbeConfig, ...] = (), forwarder_options: dict[str, Any] | None = None,
             **config_overrides: Any) -> Rig:
        queue_dir = config_overrides.pop("queue_dir", tmp_path / "queue")
        config = emoncms_config(queue_dir, fake.url, **config_overrides)
        rig = Rig(config, clock, devices, probes, emoncms=fake, **(forwarder_options or {}))
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.forwarder.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB tmpfs mounted in `tmp_path`, to fill up for real (SQLITE_FULL from a full disk).

    Mounting needs root: elsewhere the test is skipped with the reason, and fails in CI (CI=true), which runs
    as root."""
    mount = tmp_path / "disk"
    mount.mkdir()
    reason = None
    if os.geteuid() != 0:
        reason = "mounting a tmpfs to fill up needs root"
    else:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                                capture_output=True, text=True, check=False)
        if result.returncode:
            reason = f"mount -t tmpfs failed: {result.stderr.strip()}"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_up(disk: Path) -> Path:
    """Write a file on `disk` until not one more page fits; returns it (delete it to give the space back)."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    os.write(descriptor, b"\0" * size)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(descriptor)
    return filler


def _skip_outside_ci(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def flaky_disk(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A directory mounted through a real FUSE file system (tests/forwarder/flaky_fs.py): yields the mount point
    and the fault file; creating the fault file makes the next read of a `cache.db` there come back short.

    Needs root, /dev/fuse and libfuse2: elsewhere the test is skipped with the reason, and fails in CI."""
    if os.geteuid() != 0:
        _skip_outside_ci("mounting a FUSE file system needs root")
    if not Path("/dev/fuse").exists():
        _skip_outside_ci("no /dev/fuse on this machine")
    if ctypes.util.find_library("fuse") is None:
        _skip_outside_ci("libfuse2 is not installed (apt-get install libfuse2)")
    backing, mount, fault = tmp_path / "backing", tmp_path / "flaky", tmp_path / "fault"
    backing.mkdir()
    mount.mkdir()
    server = subprocess.Popen([sys.executable, "-m", "tests.forwarder.flaky_fs", str(backing), str(mount),
                               str(fault)], cwd=Path(__file__).parents[2], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not os.path.ismount(mount):
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                _skip_outside_ci(f"cannot mount the FUSE file system: {server.communicate()[1].strip()}")
            time.sleep(0.05)
        yield mount, fault
    finally:
        # A file still open there (a connection a failed open left for the garbage collector) makes a plain
        # umount fail: detach it lazily then, so that no dead mount is left behind.
        if subprocess.run(["umount", str(mount)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)
            server.kill()  # detached: it would serve that last open file until it is closed
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
