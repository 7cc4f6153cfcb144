"""The last 24 hours of the summary, in memory: what the live page's small charts draw, with or without emoncms.

`ChartRing` is pure: it averages the samples it is given into one point per 5-minute slot of the wall clock
and keeps the last 288 points. `ChartRecorder` is the thin loop around it: a thread that samples the state
every 30 s. Nothing is written to disk: after a restart the charts start empty.
"""

import logging
import math
import threading
from collections import deque
from dataclasses import dataclass, field

from pvmonit_exporter.state import State
from pvmonit_exporter.summary import Summary, summarise
from pvmonit_exporter.workers import Worker

log = logging.getLogger(__name__)

SLOT_SECONDS = 300.0
SLOTS = 288  # 24 hours
SAMPLE_SECONDS = 30.0
FIRST_SAMPLE_SECONDS = 5.0
# What a point holds: the summary's values that make sense as a line over a day.
SERIES = ("battery_soc", "battery_voltage", "pv_power", "consumption")


@dataclass(frozen=True)
class Point:
    """The mean of each series over one slot (None when no sample had a value); `time` is the slot's start."""

    time: float
    values: tuple[float | None, ...]  # in the order of SERIES


@dataclass
class _Slot:
    start: float
    sums: list[float] = field(default_factory=lambda: [0.0] * len(SERIES))
    counts: list[int] = field(default_factory=lambda: [0] * len(SERIES))

    def add(self, summary: Summary) -> None:
        for index, name in enumerate(SERIES):
            value = getattr(summary, name)
            if value is not None and math.isfinite(value):
                self.sums[index] += value
                self.counts[index] += 1

    def point(self) -> Point:
        return Point(self.start, tuple(s / n if n else None for s, n in zip(self.sums, self.counts, strict=True)))


class ChartRing:
    """Points of `slot_seconds`, the newest `slots` of them. Not thread-safe: `ChartRecorder` guards it."""

    def __init__(self, slot_seconds: float = SLOT_SECONDS, slots: int = SLOTS) -> None:
        self.slot_seconds = slot_seconds
        self.slots = slots
        self._closed: deque[Point] = deque(maxlen=slots - 1)  # and the slot in progress
        self._current: _Slot | None = None

    def add(self, time: float, summary: Summary) -> None:
        """One sample taken at `time` (wall clock). A sample in another slot closes the current one, so a clock
        stepped back starts a new point rather than mixing two moments."""
        start = math.floor(time / self.slot_seconds) * self.slot_seconds
        if self._current is None or self._current.start != start:
            if self._current is not None:
                self._closed.append(self._current.point())
            self._current = _Slot(start)
        self._current.add(summary)

    def points(self, now: float) -> list[Point]:
        """The points of the 24 hours before `now`, oldest first, the slot in progress last."""
        horizon = now - self.slot_seconds * self.slots
        points = [*self._closed, *([self._current.point()] if self._current is not None else [])]
        return [point for point in points if horizon < point.time <= now]


class ChartRecorder(Worker):
    """Samples `state` every `sample_seconds` into a ring, on its own daemon thread; `points()` is thread-safe."""

    def __init__(self, state: State, ring: ChartRing | None = None, sample_seconds: float = SAMPLE_SECONDS) -> None:
        self._state = state
        self._ring = ring if ring is not None else ChartRing()
        self._sample_seconds = sample_seconds
        self._lock = threading.Lock()
        super().__init__("history", self._run)
        self._failure_logged = False

    @property
    def slot_seconds(self) -> float:
        return self._ring.slot_seconds

    def sample(self) -> None:
        summary = summarise(self._state.devices(), self._state.probes())
        with self._lock:
            self._ring.add(self._state.now(), summary)

    def points(self) -> list[Point]:
        with self._lock:
            return self._ring.points(self._state.now())

    def _run(self) -> None:
        # The first sample waits for the devices' first blocks (a second or two after start).
        if self._stop.wait(min(FIRST_SAMPLE_SECONDS, self._sample_seconds)):
            return
        while True:
            try:
                self.sample()
            except Exception:  # a bug here must not end the history; logged with its traceback, once
                if not self._failure_logged:
                    log.exception("history: sampling failed")
                    self._failure_logged = True
            if self._stop.wait(self._sample_seconds):
                return
