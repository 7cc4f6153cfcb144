"""`pvmonit-exporter queue`: what waits in the emoncms queue, and `--flush` to send it all now.

It reads the queue directory itself, so it works whether the daemon runs or not; showing writes nothing
(`queue_view`). Beside a running daemon, `--flush` and the daemon may send the same rows (emoncms overwrites
the same timestamp, so the data stays right, but each counts them as sent) and a row emoncms refuses may get two
dead letters; neither can remove a row it did not send: a row leaves the queue only while its key still holds
the text that was sent (see `DiskQueue.remove`).
"""

import sys
import time
from datetime import datetime
from pathlib import Path

from pvmonit_exporter.config import Config
from pvmonit_exporter.errors import UserError
from pvmonit_exporter.forwarder.queue import DEAD_DIR, QueueError
from pvmonit_exporter.forwarder.queue_view import QueueAccessError, read_queue_stats
from pvmonit_exporter.forwarder.stats import QueueStats
from pvmonit_exporter.forwarder.threads import Forwarder
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

    Showing reads the queue without writing anything and without the key. Raises `UserError` when the
    configuration has no `emoncms:` section, or the queue cannot be read (the CLI prints it, exit status 2)."""
    emoncms = config.emoncms
    if emoncms is None:
        raise UserError(f"{config.source}: no emoncms section: the forwarder is off")
    status = 0
    if flush:
        waiting = _stats(config, emoncms.queue_dir)
        if waiting is None or waiting.rows == 0:
            # Sending nothing proves nothing about the URL or the key: never let this look like a check.
            print(f"queue: {emoncms.queue_dir} is empty: nothing was sent. To check the URL and the key: "
                  f"pvmonit-exporter check-config --emoncms --config.file {config.source}")
            return 0
        transport = None
        if emoncms.via == "mqtt" and config.mqtt is not None:
            from pvmonit_exporter.forwarder.mqtt import EmoncmsMqttClient

            transport = EmoncmsMqttClient.standalone(config.mqtt, emoncms)
        forwarder = Forwarder(emoncms, State(config.devices, config.probes), config.devices, config.probes,
                              transport=transport)
        try:
            emptied = forwarder.flush_all(time.monotonic() + FLUSH_DEADLINE_SECONDS)
            figures = forwarder.status()
        finally:
            forwarder.stop()
        print(f"sent: {figures.rows_sent_total} rows to {figures.url}")
        if not emptied:
            print(f"flush incomplete: {figures.last_error or 'rows remain'}", file=sys.stderr)
            status = 1
    stats = _stats(config, emoncms.queue_dir)
    if stats is None:
        print(f"queue: {emoncms.queue_dir} does not exist yet (the forwarder creates it when it first runs)")
        return status
    print(f"queue: {emoncms.queue_dir}")
    print(f"rows queued: {stats.rows}")
    print(f"oldest row: {_when(stats.oldest)}")
    print(f"newest row: {_when(stats.newest)}")
    print(f"dead letters: {stats.dead_rows} (in {emoncms.queue_dir / DEAD_DIR})")
    if flush and stats.rows:
        status = 1
    return status


def _stats(config: Config, queue_dir: Path) -> QueueStats | None:
    try:
        return read_queue_stats(queue_dir)
    except QueueAccessError as exc:
        raise UserError(f"{exc}: the queue belongs to the service's user; try: sudo pvmonit-exporter queue "
                        f"--config.file {config.source}") from None
    except QueueError as exc:
        raise UserError(f"cannot read the queue: {exc}") from None
