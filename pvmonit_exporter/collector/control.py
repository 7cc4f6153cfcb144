"""Switching loads → Prometheus metric families, built at every scrape from `Controller.status()`.

Exposition (names are a contract)::

    pvmonit_control_actuator_on{actuator="water_heater"} 1.0
    pvmonit_control_wanted_on{actuator="water_heater"} 1.0
    pvmonit_control_switches_total{actuator="water_heater"} 2.0
    pvmonit_control_vetoes_total{actuator="water_heater",reason="min_on"} 1.0
    pvmonit_control_fault{actuator="water_heater"} 0.0
    pvmonit_control_dry_run 0.0
"""

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from pvmonit_exporter.collector.catalogue import new_family

if TYPE_CHECKING:
    from pvmonit_exporter.control.loop import Controller


class ControlCollector(Collector):
    def __init__(self, controller: "Controller") -> None:
        self.controller = controller

    def collect(self) -> Iterator[Metric]:
        status = self.controller.status()
        actuators = status["actuators"]
        on, wanted, switches, fault = (new_family(name) for name in (
            "pvmonit_control_actuator_on", "pvmonit_control_wanted_on", "pvmonit_control_switches_total",
            "pvmonit_control_fault"))
        vetoes = new_family("pvmonit_control_vetoes_total")
        for actuator in actuators:
            name = actuator["name"]
            on.add_metric([name], 1.0 if actuator["on"] else 0.0)
            wanted.add_metric([name], 1.0 if actuator["wanted"] == "on" else 0.0)
            switches.add_metric([name], actuator["switches"])
            fault.add_metric([name], 1.0 if actuator["fault"] else 0.0)
            for reason, count in actuator["vetoes"].items():
                vetoes.add_metric([name, reason], count)
        dry_run = new_family("pvmonit_control_dry_run")
        dry_run.add_metric([], 1.0 if status["dry_run"] else 0.0)
        yield from (on, wanted, switches, vetoes, fault, dry_run)
