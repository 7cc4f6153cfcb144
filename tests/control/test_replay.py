"""`control replay`: the same decisions as the daemon's loop on the same inputs; unusable CSVs are one line."""

import io
import json
import math
from pathlib import Path

import pytest

from pvmonit_exporter.config import load_config
from pvmonit_exporter.control.loop import Controller
from pvmonit_exporter.control.replay import parse_time, read_rows, replay_command
from pvmonit_exporter.errors import UserError
from pvmonit_exporter.state import State
from tests.config import assert_one_line_error, run_cli

START = 1_782_036_000.0  # 2026-06-21 10:00 UTC

CONFIG = """
probes:
  - {name: pv, type: file, quantity: power, path: /nonexistent/pv}
  - {name: tank, type: file, quantity: temperature, path: /nonexistent/tank}
control:
  dry_run: false
  interval: 10
  audit_file: audit.jsonl
actuators:
  - {name: heater, type: command, on: [/bin/true], off: [/bin/true]}
  - {name: pump, type: command, on: [/bin/true], off: [/bin/true]}
rules:
  - actuator: heater
    on_when: {all: [{value: pv, above: 300}, {value: tank, below: 55}]}
    off_when: {any: [{value: pv, below: 100}, {value: tank, above: 60}]}
    min_on: 120
    on_for: 30
  - actuator: pump
    on_when: {value: pv, above: 200}
    off_when: {value: pv, at_most: 150}
    max_switches_per_hour: 3
"""


def inputs() -> list[tuple[float, float | None, float]]:
    """Two hours every 30 s: a cloudy sun (pv crossing the thresholds back and forth), a tank warming up, and
    the power meter silent for 5 minutes in the middle."""
    rows = []
    for step in range(240):
        pv = 250 + 200 * math.sin(step / 7) + 60 * math.sin(step / 2.3)
        silent = 100 <= step < 110
        rows.append((START + 30 * step, None if silent else round(pv, 1), round(40 + step / 12, 2)))
    return rows


def write(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    csv = tmp_path / "day.csv"
    lines = ["time,pv,tank"] + [f"{t:.0f},{'' if pv is None else pv},{tank}" for t, pv, tank in inputs()]
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config, csv


@pytest.mark.slow
def test_replay_prints_the_decisions_the_daemon_makes_on_the_same_inputs(tmp_path: Path) -> None:
    config_path, csv = write(tmp_path)
    config = load_config(config_path)
    now = [START]
    state = State((), config.probes, clock=lambda: now[0])
    controller = Controller(config, state, clock=lambda: now[0])
    rows = iter(inputs())
    row = next(rows, None)
    while now[0] <= START + 30 * 239:
        while row is not None and row[0] <= now[0]:
            saved, now[0] = now[0], row[0]
            if row[1] is not None:
                state.record_probe("pv", row[1])
            state.record_probe("tank", row[2])
            now[0], row = saved, next(rows, None)
        controller.evaluate()
        now[0] += config.control.interval
    controller.audit.close()
    daemon = (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()

    out, err = io.StringIO(), io.StringIO()
    assert replay_command(config, str(csv), out, err) == 0
    assert err.getvalue() == ""
    replayed = out.getvalue().splitlines()
    assert replayed == daemon
    decisions = [json.loads(line) for line in replayed]
    switches = [(d["actuator"], d["to"]) for d in decisions if d["veto"] is None]
    assert ("heater", "on") in switches
    assert ("pump", "on") in switches
    vetoes = {d["veto"] for d in decisions}
    assert {"max_switches_per_hour", "stale_input", "on_for"} <= vetoes  # the day exercises the guards


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1782036000", 1_782_036_000.0), ("1782036000.5", 1_782_036_000.5),
     ("2026-06-21T10:00:00Z", 1_782_036_000.0), ("2026-06-21T12:00:00+02:00", 1_782_036_000.0)],
)
def test_times_are_unix_seconds_or_iso_8601(text: str, expected: float) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("when,pv\n1,2\n", "no `time` column in the first line (found: when, pv)"),
        ("time,soc\n1,2\n", "no column is a value the rules read (pv, tank)"),
        ("time,pv\nyesterday,2\n", "line 2: time 'yesterday' is neither Unix seconds nor ISO 8601"),
        ("time,pv\n5,2\n4,2\n", "line 3: time goes back (4)"),
        ("time,pv\n", "no rows after the header"),
    ],
)
def test_an_unusable_csv_is_one_line(tmp_path: Path, csv: str, message: str) -> None:
    path = tmp_path / "day.csv"
    path.write_text(csv, encoding="utf-8")
    with pytest.raises(UserError) as caught:
        read_rows(str(path), ["pv", "tank"])
    assert str(caught.value) == f"{path}: {message}"


@pytest.mark.slow
def test_the_command_exits_0_with_json_lines_and_2_with_one_line(tmp_path: Path) -> None:
    config, csv = write(tmp_path)
    result = run_cli("control", "replay", "--config.file", str(config), "--inputs", str(csv))
    assert result.returncode == 0, result.stderr
    assert all(json.loads(line)["actuator"] in ("heater", "pump") for line in result.stdout.splitlines())
    assert_one_line_error(run_cli("control", "replay", "--config.file", str(config), "--inputs",
                                  str(tmp_path / "absent.csv")), f"{tmp_path / 'absent.csv'}: no such file")
