"""The daemon speaking HEX to the simulator's devices over real pseudo-terminals: history in /api/state, the
HEX metrics, one failed probe for a device without HEX, and no staleness while the text pauses."""

import datetime
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pvmonit_exporter.demo.ports import Simulator
from tests.daemon.test_exporter import Daemon, get, is_up, sample
from tests.forwarder.fake_emoncms import WRITE_KEY, FakeEmoncms
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

STALE_TIMEOUT = 2.0
TEXT_PAUSE = 4.0  # longer than the stale timeout: without the excuse, every HEX exchange would mark it down


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Simulator, Daemon]]:
    with Simulator(period=0.25, text_pause=TEXT_PAUSE) as simulator:
        config = tmp_path / "config.yaml"
        lines = ["devices:"]
        for name, port in simulator.ports.items():
            lines += [f"  - name: {name}", f"    port: {port}", f"    stale_timeout: {STALE_TIMEOUT}"]
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        daemon = Daemon(config, tmp_path)
        try:
            yield simulator, daemon
        finally:
            daemon.stop()


def device(base: str, name: str) -> dict[str, Any]:
    status, _, body = get(base + "/api/state")
    assert status == 200
    return next(d for d in json.loads(body)["devices"] if d["name"] == name)


def test_history_settings_and_temperature_reach_the_api_and_metrics(running: tuple[Simulator, Daemon]) -> None:
    simulator, daemon = running
    base = daemon.base
    wait_for(lambda: is_up(base, "mppt"), timeout=20)
    history = wait_for(lambda: device(base, "mppt").get("history"), timeout=30)
    assert [day["days_ago"] for day in history] == list(range(31))
    assert history[0]["day_sequence"] == simulator.model.chargers["mppt"].day_sequence
    assert history[1]["yield_kwh"] == pytest.approx(simulator.model.chargers["mppt"].yield_yesterday, abs=0.01)
    assert "history" not in device(base, "bmv")  # a BMV keeps no HEX history

    wait_for(lambda: sample(base, "vedirect_battery_float_voltage_volts", device="mppt"), timeout=30)
    assert sample(base, "vedirect_battery_absorption_voltage_volts", device="mppt") == pytest.approx(28.8)
    assert sample(base, "vedirect_battery_float_voltage_volts", device="mppt") == pytest.approx(27.6)
    assert sample(base, "vedirect_battery_max_charge_current_amperes", device="mppt") == pytest.approx(30.0)
    temperature = sample(base, "vedirect_charger_temperature_celsius", device="mppt")
    assert temperature is not None
    assert 0 < temperature < 80
    system_yield = sample(base, "vedirect_system_yield_joules", device="mppt")
    assert system_yield is not None
    assert system_yield == pytest.approx(simulator.model.chargers["mppt"].yield_total * 3.6e6, rel=0.01)
    capacity = wait_for(lambda: sample(base, "vedirect_battery_capacity_coulombs", device="bmv"), timeout=30)
    assert capacity == 200 * 3600
    assert (sample(base, "vedirect_hex_requests_total", device="mppt", result="ok") or 0) >= 32


def test_device_without_hex_costs_one_failed_probe(running: tuple[Simulator, Daemon]) -> None:
    _, daemon = running
    base = daemon.base
    wait_for(lambda: sample(base, "vedirect_hex_requests_total", device="inverter", result="timeout"), timeout=30)
    time.sleep(2.0)  # give a second probe every chance to happen
    assert sample(base, "vedirect_hex_requests_total", device="inverter", result="timeout") == 1
    assert sample(base, "vedirect_hex_requests_total", device="inverter", result="ok") == 0
    assert is_up(base, "inverter")


def test_text_pause_after_hex_never_marks_the_device_stale(running: tuple[Simulator, Daemon]) -> None:
    """The MPPT reads 32 history records and its settings, and its text stops for TEXT_PAUSE after each
    reply; it stays up all along, and its blocks keep coming without a checksum error."""
    _, daemon = running
    base = daemon.base
    wait_for(lambda: is_up(base, "mppt"), timeout=20)
    down_seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = device(base, "mppt")
        if not state["up"]:
            down_seen.append(state["age_seconds"])
        if state.get("history") and sample(base, "vedirect_battery_float_voltage_volts", device="mppt"):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the HEX reads did not finish")
    settled = time.monotonic() + TEXT_PAUSE + 1.0
    while time.monotonic() < settled:  # the text comes back after the last reply's pause
        if not device(base, "mppt")["up"]:
            down_seen.append("after")
        time.sleep(0.1)
    assert down_seen == []
    counters = device(base, "mppt")["counters"]
    assert (counters["checksum_errors"], counters["malformed_blocks"]) == (0, 0)
    blocks = counters["blocks"]
    wait_for(lambda: device(base, "mppt")["counters"]["blocks"] > blocks, timeout=10)


def test_closed_days_reach_emoncms_stamped_at_local_noon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon reads the simulated MPPT's month over a real PTY and sends every closed day once to the
    stand-in emoncms, node `mppt_daily`, at 12:00 local time of consecutive dates ending yesterday or the day
    before (before dawn the charger's day 0 is still yesterday)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # the daemon must reach the stand-in on 127.0.0.1 directly
    with FakeEmoncms() as emoncms, Simulator(period=0.25, text_pause=0.5) as simulator:
        config = tmp_path / "config.yaml"
        config.write_text(
            f"devices:\n  - name: mppt\n    port: {simulator.ports['mppt']}\n"
            f"emoncms:\n  url: {emoncms.url}\n  apikey: {WRITE_KEY}\n  queue_dir: {tmp_path / 'queue'}\n"
            "  interval: 1\n", encoding="utf-8")
        daemon = Daemon(config, tmp_path)
        try:
            history: list[dict[str, Any]] = wait_for(lambda: device(daemon.base, "mppt").get("history"), timeout=30)

            def thirty_days() -> list[int] | None:
                found = sorted({p.time for p in emoncms.stored() if p.node == "mppt_daily"})
                return found if len(found) == 30 else None

            times = wait_for(thirty_days, timeout=30)
            time.sleep(3)  # three more snapshots: nothing is sent twice
            daily = [p for p in emoncms.stored() if p.node == "mppt_daily"]
        finally:
            assert daemon.stop() == 0
    dates = [datetime.datetime.fromtimestamp(stamp) for stamp in times]
    assert {(d.hour, d.minute) for d in dates} == {(12, 0)}
    assert [(b.date() - a.date()).days for a, b in itertools.pairwise(dates)] == [1] * 29
    today = datetime.date.today()
    assert dates[-1].date() in (today - datetime.timedelta(days=1), today - datetime.timedelta(days=2))
    yesterday = {p.input: p.value for p in daily if p.time == times[-1]}
    assert yesterday["yield_kwh"] == history[1]["yield_kwh"]
    assert yesterday["bulk_min"] == history[1]["bulk_min"]
    assert "max_pv_voltage_v" in yesterday
    assert len(daily) == 30 * 10  # ten inputs a day, each sent once
