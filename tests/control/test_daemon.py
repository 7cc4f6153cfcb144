"""Switching loads end to end: a real `pvmonit-exporter run` reading the simulated installation on PTYs, switching
a `command` actuator whose commands are shell one-liners writing to a file (a relay board's command-line tool
stand-in: it prints and records on/off, as the issue's `relay 1 on|off|state`)."""

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from pvmonit_exporter.demo.ports import Simulator
from tests.daemon.test_exporter import sample
from tests.daemon.test_lifecycle import Daemon
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


def relay(tmp_path: Path, state: str | None = None) -> str:
    """The actuator's keys: `on`/`off` record the switch in `relay.log` and the level in `relay`; `state` prints
    the level (or `state`, a fixed answer: a relay that does not follow)."""
    level, log = tmp_path / "relay", tmp_path / "relay.log"
    def command(word: str) -> str:
        return f'["/bin/sh", "-c", "echo {word} > {level}; echo {word} >> {log}"]'
    read = f'["/bin/echo", "{state}"]' if state else f'["/bin/cat", "{level}"]'
    return f"""
  - name: heater
    type: command
    on: {command("on")}
    off: {command("off")}
    state: {read}
    confirm_timeout: 1
"""


def switched(tmp_path: Path) -> list[str]:
    path = tmp_path / "relay.log"
    return path.read_text(encoding="utf-8").split() if path.exists() else []


