"""The MQTT connection's figures → Prometheus metric families, built fresh at every scrape.

Exposition (names are a contract for dashboards)::

    pvmonit_mqtt_connected 1.0
    pvmonit_mqtt_messages_published_total 1234.0
    pvmonit_mqtt_messages_dropped_total 12.0
    pvmonit_mqtt_errors_total{kind="connection"} 3.0
    pvmonit_mqtt_errors_total{kind="auth"} 0.0
    pvmonit_mqtt_errors_total{kind="publish"} 0.0
    pvmonit_mqtt_errors_total{kind="command"} 0.0
"""

from collections.abc import Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from pvmonit_exporter.collector.catalogue import by_label, single
from pvmonit_exporter.mqtt.connection import MqttConnection
from pvmonit_exporter.mqtt.figures import ERROR_KINDS


class MqttCollector(Collector):
    def __init__(self, connection: MqttConnection) -> None:
        self.connection = connection

    def collect(self) -> Iterator[Metric]:
        figures = self.connection.snapshot()
        yield single("pvmonit_mqtt_connected", 1.0 if figures.connected else 0.0)
        yield single("pvmonit_mqtt_messages_published_total", figures.published_total)
        yield single("pvmonit_mqtt_messages_dropped_total", figures.dropped_total)
        yield by_label("pvmonit_mqtt_errors_total", ERROR_KINDS, figures.errors_total)
