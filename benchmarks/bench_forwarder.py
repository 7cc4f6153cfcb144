"""Draining a 30-day backlog into emoncms: our bulk forwarder against PvMonit's one request per device per snapshot.

Run by hand: `.venv/bin/python -m benchmarks.bench_forwarder`. Prints figures; asserts nothing about speed.

The backlog: 4 devices (3 MPPT, 1 BMV, PvMonit's default fields) × one snapshot every 300 s × 30 days = 34,560
rows, built by the forwarder's own SnapshotBuilder. Both ways write into the same local fake emoncms
(tests/forwarder/fake_emoncms.py, a Python HTTP server on 127.0.0.1), one fresh instance each, in this run:

* PvMonit's way: `input/post.json?json={LABEL:value,…}&node=<name>&time=<unix>`, one request per row, over a
  kept-alive connection (kinder to it than PvMonit's one connection per request);
* ours: `Forwarder.flush_all`, `input/bulk.json?sentat=…` in batches of `batch_size` (default 500).

Also measured: the cost of queueing (one durable transaction per 4-row snapshot, as the snapshot thread does)
and the queue's bytes on disk per row. Absolute figures depend on this machine's disk and CPU; the fake's own
work per request is part of both drains.
"""

import functools
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import requests

from pvmonit_exporter.config import DeviceConfig, EmoncmsConfig
from pvmonit_exporter.forwarder.queue import DiskQueue
from pvmonit_exporter.forwarder.snapshot import Row, SnapshotBuilder
from pvmonit_exporter.forwarder.threads import Forwarder
from pvmonit_exporter.state import State
from pvmonit_exporter.vedirect.framing import DecoderStats
from tests.forwarder.conftest import BMV_BLOCK, MPPT_BLOCK
from tests.forwarder.fake_emoncms import WRITE_KEY, FakeEmoncms

DAYS = 30
INTERVAL = 300
DEVICES = (
    DeviceConfig("mppt1", "/dev/ttyUSB0"),
    DeviceConfig("mppt2", "/dev/ttyUSB1"),
    DeviceConfig("mppt3", "/dev/ttyUSB2"),
    DeviceConfig("bmv", "/dev/ttyUSB3"),
)


def backlog(config: EmoncmsConfig, end: int, days: int = DAYS) -> list[list[Row]]:
    """One list of rows per snapshot, oldest first, with values that change from one snapshot to the next."""
    builder = SnapshotBuilder(config, DEVICES, ())
    snapshots = []
    count = days * 86_400 // INTERVAL
    for index in range(count):
        tick = end - (count - index) * INTERVAL
        state = State(DEVICES, clock=functools.partial(float, tick))
        for device in DEVICES[:3]:
            block = {**MPPT_BLOCK, "V": str(26_000 + index % 900), "PPV": str(index % 250)}
            state.record_blocks(device.name, [block], DecoderStats())
        state.record_blocks("bmv", [{**BMV_BLOCK, "SOC": str(500 + index % 500)}], DecoderStats())
        snapshots.append(builder.rows(tick, state.devices(), state.probes()))
    return snapshots


def enqueue(queue_dir: Path, config: EmoncmsConfig, snapshots: list[list[Row]]) -> tuple[float, int]:
    """Seconds to queue every snapshot (one append each), and the queue's bytes on disk afterwards."""
    with DiskQueue(queue_dir, config.max_queue_rows) as queue:
        started = time.perf_counter()
        for rows in snapshots:
            queue.append(rows)
        seconds = time.perf_counter() - started
    size = sum(path.stat().st_size for path in queue_dir.rglob("*") if path.is_file())
    return seconds, size


def drain_ours(config: EmoncmsConfig) -> tuple[int, float, int]:
    with FakeEmoncms(prefix="/emoncms") as fake:
        forwarder = Forwarder(replace(config, url=fake.url), State(DEVICES), DEVICES, ())
        started = time.perf_counter()
        emptied = forwarder.flush_all(deadline=math.inf)
        seconds = time.perf_counter() - started
        forwarder.stop()
        if not emptied:
            raise SystemExit(f"our drain did not finish: {forwarder.status().last_error}")
        return len(fake.recorded()), seconds, len(fake.stored())


def drain_pvmonit(snapshots: list[list[Row]]) -> tuple[int, float, int]:
    with FakeEmoncms(prefix="/emoncms") as fake, requests.Session() as session:
        url = f"{fake.url}/input/post.json"
        headers = {"Authorization": f"Bearer {WRITE_KEY}"}
        started = time.perf_counter()
        for rows in snapshots:
            for row in rows:
                values = ",".join(f"{name}:{value}" for name, value in row.values.items())
                params = {"json": "{" + values + "}", "node": row.node, "time": str(row.time)}
                answer = session.get(url, params=params, headers=headers, timeout=30)
                if answer.text != "ok":
                    raise SystemExit(f"PvMonit-style request refused: {answer.status_code} {answer.text!r}")
        seconds = time.perf_counter() - started
        return len(fake.recorded()), seconds, len(fake.stored())


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-forwarder-") as directory:
        queue_dir = Path(directory) / "queue"
        config = EmoncmsConfig(
            url="http://127.0.0.1:1/emoncms", apikey=WRITE_KEY, queue_dir=queue_dir, interval=INTERVAL
        )
        snapshots = backlog(config, end=int(time.time()) // INTERVAL * INTERVAL)
        rows = sum(len(s) for s in snapshots)
        values = sum(len(row.values) for s in snapshots for row in s)
        enqueue_seconds, disk_bytes = enqueue(queue_dir, config, snapshots)
        ours_requests, ours_seconds, ours_points = drain_ours(config)
        peer_requests, peer_seconds, peer_points = drain_pvmonit(snapshots)

    print(
        f"Backlog: {DAYS} days × {len(DEVICES)} devices, one snapshot every {INTERVAL} s: "
        f"{rows:,} rows, {values:,} values"
    )
    print(f"{'drain into the fake emoncms':<44}{'requests':>10}{'seconds':>10}{'rows/s':>10}{'stored':>10}")
    print(
        f"{'PvMonit: input/post, one per device+snapshot':<44}{peer_requests:>10,}{peer_seconds:>10.1f}"
        f"{rows / peer_seconds:>10,.0f}{peer_points:>10,}"
    )
    print(
        f"{f'ours: input/bulk, {config.batch_size} rows per request':<44}{ours_requests:>10,}"
        f"{ours_seconds:>10.1f}{rows / ours_seconds:>10,.0f}{ours_points:>10,}"
    )
    print(
        f"ours vs PvMonit: {peer_requests / ours_requests:.0f}× fewer requests, "
        f"{peer_seconds / ours_seconds:.1f}× faster"
    )
    print(
        f"enqueue: {enqueue_seconds / rows * 1e6:.0f} µs per row ({enqueue_seconds / len(snapshots) * 1e3:.2f} ms "
        f"per {len(DEVICES)}-row snapshot, one fsynced transaction each)"
    )
    print(f"queue on disk: {disk_bytes / rows:.0f} bytes per row ({disk_bytes / 1e6:.1f} MB for {rows:,} rows)")


if __name__ == "__main__":
    main()
