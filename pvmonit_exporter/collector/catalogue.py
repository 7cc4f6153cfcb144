"""The list of every metric the exporter can produce: name, type, labels and help.

Collectors take their help texts from here, and a test checks that docs/metrics.md says the same.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily

from pvmonit_exporter.forwarder.kinds import DROP_REASONS, ERROR_KINDS
from pvmonit_exporter.mqtt.figures import ERROR_KINDS as MQTT_ERROR_KINDS
from pvmonit_exporter.sources.probe_kinds import PROBE_ERROR_KINDS
from pvmonit_exporter.vedirect.fields import FIELDS, Kind
from pvmonit_exporter.vedirect.hex_session import Result
from pvmonit_exporter.vedirect.registers import REGISTERS


@dataclass(frozen=True)
class MetricDoc:
    name: str  # as exposed (counters with `_total`)
    type: str  # gauge or counter
    labels: tuple[str, ...]
    help: str


def _field_metrics() -> list[MetricDoc]:
    docs: list[MetricDoc] = []
    for spec in FIELDS.values():
        if spec.kind is Kind.TEXT or spec.metric is None:
            continue
        unit = f" [{spec.unit}]" if spec.unit else ""
        labels = ("device", spec.metric_label) if spec.metric_label else ("device",)
        if spec.metric_label:
            text = f"{spec.description}: 1 for each {spec.metric_label} that applies, else 0"
        elif spec.kind is Kind.ENUM:
            text = f"{spec.description}, as its numeric code"
        elif spec.kind is Kind.ON_OFF:
            text = f"{spec.description}: 1 on, 0 off"
        else:
            text = f"{spec.description}{unit}"
        text += f"; VE.Direct field {spec.label}"
        docs.append(MetricDoc(f"vedirect_{spec.metric}", "gauge", labels, text))
    return docs


_SI_UNITS = {"celsius": "°C", "volts": "V", "amperes": "A", "joules": "J", "coulombs": "C"}


def _register_metrics() -> list[MetricDoc]:
    """One gauge per register with a metric in the register table (read over HEX)."""
    docs = []
    for reg in REGISTERS.values():
        if reg.metric is None:
            continue
        unit = _SI_UNITS[reg.metric.rsplit("_", 1)[1]]
        docs.append(MetricDoc(f"vedirect_{reg.metric}", "gauge", ("device",),
                              f"{reg.description} [{unit}]; HEX register {reg.hex_id}"))
    return docs


DEVICE_METRICS: tuple[MetricDoc, ...] = (
    MetricDoc("vedirect_up", "gauge", ("device",),
              "1 when a valid block arrived within the device's stale timeout, else 0"),
    MetricDoc("vedirect_device_info", "gauge",
              ("device", "product_id", "product", "serial_number", "firmware", "source"),
              "Identity of the device, from its PID, SER# and FW/FWE fields, and where its readings come from "
              "(source: serial or ble); always 1"),
    MetricDoc("vedirect_last_block_timestamp_seconds", "gauge", ("device",),
              "Unix time of the last valid block"),
    MetricDoc("vedirect_port_connected", "gauge", ("device",), "1 while the serial port is open"),
    MetricDoc("vedirect_blocks_total", "counter", ("device",), "Checksum-valid blocks decoded"),
    MetricDoc("vedirect_checksum_errors_total", "counter", ("device",), "Blocks rejected by their checksum"),
    MetricDoc("vedirect_malformed_blocks_total", "counter", ("device",),
              "Blocks rejected for their structure (bad bytes, sizes over the protocol's limits)"),
    MetricDoc("vedirect_hex_messages_total", "counter", ("device", "result"),
              "Asynchronous HEX messages removed from the stream, by result (valid, invalid)"),
    MetricDoc("vedirect_received_bytes_total", "counter", ("device",), "Bytes read from the port"),
    MetricDoc("vedirect_discarded_bytes_total", "counter", ("device",),
              "Bytes that belonged to no valid block or HEX message"),
    *_field_metrics(),
    MetricDoc("vedirect_hex_requests_total", "counter", ("device", "result"),
              "HEX requests the exporter sent, by how they ended ("
              + ", ".join(result.value for result in Result) + ")"),
    *_register_metrics(),
)

PROBE_METRICS: tuple[MetricDoc, ...] = (
    MetricDoc("pvmonit_probe_up", "gauge", ("probe",), "1 when the probe's last reading succeeded and is current"),
    MetricDoc("pvmonit_temperature_celsius", "gauge", ("probe",), "Temperature from a probe, calibrated [°C]"),
    MetricDoc("pvmonit_current_amperes", "gauge", ("probe",), "Current from a probe, calibrated [A]"),
    MetricDoc("pvmonit_power_watts", "gauge", ("probe",),
              "Power from a probe, or amperes × the configured voltage for a current probe [W]"),
    MetricDoc("pvmonit_probe_last_reading_timestamp_seconds", "gauge", ("probe",),
              "Unix time of the probe's last accepted reading"),
    MetricDoc("pvmonit_probe_readings_total", "counter", ("probe",), "Readings accepted"),
    MetricDoc("pvmonit_probe_errors_total", "counter", ("probe", "kind"),
              "Readings that failed or were dropped, by kind (" + ", ".join(PROBE_ERROR_KINDS) + ")"),
)

FORWARDER_METRICS: tuple[MetricDoc, ...] = (
    MetricDoc("pvmonit_emoncms_queue_rows", "gauge", (), "Rows waiting in the emoncms disk queue"),
    MetricDoc("pvmonit_emoncms_queue_oldest_row_timestamp_seconds", "gauge", (),
              "Unix time of the oldest queued row; absent when the queue is empty"),
    MetricDoc("pvmonit_emoncms_rows_sent_total", "counter", (), "Rows emoncms accepted (answered ok)"),
    MetricDoc("pvmonit_emoncms_rows_dropped_total", "counter", ("reason",),
              "Rows lost, by reason (" + ", ".join(DROP_REASONS) + ")"),
    MetricDoc("pvmonit_emoncms_dead_letter_rows", "gauge", (),
              "Rows emoncms refused for their content, kept in the dead-letter store"),
    MetricDoc("pvmonit_emoncms_errors_total", "counter", ("kind",),
              "Failed sends and disk errors, by kind (" + ", ".join(ERROR_KINDS) + ")"),
    MetricDoc("pvmonit_emoncms_last_success_timestamp_seconds", "gauge", (),
              "Unix time emoncms last accepted rows; 0 before the first success"),
    MetricDoc("pvmonit_emoncms_snapshots_total", "counter", (), "Snapshots taken"),
    MetricDoc("pvmonit_emoncms_snapshots_skipped_total", "counter", ("reason",),
              "Snapshots not taken, by reason (clock: the system clock is before the build year)"),
)

CONTROL_METRICS: tuple[MetricDoc, ...] = (
    MetricDoc("pvmonit_control_actuator_on", "gauge", ("actuator",),
              "1 when the actuator is on, as read back where it can be, else as last switched; 0 otherwise"),
    MetricDoc("pvmonit_control_wanted_on", "gauge", ("actuator",), "1 when the rules want the actuator on"),
    MetricDoc("pvmonit_control_switches_total", "counter", ("actuator",),
              "Switches decided and carried out (in a dry run: decided, nothing switched)"),
    MetricDoc("pvmonit_control_vetoes_total", "counter", ("actuator", "reason"),
              "Changes the rules wanted that a guard held back, by reason (stale_input, on_for, off_for, min_on, "
              "min_off, max_switches_per_hour, max_on_per_day, fault, one_per_evaluation)"),
    MetricDoc("pvmonit_control_fault", "gauge", ("actuator",),
              "1 while the actuator is in fault (its read-back disagreed twice): held in its safe state"),
    MetricDoc("pvmonit_control_dry_run", "gauge", (), "1 when control only decides and switches nothing"),
)

MQTT_METRICS: tuple[MetricDoc, ...] = (
    MetricDoc("pvmonit_mqtt_connected", "gauge", (), "1 while connected to the MQTT broker, else 0"),
    MetricDoc("pvmonit_mqtt_messages_published_total", "counter", (), "MQTT messages handed to the broker"),
    MetricDoc("pvmonit_mqtt_messages_dropped_total", "counter", (),
              "Live state messages not sent because the broker was away (never queued for later)"),
    MetricDoc("pvmonit_mqtt_errors_total", "counter", ("kind",),
              "MQTT failures, by kind (" + ", ".join(MQTT_ERROR_KINDS) + ")"),
)

EXPORTER_METRICS: tuple[MetricDoc, ...] = (
    MetricDoc("pvmonit_exporter_build_info", "gauge", ("version",), "The exporter's version; always 1"),
)


ALL_METRICS: tuple[MetricDoc, ...] = (DEVICE_METRICS + PROBE_METRICS + FORWARDER_METRICS + CONTROL_METRICS
                                      + MQTT_METRICS + EXPORTER_METRICS)


_BY_NAME = {doc.name: doc for doc in ALL_METRICS}


def new_family(name: str) -> GaugeMetricFamily | CounterMetricFamily:
    """An empty family for the catalogued metric `name`, with its type, help and label names."""
    doc = _BY_NAME[name]
    if doc.type == "counter":  # the client adds `_total` itself
        return CounterMetricFamily(name.removesuffix("_total"), doc.help, labels=doc.labels)
    return GaugeMetricFamily(name, doc.help, labels=doc.labels)


Family = GaugeMetricFamily | CounterMetricFamily


def single(name: str, value: float) -> Family:
    """The label-less catalogued metric `name` with its one sample."""
    family = new_family(name)
    family.add_metric([], value)
    return family


def by_label(name: str, known: tuple[str, ...], values: Mapping[str, int]) -> Family:
    """The catalogued metric `name` with one sample per label value: `known` first (at 0 when absent)."""
    family = new_family(name)
    for key in (*known, *sorted(set(values) - set(known))):
        family.add_metric([key], values.get(key, 0))
    return family
