"""The two pieces every thread of the daemon shares: a `Worker` (a named daemon thread with a stop event) and
a `Backoff` (capped doubling delays between retries). A leaf: it imports nothing of ours."""

import threading
from collections.abc import Callable

# Past this many doublings every delay is the maximum anyway; the bound keeps 2.0 ** n finite.
_MAX_DOUBLINGS = 30


def capped_doubling(failures: int, first: float, maximum: float) -> float:
    """The wait after `failures` failures in a row (1 or more): `first`, doubled after each further failure,
    never more than `maximum`."""
    return min(maximum, first * 2.0 ** min(failures - 1, _MAX_DOUBLINGS))


class Backoff:
    """Delays between retries: `first`, doubled after each failure up to `maximum`, `first` again after `reset`.

    Not thread-safe: each thread keeps its own."""

    def __init__(self, first: float, maximum: float) -> None:
        self.first, self.maximum = first, maximum
        self._failures = 0

    def next_delay(self) -> float:
        """The wait before the next attempt (one more failure counted)."""
        self._failures += 1
        return capped_doubling(self._failures, self.first, self.maximum)

    def reset(self) -> None:
        """It worked: the next wait is `first` again."""
        self._failures = 0


class Worker:
    """A named daemon thread that runs `target` once, which returns when `_stop` is set (it waits on it, never
    sleeps). Started once; `request_stop` asks without waiting (stopping many workers then costs one wait, not
    many), `stop` asks and waits up to `timeout` (None: as long as it takes).

    `stop`: an event shared with other workers or with the owner's own waits (the forwarder's two loops stop
    together); by default the worker's own."""

    def __init__(self, name: str, target: Callable[[], None], *, stop: threading.Event | None = None) -> None:
        self.name = name
        self._target = target
        self._stop = stop if stop is not None else threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} was already started")
        self._thread = threading.Thread(target=self._target, name=self.name, daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Stop the thread and wait up to `timeout` seconds for it; False when it is still running (a daemon
        thread: it does not keep the process alive)."""
        self.request_stop()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()
