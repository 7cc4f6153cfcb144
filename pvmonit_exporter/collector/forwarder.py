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

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from pvmonit_exporter.collector.catalogue import by_label, single
from pvmonit_exporter.forwarder.kinds import DROP_REASONS, ERROR_KINDS, SKIP_REASONS
from pvmonit_exporter.forwarder.threads import Forwarder


class ForwarderCollector(Collector):
    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder

    def collect(self) -> Iterator[Metric]:
        status = self.forwarder.status()
        yield single("pvmonit_emoncms_queue_rows", status.queue_rows)
        if status.queue_oldest_row_timestamp is not None:
            yield single("pvmonit_emoncms_queue_oldest_row_timestamp_seconds", status.queue_oldest_row_timestamp)
        yield single("pvmonit_emoncms_rows_sent_total", status.rows_sent_total)
        yield by_label("pvmonit_emoncms_rows_dropped_total", DROP_REASONS, status.rows_dropped_total)
        yield single("pvmonit_emoncms_dead_letter_rows", status.dead_letter_rows)
        yield by_label("pvmonit_emoncms_errors_total", ERROR_KINDS, status.errors_total)
        yield single("pvmonit_emoncms_last_success_timestamp_seconds", status.last_success_timestamp)
        yield single("pvmonit_emoncms_snapshots_total", status.snapshots_total)
        yield by_label("pvmonit_emoncms_snapshots_skipped_total", SKIP_REASONS, status.snapshots_skipped_total)
