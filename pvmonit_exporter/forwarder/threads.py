"""The forwarder: a snapshot thread that queues rows every interval, and a flush thread that drains the queue.

Every row goes through the disk queue, even when emoncms is reachable: the flush thread always sends the
oldest rows first, so live rows never overtake queued ones (emoncms's PHPFina feeds silently drop anything older
than their first point). Rows leave the queue only after emoncms answered `ok` (at-least-once).

The decisions are `policy.decide`'s (pure, table-tested); the figures live in a `ForwarderStats`; the two thread
loops here only carry them out. Neither thread ever raises into its caller or dies: disk and network failures
are counted, logged and retried; `status()` reads counters kept in memory, so a scrape never waits for the disk
or the network.

The API key never reaches a log line or `last_error`: every text the forwarder logs or keeps passes through
`EmoncmsClient.scrub` (the client's own messages already do), tracebacks included.
"""

import enum
import logging
import math
import random
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pvmonit_exporter import BUILD_YEAR
from pvmonit_exporter.config import DeviceConfig, EmoncmsConfig, ProbeConfig
from pvmonit_exporter.forwarder.daily import DailyRows
from pvmonit_exporter.forwarder.emoncms import EmoncmsClient
from pvmonit_exporter.forwarder.outcome import ContentError
from pvmonit_exporter.forwarder.policy import Action, DiskHealth, Pace, backoff_delay, decide, disk_outcome
from pvmonit_exporter.forwarder.queue import DEAD_DIR, DiskQueue, QueuedRow, QueueError
from pvmonit_exporter.forwarder.snapshot import Row, SnapshotBuilder
from pvmonit_exporter.forwarder.stats import ForwarderStats, ForwarderStatus
from pvmonit_exporter.state import State
from pvmonit_exporter.workers import Worker

if TYPE_CHECKING:
    from pvmonit_exporter.forwarder.mqtt import EmoncmsMqttClient

logger = logging.getLogger(__name__)


# How long `stop()` waits for each thread, then for a flush run from another thread (`flush_all`); a request in
# flight is ended at once, its rows stay queued and are sent again.
STOP_WAIT_SECONDS = 5.0
# The flush thread also looks at the queue this often when idle: another process may have queued rows.
IDLE_WAIT_SECONDS = 60.0
CLOCK_FLOOR = datetime(BUILD_YEAR, 1, 1, tzinfo=UTC).timestamp()


class _Use(enum.Enum):
    """What a thread uses the queue's disk for: each has its own `DiskHealth`, said once per change."""

    QUEUEING = "queueing snapshots"  # the snapshot thread
    SENDING = "sending the queue"  # the flush thread, or a `flush_all`


class _Pass(enum.Enum):
    """How a flush pass ended."""

    EMPTY = "empty"
    RETRY = "retry"  # a transient or disk failure: back off and try again
    AUTH = "auth"  # the key is refused: retrying helps only once the operator fixes it
    CLOCK = "clock"  # our clock is wrong: `sentat` would shift every row
    STOPPED = "stopped"


def next_tick(now: float, interval: float) -> float:
    """The first wall-clock multiple of `interval` after `now` (…:00, :05, :10 for 300 s)."""
    return (math.floor(now / interval) + 1) * interval


