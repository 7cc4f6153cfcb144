"""The delivery policy, table-driven: no threads, no sockets, no disk."""

import pytest

from pvmonit_exporter.forwarder.kinds import ERROR_KINDS
from pvmonit_exporter.forwarder.outcome import AuthError, ContentError, Ok, Outcome, TransientError
from pvmonit_exporter.forwarder.policy import (
    GROW_AFTER,
    Action,
    Decision,
    DiskHealth,
    Pace,
    backoff_delay,
    decide,
    disk_outcome,
)

BATCH = 500
REFUSED = ContentError("Format error, json value is not numeric")
TIMEOUT = TransientError("timeout", "no complete answer within 1 s")


@pytest.mark.parametrize(
    ("outcome", "rows", "pace", "expected"),
    [
        # emoncms stored the rows: remove them; at full size the pace stays there.
        (Ok(), 500, Pace(500), Decision(Action.REMOVE, Pace(500), None)),
        (Ok(), 3, Pace(500), Decision(Action.REMOVE, Pace(500), None)),
        # below full size, successes are counted, and after GROW_AFTER in a row the size doubles.
        (Ok(), 125, Pace(125, 3), Decision(Action.REMOVE, Pace(125, 4), None)),
        (Ok(), 125, Pace(125, GROW_AFTER - 1), Decision(Action.REMOVE, Pace(250), None)),
        (Ok(), 300, Pace(300, GROW_AFTER - 1), Decision(Action.REMOVE, Pace(500), None)),  # capped at batch_size
        # something in the batch is refused: split it; a single refused row goes to the dead letters.
        (REFUSED, 500, Pace(500), Decision(Action.SPLIT, Pace(500), "content")),
        (REFUSED, 2, Pace(500), Decision(Action.SPLIT, Pace(500), "content")),
        (REFUSED, 1, Pace(500), Decision(Action.BURY, Pace(500), "content")),
        # a timeout halves the next request, from the rows actually sent, down to one row.
        (TIMEOUT, 500, Pace(500), Decision(Action.BACK_OFF, Pace(250), "timeout")),
        (TIMEOUT, 250, Pace(250, 7), Decision(Action.BACK_OFF, Pace(125), "timeout")),
        (TIMEOUT, 40, Pace(500), Decision(Action.BACK_OFF, Pace(20), "timeout")),  # a short queue: 40 sent
        (TIMEOUT, 3, Pace(3), Decision(Action.BACK_OFF, Pace(1), "timeout")),
        (TIMEOUT, 1, Pace(1), Decision(Action.BACK_OFF, Pace(1), "timeout")),
        # other failures keep the rows and the size, and end a success streak.
        (TransientError("connection", "refused"), 500, Pace(500), Decision(Action.BACK_OFF, Pace(500), "connection")),
        (TransientError("http", "HTTP 302 redirect to …"), 125, Pace(125, 9),
         Decision(Action.BACK_OFF, Pace(125), "http")),
        (AuthError("HTTP 401"), 500, Pace(500), Decision(Action.BACK_OFF, Pace(500), "auth")),
    ],
)
def test_decide(outcome: Outcome, rows: int, pace: Pace, expected: Decision) -> None:
    assert decide(outcome, rows, pace, BATCH) == expected


def test_a_slow_server_is_paced_down_to_what_it_takes_in_time_then_probed_again() -> None:
    """A server storing 200 rows within the timeout: the pace settles at 125 rows, tries 250 after a streak of
    successes, and comes back to 125 — it never stays stuck on a size that cannot get through."""
    fits = 200
    pace = Pace(BATCH)
    sizes = []
    for _ in range(2 * GROW_AFTER + 6):
        sizes.append(pace.limit)
        outcome: Outcome = Ok() if pace.limit <= fits else TIMEOUT
        pace = decide(outcome, pace.limit, pace, BATCH).pace

    assert sizes[:4] == [500, 250, 125, 125]
    assert sizes.count(250) == 3  # once after the first timeout, then once after each streak
    assert max(sizes[2:]) == 250
    assert all(size in (125, 250) for size in sizes[1:])


@pytest.mark.parametrize(
    ("failures", "jitter", "expected"),
    [(1, 1.0, 5.0), (2, 1.0, 10.0), (3, 0.5, 10.0), (7, 1.0, 300.0), (10_000, 1.0, 300.0), (10_000, 0.5, 150.0)],
)
def test_backoff_doubles_up_to_its_ceiling_times_the_jitter(failures: int, jitter: float, expected: float) -> None:
    assert backoff_delay(failures, 5.0, 300.0, jitter) == expected


def test_every_error_kind_the_client_can_produce_is_a_label() -> None:
    assert set(ERROR_KINDS) == {"connection", "timeout", "http", "auth", "content", "disk"}


FULL, IO = "database or disk is full", "disk I/O error"


@pytest.mark.parametrize(
    ("health", "error", "expected"),
    [
        (DiskHealth(), None, (DiskHealth(), False)),  # works, still works: nothing to say
        (DiskHealth(), FULL, (DiskHealth(FULL, 1), True)),  # starts failing: said
        (DiskHealth(FULL, 1), FULL, (DiskHealth(FULL, 2), False)),  # the same again: counted only
        (DiskHealth(FULL, 7), IO, (DiskHealth(IO, 8), True)),  # fails otherwise: said
        (DiskHealth(IO, 8), None, (DiskHealth(), True)),  # works again: said
    ],
    ids=["ok", "starts", "same", "other", "recovers"],
)
def test_disk_outcome_changes_once_per_state(health: DiskHealth, error: str | None,
                                             expected: tuple[DiskHealth, bool]) -> None:
    assert disk_outcome(health, error) == expected
