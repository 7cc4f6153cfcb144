"""The control loop in process, on a clock the test moves: what it runs, what it audits, what it logs. The
actuators are real `command` actuators running /bin/sh one-liners."""

import datetime
import json
import logging
from pathlib import Path

import pytest

from pvmonit_exporter.collector.control import ControlCollector
from pvmonit_exporter.config import parse_config
from pvmonit_exporter.control.loop import RETRY_INITIAL, Controller
from pvmonit_exporter.state import State

START = 1_782_036_000.0


def setup(tmp_path: Path, *, dry_run: bool, fail_first: int = 0, rule_options: str = "",
          tick: list[float] | None = None) -> tuple[Controller, State, list[float]]:
    """A heater on when the tank probe reads below 50 °C; its `on` command fails `fail_first` times. The test
    moves the wall clock (the list returned), and the monotonic one (`tick`) if it passes one."""
    counter = tmp_path / "attempts"
    on = (f'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n+1)) > {counter}; '
          f'if [ $n -lt {fail_first} ]; then echo "relay board busy" >&2; exit 3; fi; echo on >> {tmp_path}/log')
    config = parse_config(f"""
probes:
  - {{name: tank, type: file, quantity: temperature, path: /nonexistent}}
control:
  dry_run: {str(dry_run).lower()}
  interval: 10
  audit_file: {tmp_path}/audit.jsonl
actuators:
  - name: heater
    type: command
    on: [/bin/sh, -c, '{on}']
    off: [/bin/sh, -c, 'echo off >> {tmp_path}/log']
rules:
  - {{actuator: heater, on_when: {{value: tank, below: 50}}, off_when: {{value: tank, above: 60}}{rule_options}}}
""", "c.yaml")
    now = [START]
    ticker = None if tick is None else (lambda: tick[0])
    state = State((), config.probes, clock=lambda: now[0], ticker=ticker)
    return Controller(config, state, clock=lambda: now[0], ticker=ticker), state, now


def ran(tmp_path: Path) -> list[str]:
    path = tmp_path / "log"
    return path.read_text().split() if path.exists() else []


def audit(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_a_failed_switch_is_audited_and_tried_again_after_a_backoff(tmp_path: Path) -> None:
    controller, state, now = setup(tmp_path, dry_run=False, fail_first=2)
    controller.start()
    controller.request_stop()  # the test evaluates by hand
    state.record_probe("tank", 40.0)
    attempts = []
    for step in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5):
        now[0] = START + step
        state.record_probe("tank", 40.0)
        controller.evaluate()
        attempts.append(int((tmp_path / "attempts").read_text()))
    # Tried at 0 s, again after 1 s, again after 2 more: not at every evaluation.
    assert attempts == [1, 1, 2, 2, 2, 2, 3, 3]
    assert ran(tmp_path) == ["off", "on"]  # safe at start; on at the third attempt
    failures = [line for line in audit(tmp_path) if "error" in line]
    assert [line["error"] for line in failures] == ["/bin/sh exited with status 3: relay board busy"] * 2
    assert RETRY_INITIAL == 1.0
    status = controller.status()["actuators"][0]
    assert (status["position"], status["error"], status["switches"]) == ("on", None, 1)
    controller.stop()
    assert ran(tmp_path) == ["off", "on", "off"]


@pytest.mark.slow
def test_a_failed_switch_is_tried_again_after_its_backoff_across_a_wall_clock_jump(tmp_path: Path) -> None:
    """The backoff is real time: a wall clock set back a day must not put the retry off for a day."""
    tick = [0.0]
    controller, state, now = setup(tmp_path, dry_run=False, fail_first=1, tick=tick)
    controller.start()
    controller.request_stop()
    state.record_probe("tank", 40.0)
    controller.evaluate()  # the first attempt fails
    now[0], tick[0] = START - 86_400 + 1, 1.0
    state.record_probe("tank", 40.0)
    controller.evaluate()
    assert (tmp_path / "attempts").read_text().split() == ["2"]
    assert ran(tmp_path) == ["off", "on"]
    controller.stop()


