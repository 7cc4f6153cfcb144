"""Probes (thermometers, current clamps…) → Prometheus metric families, built fresh at every scrape.

Exposition for a thermometer and a current clamp with `power_voltage: 230`::

    pvmonit_probe_up{probe="shed"} 1.0
    pvmonit_temperature_celsius{probe="shed"} 21.4
    pvmonit_current_amperes{probe="clamp"} 0.5
    pvmonit_power_watts{probe="clamp"} 115.0
    pvmonit_probe_errors_total{kind="timeout",probe="shed"} 0.0

A probe whose reading is no longer current shows `pvmonit_probe_up` 0 and no value.
"""

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from pvmonit_exporter.collector.catalogue import new_family
from pvmonit_exporter.sources.probe_kinds import PROBE_ERROR_KINDS
from pvmonit_exporter.state import State

_VALUE_METRIC = {
    "temperature": "pvmonit_temperature_celsius",
    "current": "pvmonit_current_amperes",
    "power": "pvmonit_power_watts",
}


class ProbeCollector(Collector):
    def __init__(self, state: State) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        views = self.state.probes()
        if not views:
            return
        up = new_family("pvmonit_probe_up")
        values = {name: new_family(name) for name in _VALUE_METRIC.values()}
        last = new_family("pvmonit_probe_last_reading_timestamp_seconds")
        readings = new_family("pvmonit_probe_readings_total")
        errors = new_family("pvmonit_probe_errors_total")
        for view in views:
            up.add_metric([view.name], 1.0 if view.up else 0.0)
            if view.value is not None:
                values[_VALUE_METRIC[view.quantity]].add_metric([view.name], view.value)
            if view.power_watts is not None:
                values["pvmonit_power_watts"].add_metric([view.name], view.power_watts)
            if view.last_reading_time is not None:
                last.add_metric([view.name], view.last_reading_time)
            readings.add_metric([view.name], view.readings_total)
            for kind in sorted(set(PROBE_ERROR_KINDS) | set(view.errors_total)):
                errors.add_metric([view.name, kind], view.errors_total.get(kind, 0))
        yield up
        yield from (family for family in values.values() if family.samples)
        if last.samples:
            yield last
        yield readings
        yield errors