class Forwarder:
    """Snapshots of `state` into the disk queue in `config.queue_dir`, flushed to emoncms when it answers.

    `backoff_initial`/`backoff_max` bound the capped exponential backoff after failures (with jitter, so that
    many exporters do not retry in step); `poll_interval` is the longest the snapshot thread sleeps before
    looking at the clock again, which keeps snapshots aligned when the clock jumps (NTP after a boot).
    `transport`: the rows' way out with `via: mqtt` (`forwarder.mqtt`); by default emoncms's HTTP API.
    A stopped forwarder stays stopped (its queue is closed): make a new one to start again.
    """

    def __init__(
        self,
        config: EmoncmsConfig,
        state: State,
        devices: Sequence[DeviceConfig],
        probes: Sequence[ProbeConfig],
        clock: Callable[[], float] = time.time,
        *,
        backoff_initial: float = 5.0,
        backoff_max: float = 300.0,
        poll_interval: float = 1.0,
        transport: "EmoncmsMqttClient | None" = None,
    ) -> None:
        self._config = config
        self._state = state
        self._clock = clock
        self._builder = SnapshotBuilder(config, devices, probes)
        self._daily = DailyRows(config.queue_dir, devices)  # chargers' closed days (forwarder/daily.py)
        self._queue = DiskQueue(config.queue_dir, config.max_queue_rows)
        self._client: EmoncmsClient | EmoncmsMqttClient = (
            transport if transport is not None else EmoncmsClient(config.url, config.apikey, config.timeout))
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._poll = poll_interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._flush_lock = threading.Lock()  # one flush at a time: the flush thread's or `flush_all`'s
        self._workers: list[Worker] = []
        self._stats = ForwarderStats()
        self._pace = Pace(config.batch_size)  # flush only
        self._clock_wrong = False  # snapshot thread only
        self._key_refused = False  # emoncms refused the key and has accepted nothing since (flush only)
        self._disk = dict.fromkeys(_Use, DiskHealth())  # each entry written by its own thread only
        self._pass_disk_error = False  # the current flush pass met a disk error (flush only)
        self._url = self._client.shown_url

    # --- life cycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._stop.is_set():
            raise RuntimeError("a stopped forwarder does not start again (its queue is closed): make a new one")
        if self._workers:
            return
        self._refresh_stats(_Use.SENDING)
        self._workers = [
            Worker("emoncms-snapshots", lambda: self._run(self._snapshot_loop), stop=self._stop),
            Worker("emoncms-flush", lambda: self._run(self._flush_loop), stop=self._stop),
        ]
        for worker in self._workers:
            worker.start()
        logger.info("emoncms forwarder: a snapshot every %g s to %s, queue in %s (%d rows waiting)",
                    self._config.interval, self._url, self._config.queue_dir, self._stats.queue_rows)

    def _run(self, loop: Callable[[], None]) -> None:
        """A thread's life: `loop`, then its own connections to the queue closed (else each reload would leave
        two threads' open until a garbage collection: `DiskQueue.release_thread`)."""
        try:
            loop()
        finally:
            self._queue.release_thread()

    def stop(self) -> None:
        """Stop both threads and any flush, then close the queue. A request in flight is ended at once: its rows
        stay queued (on disk) and go out next time. Nothing is flushed."""
        self._stop.set()
        self._wake.set()
        self._client.abort()
        for worker in self._workers:
            if not worker.stop(STOP_WAIT_SECONDS):
                logger.warning("emoncms forwarder: the %s thread has not stopped within %g s; closing the queue "
                               "under it (its rows stay queued)", worker.name, STOP_WAIT_SECONDS)
        self._workers = []
        flushing = not self._flush_lock.acquire(timeout=STOP_WAIT_SECONDS)
        if flushing:
            logger.warning("emoncms forwarder: a flush has not stopped within %g s; closing the queue under it "
                           "(its rows stay queued)", STOP_WAIT_SECONDS)
        try:
            self._client.close()
            self._queue.close()  # final: an operation still running fails instead of reopening the files
        finally:
            if not flushing:
                self._flush_lock.release()

    # --- reading ---------------------------------------------------------------------------------------

    def status(self) -> ForwarderStatus:
        """The current figures, from memory: never touches the disk or the network."""
        return self._stats.status(self._url, str(self._config.queue_dir), self._config.interval, self._clock(),
                                  time.monotonic())

    def status_document(self) -> dict[str, Any]:
        """`status()` as plain JSON types, for `/api/state`."""
        return self.status().as_dict()

    # --- snapshots -------------------------------------------------------------------------------------

    def snapshot(self, tick: float) -> list[Row]:
        """Take a snapshot stamped `tick` and queue it durably; the rows returned are on disk.

        Nothing is queued while the clock is before BUILD_YEAR (a Pi without RTC before NTP): those rows would
        carry a 1970 timestamp. A disk that refuses the rows is counted and logged, not raised.
        """
        if self._clock() < CLOCK_FLOOR:
            self._stats.skipped("clock")
            if not self._clock_wrong:
                self._clock_wrong = True
                logger.warning("emoncms forwarder: the system clock says %s, before %d — not queueing snapshots "
                               "until it is set (no RTC? waiting for NTP)", _when(self._clock()), BUILD_YEAR)
            return []
        if self._clock_wrong:
            self._clock_wrong = False
            logger.info("emoncms forwarder: the system clock looks right again (%s); queueing snapshots",
                        _when(self._clock()))
        views = self._state.devices()
        rows = self._builder.rows(int(tick), views, self._state.probes())
        daily = self._daily.rows(views)
        queued = self._queue_rows(rows + [day.row for day in daily]) if rows or daily else []
        if daily and queued:
            self._daily.queued(daily, self._clock())
        self._stats.snapshot_taken()  # counted once its rows are queued and in the figures
        return queued

    def _queue_rows(self, rows: list[Row]) -> list[Row]:
        """Queue `rows`, trying once more at once when the disk refuses: the queue reads afresh after a failed
        read, so one short read costs no snapshot. Rows the disk refuses twice are dropped and counted."""
        for attempt in (1, 2):
            try:
                dropped = self._queue.append(rows)
                break
            except QueueError as exc:
                self._disk_error(_Use.QUEUEING, "cannot queue snapshots (their rows are dropped, counted in "
                                 "pvmonit_emoncms_rows_dropped_total{reason=\"disk_error\"})", exc)
                if attempt == 2:
                    self._stats.dropped("disk_error", len(rows))
                    return []
        if dropped:
            self._stats.dropped("queue_full", dropped)
            logger.warning("emoncms queue is full (%d rows): dropped the %d oldest rows", self._config.max_queue_rows,
                           dropped)
        if self._refresh_stats(_Use.QUEUEING):
            self._disk_works(_Use.QUEUEING)
        self._wake.set()
        return rows

    def _snapshot_loop(self) -> None:
        interval = self._config.interval
        due = next_tick(self._clock(), interval)
        while not self._stop.is_set():
            now = self._clock()
            if now < due - interval:  # the clock went back: align on the new time
                due = next_tick(now, interval)
            if now < due:
                self._stop.wait(min(due - now, self._poll))
                continue
            tick = math.floor(now / interval) * interval  # missed ticks are not made up: the data is current
            try:
                self.snapshot(tick)
            except Exception:  # noqa: BLE001 - logged with its traceback, scrubbed; a bug must not end the snapshots
                self._log_exception("emoncms forwarder: snapshot failed")
            due = tick + interval

    # --- flushing --------------------------------------------------------------------------------------

    def flush_all(self, deadline: float) -> bool:
        """Send every queued row now, retrying failures with backoff until `deadline` (a `time.monotonic()`
        value); True when the queue is empty. Gives up at once on a refused key: retrying cannot fix it."""
        while True:
            result = self._flush_pass()
            if result is _Pass.EMPTY:
                return True
            if result is not _Pass.RETRY:
                return False
            delay = self._stats.backoff_remaining(time.monotonic())
            if time.monotonic() + delay >= deadline:
                return False
            self._stop.wait(delay)

    def _flush_loop(self) -> None:
        while not self._stop.is_set():
            delay = self._stats.backoff_remaining(time.monotonic())
            if delay > 0:
                self._stop.wait(delay)  # an enqueue must not cut a backoff short
                continue
            result = self._flush_pass()
            if result is _Pass.CLOCK:
                self._stop.wait(min(self._config.interval, IDLE_WAIT_SECONDS))
            elif result is _Pass.EMPTY:
                self._wake.wait(min(self._config.interval, IDLE_WAIT_SECONDS))
                self._wake.clear()

    def _flush_pass(self) -> _Pass:
        """Send batches, oldest first, until the queue is empty or a send fails. Never raises."""
        with self._flush_lock:
            self._pass_disk_error = False
            try:
                result = self._flush_batches()
                if self._refresh_stats(_Use.SENDING) and not self._pass_disk_error:
                    self._disk_works(_Use.SENDING)
            except Exception as exc:  # noqa: BLE001 - logged with its traceback, scrubbed; a bug must not end
                # the flushing: back off and try again
                self._log_exception("emoncms forwarder: flush failed")
                self._back_off(f"internal error: {exc}")
                return _Pass.RETRY
            return result

    def _flush_batches(self) -> _Pass:
        try:
            self._queue.retry_removals()  # rows sent while the disk was full
        except QueueError as exc:
            self._disk_error(_Use.SENDING, "cannot remove rows sent earlier from the queue", exc)
        while not self._stop.is_set():
            if self._clock() < CLOCK_FLOOR:
                return _Pass.CLOCK  # `sentat` from a wrong clock would move every row by the error
            try:
                batch = self._queue.peek(self._pace.limit)
            except QueueError as exc:
                self._disk_error(_Use.SENDING, "cannot read the queue (its rows stay queued, read again after a "
                                 "backoff)", exc)
                self._back_off(str(exc))
                return _Pass.RETRY
            if not batch:
                return _Pass.EMPTY
            result = self._deliver(batch)
            if result is not None:
                return result
            self._refresh_stats(_Use.SENDING)  # progress shows in the metrics during a long drain
        return _Pass.STOPPED

    def _deliver(self, items: Sequence[QueuedRow]) -> _Pass | None:
        """Send `items` as one request and carry out the policy's decision. None when every row either went
        out or went to the dead letters."""
        unreadable = [item for item in items if item.row is None]
        if unreadable and not self._bury(unreadable, "unreadable queue entry (not a [time, node, values] row)"):
            return _Pass.RETRY
        readable = [(item, item.row) for item in items if item.row is not None]
        if not readable:
            return None
        outcome = self._client.send([row for _, row in readable], int(self._clock()))
        decision = decide(outcome, len(readable), self._pace, self._config.batch_size)
        if decision.pace.limit < self._pace.limit:
            logger.info("emoncms: sending at most %d rows a request after a timeout", decision.pace.limit)
        self._pace = decision.pace
        if decision.error is not None:
            self._stats.error(decision.error)
        batch = [item for item, _ in readable]
        if decision.action is Action.REMOVE:
            return self._remove(batch)
        if decision.action is Action.BURY:
            node_limit = isinstance(outcome, ContentError) and outcome.node_limit
            return None if self._bury(batch, outcome.message, node_limit) else _Pass.RETRY
        if decision.action is Action.SPLIT:
            return self._split(batch)
        return self._retry_later(outcome.message, auth=decision.error == "auth")

    def _split(self, batch: Sequence[QueuedRow]) -> _Pass | None:
        """Send `batch` as two halves, each split again while emoncms refuses one of its rows.
        Bulk is not atomic: rows before the bad one were applied; resending them overwrites the same slot."""
        middle = len(batch) // 2
        for half in (batch[:middle], batch[middle:]):
            result = self._deliver(half)
            if result is not None:
                return result
        return None

    def _retry_later(self, message: str, *, auth: bool) -> _Pass:
        """Back off after a failed send and say so; a refused key is its own pass result."""
        delay = self._back_off(message)
        if auth:
            # Once at ERROR when the refusal starts; while it lasts, each retry only at DEBUG.
            level = logging.DEBUG if self._key_refused else logging.ERROR
            self._key_refused = True
            logger.log(level, "emoncms refused the API key: %s; keeping %d queued rows, retrying in %.0f s",
                       self._scrub(message), self._stats.queue_rows, delay)
            return _Pass.AUTH
        logger.warning("emoncms: %s; keeping %d queued rows, retrying in %.0f s", self._scrub(message),
                       self._stats.queue_rows, delay)
        return _Pass.RETRY

    def _remove(self, batch: Sequence[QueuedRow]) -> _Pass | None:
        """emoncms stored `batch`: delete it, then count it sent (so that whoever sees it counted sees the queue
        without it). A delete that fails (disk full) leaves the rows remembered by the queue as sent, never sent
        again (see `DiskQueue`): they are counted all the same."""
        try:
            removed = self._queue.remove(batch)
        except QueueError as exc:
            self._disk_error(_Use.SENDING, f"cannot remove {len(batch)} sent rows from the queue (they will not be "
                             "sent again)", exc)
            refused: QueueError | None = exc
        else:
            refused = None
            if removed < len(batch):
                logger.debug("emoncms: %d of the %d rows sent had already left the queue (sent by another "
                             "process); rows queued since under the same keys stay", len(batch) - removed, len(batch))
        self._refresh_stats(_Use.SENDING)
        failures = self._stats.sent(len(batch), self._clock())
        if self._key_refused:
            self._key_refused = False
            logger.info("emoncms accepts the API key again: sending again after %d failed attempts", failures)
        elif failures:
            logger.info("emoncms: sending again after %d failed attempts", failures)
        if refused is not None:
            self._back_off(str(refused))
            return _Pass.RETRY
        return None

    def _bury(self, items: Sequence[QueuedRow], error: str, node_limit: bool = False) -> bool:
        try:
            dropped = self._queue.bury(items, error, self._clock())
        except QueueError as exc:
            self._disk_error(_Use.SENDING, "cannot move a rejected row to the dead letters", exc)
            self._back_off(str(exc))
            return False
        self._stats.dropped("dead_letter_full", dropped)
        dead_dir = self._config.queue_dir / DEAD_DIR
        for item in items:
            described = f"node {item.row.node} at {item.row.time}" if item.row else repr(item.text[:80])
            if node_limit:
                logger.error("emoncms refused a row for a new node (%s): the account has reached its node limit "
                             "(32 by default); moved it to %s — rows for existing nodes still go through",
                             described, dead_dir)
            else:
                logger.error("emoncms refused a row (%s): %s; moved it to %s", described, self._scrub(error),
                             dead_dir)
        return True

    # --- bookkeeping -----------------------------------------------------------------------------------

    def _back_off(self, message: str) -> float:
        """Schedule the next attempt with capped exponential backoff and jitter; returns the delay."""
        failures = self._stats.failed(self._scrub(message))
        jitter = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
        delay = backoff_delay(failures, self._backoff_initial, self._backoff_max, jitter)
        self._stats.retry_at(time.monotonic() + delay)
        return delay

    def _disk_error(self, use: _Use, what: str, exc: QueueError) -> None:
        """Count a disk error; log it only when it changes the state of `use` (`disk_outcome`)."""
        message = self._scrub(str(exc))
        self._stats.error("disk", message)
        if use is _Use.SENDING:
            self._pass_disk_error = True
        self._disk[use], changed = disk_outcome(self._disk[use], message)
        if changed:
            logger.error("emoncms queue: %s: %s (counted in pvmonit_emoncms_errors_total{kind=\"disk\"}; said "
                         "again when the error changes or the disk works again)", what, message)

    def _disk_works(self, use: _Use) -> None:
        failures = self._disk[use].failures
        self._disk[use], changed = disk_outcome(self._disk[use], None)
        if changed:
            logger.info("emoncms queue: %s works again, after %d failed disk operations", use.value, failures)

    def _scrub(self, text: str) -> str:
        return self._client.scrub(text)

    def _log_exception(self, what: str) -> None:
        """`logger.exception`, with the traceback's text scrubbed of the key (an exception may quote it)."""
        logger.error("%s\n%s", what, self._scrub(traceback.format_exc().rstrip()))

    def _refresh_stats(self, use: _Use) -> bool:
        """Read the queue's figures into the stats; False when the disk refused."""
        try:
            stats = self._queue.stats()
        except QueueError as exc:
            self._disk_error(use, "cannot read the queue's figures", exc)
            return False
        self._stats.queue(stats)
        return True


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