@pytest.mark.slow
@pytest.mark.parametrize("jump", [90 * 86_400.0, -86_400.0], ids=["+90 days", "-1 day"])
def test_min_on_holds_for_real_time_across_a_wall_clock_jump(tmp_path: Path, jump: float) -> None:
    """The daemon measures its guards on the monotonic clock and shows and audits the wall clock's time."""
    tick = [0.0]
    controller, state, now = setup(tmp_path, dry_run=False, rule_options=", min_on: 1200", tick=tick)
    controller.start()
    controller.request_stop()
    state.record_probe("tank", 40.0)
    controller.evaluate()
    positions = []
    for seconds in (10.0, 600.0, 1199.0, 1200.0):
        now[0], tick[0] = START + jump + seconds, seconds
        state.record_probe("tank", 65.0)  # wants off
        controller.evaluate()
        positions.append(controller.status()["actuators"][0]["position"])
    assert positions == ["on", "on", "on", "off"]
    assert ran(tmp_path) == ["off", "on", "off"]
    assert controller.status()["actuators"][0]["since"] == START + jump + 1200  # "off since", on the wall clock
    held, off = audit(tmp_path)[-2:]
    assert (held["veto"], off["to"]) == ("min_on", "off")
    assert off["time"] == datetime.datetime.fromtimestamp(START + jump + 1200).astimezone().isoformat()
    controller.stop()


def test_a_dry_run_decides_audits_and_logs_but_runs_nothing(tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    controller, state, now = setup(tmp_path, dry_run=True)
    caplog.set_level(logging.INFO, logger="pvmonit_exporter.control")
    controller.start()
    controller.request_stop()
    for step, celsius in enumerate([40.0, 45.0, 65.0]):
        now[0] = START + 10 * step
        state.record_probe("tank", celsius)
        controller.evaluate()
    controller.stop()
    assert ran(tmp_path) == []  # not even the safe state
    switches = [(line["from"], line["to"], line["dry_run"]) for line in audit(tmp_path)
                if line["rule"]["why"] in ("on_when", "off_when")]  # type: ignore[index]
    assert switches == [("off", "on", True), ("on", "off", True)]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == ["control: heater on (was off): 40 °C < 50 °C (dry run: nothing switched)",
                     "control: heater off (was on): 65 °C > 60 °C (dry run: nothing switched)"]
    assert controller.status()["dry_run"] is True
    metrics = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in ControlCollector(controller).collect() for s in family.samples}
    heater = (("actuator", "heater"),)
    assert metrics[("pvmonit_control_dry_run", ())] == 1.0
    assert metrics[("pvmonit_control_switches_total", heater)] == 2.0
    assert metrics[("pvmonit_control_wanted_on", heater)] == 0.0
    assert metrics[("pvmonit_control_actuator_on", heater)] == 0.0  # nothing was switched
    assert metrics[("pvmonit_control_fault", heater)] == 0.0
    assert metrics[("pvmonit_control_vetoes_total", (("actuator", "heater"), ("reason", "min_on")))] == 0.0


def test_every_veto_reason_is_in_the_metric_help() -> None:
    from pvmonit_exporter.collector.catalogue import CONTROL_METRICS
    from pvmonit_exporter.control.decide import VETOES

    (doc,) = [d for d in CONTROL_METRICS if d.name == "pvmonit_control_vetoes_total"]
    assert [reason for reason in VETOES if reason not in doc.help] == []


@pytest.mark.slow
def test_a_mode_set_from_elsewhere_is_taken_at_the_next_evaluation_audited_once_and_ends_at_a_reload(
        tmp_path: Path) -> None:
    """An actuator without a rule too: `on` forces it, `auto` gives it back to no rule (its safe state)."""
    controller, state, now = setup(tmp_path, dry_run=False)
    controller.rules.clear()
    controller.slots["heater"].rule = None  # as if the file had no rule for it
    controller.start()
    controller.request_stop()
    assert controller.set_mode("heater", "on", "Home Assistant")
    assert controller.set_mode("heater", "on", "Home Assistant")  # the same again: nothing to audit
    assert not controller.set_mode("boiler", "on", "Home Assistant")
    controller.evaluate()
    assert ran(tmp_path) == ["off", "on"]
    assert controller.status()["actuators"][0]["mode"] == "on"
    assert controller.set_mode("heater", "auto", "Home Assistant")
    now[0] += 10
    controller.evaluate()
    assert ran(tmp_path) == ["off", "on", "off"]  # no rule: its safe state
    assert controller.status()["actuators"][0]["mode"] is None
    modes = [line for line in audit(tmp_path) if "Home Assistant" in line["rule"]["text"]]  # type: ignore[index]
    assert [(line["from"], line["to"], line["rule"]) for line in modes] == [
        ("off", "on", {"why": "mode", "mode": "on", "text": "mode set from Home Assistant: auto → on",
                       "conditions": []}),
        ("on", None, {"why": "mode", "mode": None, "text": "mode set from Home Assistant: on → auto",
                      "conditions": []}),
    ]
    controller.set_mode("heater", "on", "Home Assistant")
    again = Controller(controller.config, state, controller.handover(), clock=lambda: now[0])
    assert again.status()["actuators"][0]["mode"] == "auto"  # the file's rule again
    again.stop()
