"""`pvmonit-exporter queue`: what waits in the emoncms queue, and `--flush` to send it all now.

It opens the queue directory itself, so it works whether the daemon runs or not. Beside a running daemon,
both may send the same rows (emoncms overwrites the same timestamp, so the data stays right, but each counts
them as sent) and a row emoncms refuses may get two dead letters; neither can remove a row it did not send:
a row leaves the queue only while its key still holds the text that was sent (see `DiskQueue.remove`).
"""

import sys
import time
from datetime import datetime

from pvmonit_exporter.config import Config
from pvmonit_exporter.errors import UserError
from pvmonit_exporter.forwarder.loop import Forwarder
from pvmonit_exporter.forwarder.queue import DEAD_DIR, DiskQueue, QueueError
from pvmonit_exporter.state import State

# `--flush` keeps retrying failures (with backoff) this long before giving up with exit status 1.
FLUSH_DEADLINE_SECONDS = 300.0


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    local = datetime.fromtimestamp(timestamp).astimezone()
    return f"{local.isoformat(sep=' ', timespec='seconds')} ({timestamp:.0f})"


def queue_command(config: Config, *, flush: bool) -> int:
    """Print the queue's summary (after sending everything with `flush`); 0 unless `flush` left rows behind.

    Raises `UserError` when the configuration has no `emoncms:` section (the CLI prints it, exit status 2)."""
    emoncms = config.emoncms
    if emoncms is None:
        raise UserError(f"{config.source}: no emoncms section: the forwarder is off")
    status = 0
    if flush:
        forwarder = Forwarder(emoncms, State(config.devices, config.probes), config.devices, config.probes)
        try:
            emptied = forwarder.flush_all(time.monotonic() + FLUSH_DEADLINE_SECONDS)
            figures = forwarder.status()
        finally:
            forwarder.stop()
        print(f"sent: {figures.rows_sent_total} rows to {figures.url}")
        if not emptied:
            print(f"flush incomplete: {figures.last_error or 'rows remain'}", file=sys.stderr)
            status = 1
    try:
        with DiskQueue(emoncms.queue_dir, emoncms.max_queue_rows, inspect=True) as queue:  # never moves it aside
            stats = queue.stats()
    except QueueError as exc:
        raise UserError(f"{emoncms.queue_dir}: cannot read the queue: {exc}") from None
    print(f"queue: {emoncms.queue_dir}")
    print(f"rows queued: {stats.rows}")
    print(f"oldest row: {_when(stats.oldest)}")
    print(f"newest row: {_when(stats.newest)}")
    print(f"dead letters: {stats.dead_rows} (in {emoncms.queue_dir / DEAD_DIR})")
    if flush and stats.rows:
        status = 1
    return status
