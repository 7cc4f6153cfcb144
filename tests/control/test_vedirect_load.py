"""The load output of a solar charger over HEX, end to end: a real `pvmonit-exporter run` on the simulated MPPT
(which answers sets of 0xEDAB and reports 0xEDA8), through the reader's own HEX session."""

import signal
from pathlib import Path

import pytest

from pvmonit_exporter.config import DEFAULT_STALE_TIMEOUT
from pvmonit_exporter.demo.devices import BlueSolarMppt, Bmv702
from pvmonit_exporter.demo.ports import Simulator
from tests.control.test_daemon import audit, control_config
from tests.daemon.test_exporter import sample
from tests.daemon.test_lifecycle import Daemon
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

AUTOMATIC, OFF, ON = 1, 0, 4


def write_config(tmp_path: Path, simulator: Simulator, rules: str) -> Path:
    return control_config(tmp_path, simulator, """actuators:
  - {name: lights, type: vedirect_load, device: mppt, confirm_timeout: 1}
  - {name: shunt_load, type: vedirect_load, device: bmv}
rules:
""" + rules, stale_timeout=DEFAULT_STALE_TIMEOUT)


def test_the_load_output_switches_through_the_hex_session(tmp_path: Path, daemons: list[Daemon]) -> None:
    charger = BlueSolarMppt("mppt", "HQ1328Y6TF6", 600.0)
    rules = """  - actuator: lights
    on_when: {value: summary.battery_soc, at_least: 0.5}
    off_when: {value: summary.battery_soc, below: 0.3}
  - {actuator: shunt_load, mode: on}
"""
    with Simulator([Bmv702("bmv"), charger], period=0.5) as simulator:
        daemon = Daemon(write_config(tmp_path, simulator, rules), tmp_path)
        daemons.append(daemon)
        wait_for(lambda: charger.load_writes == [AUTOMATIC, ON], timeout=60)  # safe state first, then the rule
        wait_for(lambda: daemon.state()["control"]["actuators"][0]["read_back"] is True, timeout=60)
        assert sample(daemon.base, "pvmonit_control_fault", actuator="lights") == 0.0
        lights, shunt = daemon.state()["control"]["actuators"]
        assert (lights["position"], lights["on"], lights["fault"]) == ("on", True, False)
        assert shunt["error"] == "bmv reports no load output (register 0x0140, bit 0)"
        assert shunt["position"] == "auto"
        daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(timeout=60) == 0
    assert charger.load_writes == [AUTOMATIC, ON, AUTOMATIC]  # back to automatic at stop
    log = daemon.log()
    assert log.count("control: shunt_load is left in its safe state: bmv reports no load output") == 1
    assert "Traceback" not in log


def test_a_charger_that_acknowledges_but_does_not_switch_is_a_fault_back_in_automatic(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    """Incident 5: writes that do not stick, caught only by reading back twice."""
    charger = BlueSolarMppt("mppt", "HQ1328Y6TF6", 600.0, follows_load_control=False)
    rules = "  - {actuator: lights, mode: off}\n"
    with Simulator([Bmv702("bmv"), charger], period=0.5) as simulator:
        daemon = Daemon(write_config(tmp_path, simulator, rules), tmp_path)
        daemons.append(daemon)
        wait_for(lambda: sample(daemon.base, "pvmonit_control_fault", actuator="lights") == 1.0, timeout=60)
        wait_for(lambda: charger.load_writes == [AUTOMATIC, OFF, AUTOMATIC], timeout=30)
        lights = daemon.state()["control"]["actuators"][0]
        assert (lights["position"], lights["fault"], lights["read_back"]) == ("auto", True, True)
        assert daemon.stop() == 0
    assert charger.load_writes == [AUTOMATIC, OFF, AUTOMATIC, AUTOMATIC]  # and automatic at stop
    assert daemon.log().count("control: lights: fault: it reads back on, not off") == 1
    fault = [line for line in audit(tmp_path) if line["veto"] == "fault"]
    assert [(line["from"], line["to"]) for line in fault] == [("off", "auto")]