def audit(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "control.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def control_config(tmp_path: Path, simulator: Simulator, sections: str, stale_timeout: float = 2) -> Path:
    """The simulator's devices and control switching for real every 0.5 s, audited, then `sections` (actuators
    and rules)."""
    devices = "".join(f"  - name: {name}\n    port: {port}\n    stale_timeout: {stale_timeout}\n    history: false\n"
                      for name, port in simulator.ports.items())
    path = tmp_path / "config.yaml"
    path.write_text(f"""devices:
{devices}control:
  dry_run: false
  interval: 0.5
  audit_file: control.jsonl
{sections}""", encoding="utf-8")
    return path


def write_config(tmp_path: Path, simulator: Simulator, rule: str, actuator: str, stale_timeout: float = 2) -> Path:
    """`actuator` switched by one rule on it (max_age 30) with `rule`'s conditions."""
    return control_config(tmp_path, simulator, f"""actuators:{actuator}rules:
  - actuator: heater
    max_age: 30
{rule}""", stale_timeout)


def test_a_day_where_the_battery_fills_switches_on_once_and_off_once(tmp_path: Path, daemons: list[Daemon]) -> None:
    """From 11:00 at 88 %: absorption and 95 % near noon (on), float, then the charger off at dusk (off). A
    simulated day lasts two real minutes."""
    rule = """    on_when: {all: [{value: mppt.CS, in: [Absorption, Float]},
                    {value: summary.battery_soc, at_least: 0.95}]}
    off_when: {value: mppt.CS, in: ["Off"]}
"""
    with Simulator(day_seconds=120, start_hour=11.0, period=0.5) as simulator:
        simulator.model.soc = 0.88
        daemon = Daemon(write_config(tmp_path, simulator, rule, relay(tmp_path), stale_timeout=5), tmp_path)
        daemons.append(daemon)
        wait_for(lambda: switched(tmp_path)[-1:] == ["off"] and "on" in switched(tmp_path), timeout=120)
        assert simulator.model.hour > 19.5  # off at dusk, not earlier
        state = daemon.state()
        assert daemon.stop() == 0
    assert switched(tmp_path) == ["off", "on", "off", "off"]  # safe at start, on, off at dusk, safe at stop
    decisions = [line for line in audit(tmp_path) if line["rule"]["why"] not in ("start", "stop")]
    # A loaded machine may leave a device's blocks late for a moment: a stale input holds, and says so.
    assert {line["veto"] for line in decisions} <= {None, "stale_input"}
    lines = [line for line in decisions if line["veto"] is None]
    assert [(line["from"], line["to"]) for line in lines] == [("off", "on"), ("on", "off")]
    on, off = lines
    assert on["rule"]["why"] == "on_when"
    assert {c["value"]: c["holds"] for c in on["rule"]["conditions"][:2]} == {"mppt.CS": True,
                                                                              "summary.battery_soc": True}
    assert on["rule"]["conditions"][1]["input"] >= 0.95
    assert on["dry_run"] is False
    assert set(on) == {"time", "actuator", "from", "to", "rule", "veto", "dry_run"}
    assert off["rule"]["text"] == "Off"
    (card,) = state["control"]["actuators"]
    assert (card["position"], card["on"], card["reason"], card["fault"]) == ("off", False, "Off", False)
    log = daemon.log()
    assert log.count("control: heater on (was off)") == 1
    assert log.count("control: heater off (was on): Off") == 1
    assert "Traceback" not in log


FAST_ON = """    on_when: {value: summary.battery_soc, at_least: 0.5}
    off_when: {value: summary.battery_soc, below: 0.3}
    data_loss_after: 3
"""


def test_the_battery_monitor_unplugged_while_on_switches_off_after_data_loss_after(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    with Simulator(period=0.5) as simulator:
        daemon = Daemon(write_config(tmp_path, simulator, FAST_ON, relay(tmp_path)), tmp_path)
        daemons.append(daemon)
        wait_for(lambda: switched(tmp_path) == ["off", "on"], timeout=60)
        assert sample(daemon.base, "pvmonit_control_actuator_on", actuator="heater") == 1.0
        simulator.port("bmv").unplug()
        wait_for(lambda: switched(tmp_path) == ["off", "on", "off"], timeout=60)
        last = audit(tmp_path)[-1]
        assert (last["from"], last["to"], last["rule"]["why"]) == ("on", "off", "data_loss")
        assert [c["holds"] for c in last["rule"]["conditions"]] == [None, None]
        assert daemon.stop() == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_while_on_runs_the_off_command_before_exit(tmp_path: Path, daemons: list[Daemon],
                                                           signum: signal.Signals) -> None:
    with Simulator(period=0.5) as simulator:
        daemon = Daemon(write_config(tmp_path, simulator, FAST_ON, relay(tmp_path)), tmp_path)
        daemons.append(daemon)
        wait_for(lambda: switched(tmp_path) == ["off", "on"], timeout=60)
        daemon.process.send_signal(signum)
        assert daemon.process.wait(timeout=60) == 0
    assert switched(tmp_path) == ["off", "on", "off"]
    assert audit(tmp_path)[-1]["rule"]["why"] == "stop"


def test_a_read_back_that_disagrees_is_a_fault_and_the_safe_state(tmp_path: Path, daemons: list[Daemon]) -> None:
    """A relay stuck on (welded contacts): commanded off at start, it reads back on."""
    with Simulator(period=0.5) as simulator:
        config = write_config(tmp_path, simulator, FAST_ON.replace("0.5}", "1.5}"), relay(tmp_path, state="on"))
        daemon = Daemon(config, tmp_path)
        daemons.append(daemon)
        wait_for(lambda: sample(daemon.base, "pvmonit_control_fault", actuator="heater") == 1.0, timeout=60)
        assert switched(tmp_path) == ["off", "off"]  # safe at start, safe again at the fault
        assert sample(daemon.base, "pvmonit_control_actuator_on", actuator="heater") == 1.0  # as read back
        (card,) = daemon.state()["control"]["actuators"]
        assert (card["fault"], card["read_back"], card["position"]) == (True, True, "off")
        assert daemon.stop() == 0
    log = daemon.log()
    assert log.count("control: heater: fault: it reads back on, not off") == 1
    fault = [line for line in audit(tmp_path) if line["veto"] == "fault"]
    assert [(line["from"], line["to"]) for line in fault] == [("off", "off")]


def test_sighup_keeps_an_unchanged_actuator_as_it_is(tmp_path: Path, daemons: list[Daemon]) -> None:
    """A reload with the same actuator (its rule changed) does not switch it off and on again."""
    with Simulator(period=0.5) as simulator:
        config = write_config(tmp_path, simulator, FAST_ON, relay(tmp_path))
        daemon = Daemon(config, tmp_path)
        daemons.append(daemon)
        wait_for(lambda: switched(tmp_path) == ["off", "on"], timeout=60)
        config.write_text(config.read_text(encoding="utf-8").replace("data_loss_after: 3", "data_loss_after: 30"),
                          encoding="utf-8")
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in daemon.log(), timeout=60)
        wait_for(lambda: daemon.state()["control"]["actuators"][0]["position"] == "on", timeout=30)
        assert switched(tmp_path) == ["off", "on"]
        assert daemon.stop() == 0
    assert switched(tmp_path) == ["off", "on", "off"]
