"""VE.Direct devices → Prometheus metric families, built fresh at every scrape.

Exposition for one MPPT (abridged)::

    # HELP vedirect_up 1 when a valid block arrived within the device's stale timeout, else 0
    # TYPE vedirect_up gauge
    vedirect_up{device="mppt"} 1.0
    vedirect_device_info{device="mppt",firmware="1.23",product="BlueSolar MPPT 75/15",product_id="0xA042",...} 1.0
    vedirect_battery_voltage_volts{device="mppt"} 12.53
    vedirect_charge_state{device="mppt",state="Bulk"} 1.0
    vedirect_charge_state{device="mppt",state="Float"} 0.0
    vedirect_blocks_total{device="mppt"} 248.0

A device that is down keeps `vedirect_up` 0, its identity and its counters, and shows no values.
"""

from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pvmonit_exporter.collector.catalogue import DEVICE_METRICS, new_family
from pvmonit_exporter.state import DeviceView, State
from pvmonit_exporter.vedirect.fields import FIELDS, Kind, decode
from pvmonit_exporter.vedirect.registers import register_values

_ORDER = [doc.name for doc in DEVICE_METRICS]

AddSample = Callable[[str, list[str], float], None]


class DeviceCollector(Collector):
    def __init__(self, state: State) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}

        def add(name: str, labels: list[str], value: float) -> None:
            family = families.get(name)
            if family is None:
                family = families[name] = new_family(name)
            family.add_metric(labels, value)

        for view in self.state.devices():
            self._device(view, add)
        # Catalogue order: stable output, and every always-present family first.
        for name in _ORDER:
            if name in families:
                yield families[name]

    @staticmethod
    def _device(view: DeviceView, add: AddSample) -> None:
        name = view.name
        add("vedirect_up", [name], 1.0 if view.up else 0.0)
        identity = view.identity
        if identity.product_id or identity.serial_number:
            add("vedirect_device_info",
                [name, identity.product_id, identity.product, identity.serial_number, identity.firmware, view.source],
                1.0)
        if view.last_block_time is not None:
            add("vedirect_last_block_timestamp_seconds", [name], view.last_block_time)
        add("vedirect_port_connected", [name], 1.0 if view.connected else 0.0)
        stats = view.stats
        add("vedirect_blocks_total", [name], stats.blocks_valid)
        add("vedirect_checksum_errors_total", [name], stats.checksum_errors)
        add("vedirect_malformed_blocks_total", [name], stats.malformed_blocks)
        add("vedirect_hex_messages_total", [name, "valid"], stats.hex_valid)
        add("vedirect_hex_messages_total", [name, "invalid"], stats.hex_invalid)
        add("vedirect_received_bytes_total", [name], stats.bytes_received)
        add("vedirect_discarded_bytes_total", [name], stats.bytes_discarded)
        for result, count in view.hex_requests.items():
            add("vedirect_hex_requests_total", [name, result], count)
        if view.up:
            for metric, number in register_values(identity.kind, view.registers).items():
                add(f"vedirect_{metric}", [name], number)
        for label, raw in view.fields.items():
            _field(name, label, raw, add)


def _field(name: str, label: str, raw: str, add: AddSample) -> None:
    """One text field's samples: a value, one series per enumeration word, or one per known bit."""
    spec = FIELDS.get(label)
    if spec is None or spec.metric is None:
        return  # unknown labels and text fields: shown in /api/state, not as metrics
    item = decode(label, raw)
    if item.value is None:
        return  # '---' or unparsable: no sample rather than a false 0
    metric = f"vedirect_{spec.metric}"
    if spec.metric_label is None:
        add(metric, [name], item.value)
    elif spec.kind is Kind.ENUM:
        for code, word in (spec.names or {}).items():
            add(metric, [name, word], 1.0 if code == item.value else 0.0)
    else:  # bitmask: one series per known bit
        value = int(item.value)
        for bit, word in (spec.names or {}).items():
            add(metric, [name, word], 1.0 if value & bit else 0.0)
