"""The 24-hour ring behind the live page's charts: 5-minute means on the wall clock, 288 points, in memory."""

import json
import threading

from pvmonit_exporter.charts import SERIES, ChartRecorder, ChartRing, Point
from pvmonit_exporter.config import DeviceConfig, ProbeConfig, WebConfig
from pvmonit_exporter.state import State
from pvmonit_exporter.summary import Summary
from pvmonit_exporter.vedirect.framing import DecoderStats
from pvmonit_exporter.web.api import state_document
from tests.helpers import wait_for
from tests.vedirect_samples import MPPT

DAY_START = 1_780_012_800.0  # a multiple of 300 s


def summary(pv: float | None = None, consumption: float | None = None, soc: float | None = None) -> Summary:
    return Summary(battery_soc=soc, battery_voltage=None, battery_device=None, pv_power=pv, chargers=1,
                   consumption=consumption, consumption_probes=1, temperature=None)


def test_samples_of_one_slot_are_averaged_series_by_series() -> None:
    ring = ChartRing()
    ring.add(DAY_START + 10, summary(pv=100, consumption=50))
    ring.add(DAY_START + 40, summary(pv=200))  # no consumption reading: the mean is over the samples that had one
    ring.add(DAY_START + 299, summary(pv=300, consumption=70))
    ring.add(DAY_START + 300, summary(soc=0.5))
    assert SERIES == ("battery_soc", "battery_voltage", "pv_power", "consumption")
    assert ring.points(DAY_START + 301) == [
        Point(DAY_START, (None, None, 200.0, 60.0)),
        Point(DAY_START + 300, (0.5, None, None, None)),  # the slot in progress is shown too
    ]


def test_the_ring_keeps_24_hours_and_forgets_older_points() -> None:
    ring = ChartRing()
    for slot in range(300):  # 25 hours of slots
        ring.add(DAY_START + slot * 300, summary(pv=float(slot)))
    now = DAY_START + 299 * 300
    points = ring.points(now)
    assert len(points) == 288
    assert points[0].time == now - 287 * 300
    assert [p.values[2] for p in points] == [float(slot) for slot in range(12, 300)]
    # A day later with nothing sampled (the clock jumped), none of it is shown as the last 24 hours.
    assert ring.points(now + 86_400 + 300) == []


def test_a_clock_stepped_back_starts_a_new_point_instead_of_mixing_two_moments() -> None:
    ring = ChartRing()
    ring.add(DAY_START + 600, summary(pv=100))
    ring.add(DAY_START + 10, summary(pv=900))
    assert ring.points(DAY_START + 700) == [Point(DAY_START + 600, (None, None, 100.0, None)),
                                            Point(DAY_START, (None, None, 900.0, None))]


def test_the_recorder_samples_the_state_on_its_own_thread() -> None:
    clock = [DAY_START + 5]
    state = State([DeviceConfig("mppt", "/dev/x")], [ProbeConfig("clamp", "file", "power", path="/y")],
                  clock=lambda: clock[0])
    state.record_blocks("mppt", [MPPT], DecoderStats())
    state.record_probe("clamp", 420.0)
    recorder = ChartRecorder(state, sample_seconds=0.05)
    recorder.start()
    try:
        points = wait_for(recorder.points)
    finally:
        recorder.stop()
    (point,) = points
    assert point.time == DAY_START
    assert [None if v is None else round(v, 6) for v in point.values] == [None, 26.18, 112.0, 420.0]
    assert not any(t.name == "history" and t.is_alive() for t in threading.enumerate())


def test_api_state_sends_the_points_compactly_rounded() -> None:
    state = State([DeviceConfig("mppt", "/dev/x")], clock=lambda: DAY_START + 301)
    ring = ChartRing()
    ring.add(DAY_START + 1, Summary(0.83949, 26.1849, "bmv", 112.49, 1, None, 0, 20.0))
    ring.add(DAY_START + 300, summary(pv=0.4))
    document = state_document(state, WebConfig(), history=ChartRecorder(state, ring))["history"]
    assert document == {
        "interval_seconds": 300.0,
        "columns": ["time", "battery_soc", "battery_voltage", "pv_power", "consumption"],
        "points": [[int(DAY_START), 0.839, 26.18, 112, None], [int(DAY_START) + 300, None, None, 0, None]],
    }
    assert json.dumps(document["points"]) == (
        f"[[{int(DAY_START)}, 0.839, 26.18, 112, null], [{int(DAY_START) + 300}, null, null, 0, null]]")
