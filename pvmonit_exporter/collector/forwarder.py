"""The emoncms forwarder's figures → Prometheus metric families, built fresh at every scrape.

Exposition (names are a contract for dashboards)::

    pvmonit_emoncms_queue_rows 12.0
    pvmonit_emoncms_queue_oldest_row_timestamp_seconds 1.7776368e+09
    pvmonit_emoncms_rows_sent_total 3456.0
    pvmonit_emoncms_rows_dropped_total{reason="queue_full"} 0.0
    pvmonit_emoncms_rows_dropped_total{reason="disk_error"} 0.0
    pvmonit_emoncms_rows_dropped_total{reason="dead_letter_full"} 0.0
    pvmonit_emoncms_dead_letter_rows 1.0
    pvmonit_emoncms_errors_total{kind="connection"} 4.0
    pvmonit_emoncms_errors_total{kind="timeout"} 0.0
    pvmonit_emoncms_errors_total{kind="http"} 0.0
    pvmonit_emoncms_errors_total{kind="auth"} 0.0
    pvmonit_emoncms_errors_total{kind="content"} 9.0
    pvmonit_emoncms_errors_total{kind="disk"} 0.0
    pvmonit_emoncms_last_success_timestamp_seconds 1.7776371e+09
    pvmonit_emoncms_snapshots_total 288.0
    pvmonit_emoncms_snapshots_skipped_total{reason="clock"} 0.0

`pvmonit_emoncms_queue_oldest_row_timestamp_seconds` is absent while the queue is empty (`time() - oldest` is
then the backlog's age); the last success is 0 before the first one. Reading never touches the disk or the
network: the values come from `Forwarder.status()`.
"""

from collections.abc import Iterator

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pvmonit_exporter.collector.catalogue import (
    DROP_REASONS,
    ERROR_KINDS,
    FORWARDER_METRICS,
    SKIP_REASONS,
    by_name,
)
from pvmonit_exporter.forwarder.loop import Forwarder

_DOCS = by_name(FORWARDER_METRICS)


def _gauge(name: str, value: float | None = None) -> GaugeMetricFamily:
    doc = _DOCS[name]
    if value is not None:
        return GaugeMetricFamily(name, doc.help, value=value)
    return GaugeMetricFamily(name, doc.help, labels=doc.labels)


def _counter(name: str, value: float | None = None) -> CounterMetricFamily:
    doc = _DOCS[name]
    if value is not None:
        return CounterMetricFamily(name.removesuffix("_total"), doc.help, value=value)
    return CounterMetricFamily(name.removesuffix("_total"), doc.help, labels=doc.labels)


def _by_label(family: CounterMetricFamily, known: tuple[str, ...], values: dict[str, int]) -> CounterMetricFamily:
    for key in (*known, *sorted(set(values) - set(known))):
        family.add_metric([key], values.get(key, 0))
    return family


class ForwarderCollector(Collector):
    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder

    def collect(self) -> Iterator[Metric]:
        status = self.forwarder.status()
        yield _gauge("pvmonit_emoncms_queue_rows", status.queue_rows)
        if status.queue_oldest_row_timestamp is not None:
            yield _gauge("pvmonit_emoncms_queue_oldest_row_timestamp_seconds", status.queue_oldest_row_timestamp)
        yield _counter("pvmonit_emoncms_rows_sent_total", status.rows_sent_total)
        yield _by_label(_counter("pvmonit_emoncms_rows_dropped_total"), DROP_REASONS,
                        dict(status.rows_dropped_total))
        yield _gauge("pvmonit_emoncms_dead_letter_rows", status.dead_letter_rows)
        yield _by_label(_counter("pvmonit_emoncms_errors_total"), ERROR_KINDS, dict(status.errors_total))
        yield _gauge("pvmonit_emoncms_last_success_timestamp_seconds", status.last_success_timestamp)
        yield _counter("pvmonit_emoncms_snapshots_total", status.snapshots_total)
        yield _by_label(_counter("pvmonit_emoncms_snapshots_skipped_total"), SKIP_REASONS,
                        dict(status.snapshots_skipped_total))
