"""The delivery policy: what the flush thread does with a batch once emoncms answered. Pure: no I/O, no clock,
no threads — the loop in `loop.py` carries the decisions out.

* `Ok` → remove the rows from the queue.
* `ContentError` → emoncms refused something in the batch: split it in halves and send each on its own, down
  to the single row it refuses, which is buried in the dead letters (the other rows go through).
* `AuthError`, `TransientError` → keep every row and back off (capped exponential backoff with jitter).

A disk that fails is said once, not at every operation: `disk_outcome` tells the loop when the state of the
queue's disk changed (it started failing, failed otherwise, or works again), the only time worth a log line.

The batch size paces itself: after a timeout the next request carries half the rows of the one that timed out
(down to one row), so a server too slow for `batch_size` rows within `timeout` (an emonPi on an SD card) still
drains the backlog instead of receiving the same rows for ever; after `GROW_AFTER` successes in a row the size
doubles again, up to `batch_size`.
"""

import enum
from dataclasses import dataclass

from pvmonit_exporter.forwarder.kinds import ErrorKind
from pvmonit_exporter.forwarder.outcome import AuthError, ContentError, Ok, Outcome, TransientError
from pvmonit_exporter.workers import capped_doubling

GROW_AFTER = 16  # successful requests in a row before trying twice as many rows again after a timeout


class Action(enum.Enum):
    REMOVE = "remove"  # emoncms stored every row: delete them from the queue
    SPLIT = "split"  # emoncms refused something in the batch: send each half on its own
    BURY = "bury"  # emoncms refused this single row: move it to the dead letters
    BACK_OFF = "back_off"  # keep every row, wait, then try again


@dataclass(frozen=True)
class Pace:
    """The next request carries at most `limit` rows; `streak` requests in a row have succeeded at it."""

    limit: int
    streak: int = 0


@dataclass(frozen=True)
class Decision:
    action: Action
    pace: Pace  # for the next request
    error: ErrorKind | None  # the error to count, if any


def decide(outcome: Outcome, rows: int, pace: Pace, batch_size: int) -> Decision:
    """What to do after sending `rows` rows at `pace` got `outcome`; `batch_size` is the configured maximum."""
    if isinstance(outcome, Ok):
        return Decision(Action.REMOVE, _after_success(pace, batch_size), None)
    if isinstance(outcome, ContentError):
        return Decision(Action.SPLIT if rows > 1 else Action.BURY, pace, "content")
    if isinstance(outcome, AuthError):
        return Decision(Action.BACK_OFF, Pace(pace.limit), "auth")
    if isinstance(outcome, TransientError) and outcome.kind == "timeout":
        return Decision(Action.BACK_OFF, Pace(max(1, min(pace.limit, rows) // 2)), "timeout")
    return Decision(Action.BACK_OFF, Pace(pace.limit), outcome.kind)


def _after_success(pace: Pace, batch_size: int) -> Pace:
    if pace.limit >= batch_size:
        return Pace(batch_size)
    if pace.streak + 1 >= GROW_AFTER:
        return Pace(min(batch_size, pace.limit * 2))
    return Pace(pace.limit, pace.streak + 1)


def backoff_delay(failures: int, initial: float, maximum: float, jitter: float) -> float:
    """Seconds to wait after `failures` failed attempts in a row: `initial` doubling up to `maximum`, times
    `jitter` (drawn from [0.5, 1] by the caller, so that many exporters do not retry in step)."""
    return capped_doubling(failures, initial, maximum) * jitter


@dataclass(frozen=True)
class DiskHealth:
    """How the queue's disk has been doing for one thread: `error` while its operations fail, `failures` since."""

    error: str | None = None
    failures: int = 0


def disk_outcome(health: DiskHealth, error: str | None) -> tuple[DiskHealth, bool]:
    """The health after an operation that failed with `error` (None: it worked), and whether that changed it:
    working → failing, failing with another error, or failing → working."""
    if error is None:
        return DiskHealth(), health.error is not None
    return DiskHealth(error, health.failures + 1), error != health.error
