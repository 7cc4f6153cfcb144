"""Draining a 3-day backlog into an emoncms slower than `emoncms.timeout`: 2.5 s per 500 rows, `timeout: 1`.

Run by hand: `.venv/bin/python -m benchmarks.bench_forwarder_slow [--deadline SECONDS]`. Prints figures;
asserts nothing about speed.

The case of a slow emonPi on an SD card (issue 10, item 4). The backlog: 4 devices × one snapshot every 300 s
× 3 days = 3,456 rows, built as in `bench_forwarder`. The stand-in emoncms (tests/forwarder/fake_emoncms.py)
stores a bulk request's rows, then takes 5 ms per row before answering, so the default 500-row batch takes
2.5 s, beyond the 1 s timeout: each timed-out request has stored its rows all the same. The forwarder runs as
the daemon runs it (`flush_all`, default backoff 5 s doubling up to 5 min) until the queue is empty or the
deadline passes.

The peer is the code before the fix (commit 0dad99a), run with this same script and fake on that tree: after
106 s it had made 6 requests, all timed out, each writing the same 500 rows again, and 3,456 rows were still
queued; this code drained them in 38 s (31 requests, 3 timed out). Figures in README.md.
"""

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs

from benchmarks.bench_forwarder import DEVICES, INTERVAL, backlog, enqueue
from pvmonit_exporter.config import EmoncmsConfig
from pvmonit_exporter.forwarder.threads import Forwarder
from pvmonit_exporter.state import State
from tests.forwarder.fake_emoncms import WRITE_KEY, FakeEmoncms

DAYS = 3
SECONDS_PER_ROW = 2.5 / 500
TIMEOUT = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deadline", type=float, default=300.0, help="give up after this many seconds")
    deadline = parser.parse_args().deadline
    with tempfile.TemporaryDirectory(prefix="bench-forwarder-slow-") as directory:
        queue_dir = Path(directory) / "queue"
        config = EmoncmsConfig(url="http://127.0.0.1:1/emoncms", apikey=WRITE_KEY, queue_dir=queue_dir,
                               interval=INTERVAL, timeout=TIMEOUT)
        snapshots = backlog(config, end=int(time.time()) // INTERVAL * INTERVAL, days=DAYS)
        rows = sum(len(s) for s in snapshots)
        enqueue(queue_dir, config, snapshots)
        with FakeEmoncms(prefix="/emoncms") as fake:
            fake.seconds_per_row = SECONDS_PER_ROW
            forwarder = Forwarder(replace(config, url=fake.url), State(DEVICES), DEVICES, ())
            started = time.monotonic()
            emptied = forwarder.flush_all(deadline=started + deadline)
            seconds = time.monotonic() - started
            status = forwarder.status()
            forwarder.stop()
            requests = len(fake.recorded())
            stored_rows = len({(p.node, p.time) for p in fake.stored()})
            written_rows = sum(len(json.loads(parse_qs(r.body.decode())["data"][0])) for r in fake.recorded())

    print(f"Backlog: {DAYS} days × {len(DEVICES)} devices, one snapshot every {INTERVAL} s: {rows:,} rows; "
          f"stand-in emoncms: {SECONDS_PER_ROW * 500:g} s per 500 rows, emoncms.timeout: {TIMEOUT:g} s")
    print(f"{'drained':<10}{'seconds':>10}{'requests':>10}{'timeouts':>10}{'rows left':>11}"
          f"{'rows in emoncms':>17}{'rows written':>14}")
    print(f"{'yes' if emptied else 'NO':<10}{seconds:>10.1f}{requests:>10,}{status.errors_total['timeout']:>10,}"
          f"{status.queue_rows:>11,}{stored_rows:>17,}{written_rows:>14,}")
    if emptied:
        print(f"drain rate: {rows / seconds:,.0f} rows/s")


if __name__ == "__main__":
    main()
