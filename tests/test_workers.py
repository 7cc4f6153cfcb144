"""The shared thread pieces: `Backoff`'s delays (a table), and `Worker`'s start-once and stop."""

import threading

import pytest

from pvmonit_exporter.workers import Backoff, Worker, capped_doubling


@pytest.mark.parametrize(
    ("failures", "first", "maximum", "expected"),
    [
        (1, 0.5, 30.0, 0.5),  # the serial reader's first retry
        (2, 0.5, 30.0, 1.0),
        (7, 0.5, 30.0, 30.0),  # 0.5 · 2⁶ = 32, capped
        (1, 30.0, 600.0, 30.0),  # a port scan that heard nothing wanted
        (5, 30.0, 600.0, 480.0),
        (6, 30.0, 600.0, 600.0),
        (10_000, 2.0, 60.0, 60.0),  # no overflow after a long outage
    ],
)
def test_capped_doubling(failures: int, first: float, maximum: float, expected: float) -> None:
    assert capped_doubling(failures, first, maximum) == expected


def test_backoff_doubles_to_its_ceiling_and_starts_again_after_a_reset() -> None:
    backoff = Backoff(2.0, 60.0)
    assert [backoff.next_delay() for _ in range(7)] == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    backoff.reset()
    assert [backoff.next_delay() for _ in range(2)] == [2.0, 4.0]


def test_the_doubling_matches_the_loops_it_replaced() -> None:
    """`delay = min(delay * 2, maximum)` after each wait, as the serial and Bluetooth loops did."""
    backoff, delay = Backoff(0.5, 30.0), 0.5
    for _ in range(40):
        assert backoff.next_delay() == delay
        delay = min(delay * 2, 30.0)


def test_a_worker_runs_in_its_named_daemon_thread_until_asked_to_stop() -> None:
    seen: list[threading.Thread] = []
    stop = threading.Event()

    def loop() -> None:
        seen.append(threading.current_thread())
        stop.wait()

    worker = Worker("test-worker", loop, stop=stop)
    worker.start()
    assert worker.running
    assert worker.stop(timeout=30)
    assert not worker.running
    assert [(thread.name, thread.daemon) for thread in seen] == [("test-worker", True)]


def test_a_worker_starts_once() -> None:
    worker = Worker("test-worker", lambda: None)
    worker.start()
    with pytest.raises(RuntimeError, match="test-worker was already started"):
        worker.start()
    assert worker.stop()


def test_stop_says_when_the_thread_outlives_the_timeout() -> None:
    release = threading.Event()

    def stuck() -> None:  # a loop that does not watch its stop event
        release.wait(30)

    worker = Worker("test-stuck", stuck)
    worker.start()
    try:
        assert not worker.stop(timeout=0.01)
        assert worker.running
    finally:
        release.set()
    assert worker.stop(timeout=30)


def test_request_stop_sets_the_event_without_waiting_and_stop_before_start_is_harmless() -> None:
    stop = threading.Event()
    worker = Worker("test-unstarted", lambda: None, stop=stop)
    worker.request_stop()
    assert stop.is_set()
    assert worker.stop()
