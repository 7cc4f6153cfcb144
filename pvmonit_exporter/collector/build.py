"""The exporter's own version, so that dashboards can show which release is running.

Exposition::

    # HELP pvmonit_exporter_build_info The exporter's version; always 1
    # TYPE pvmonit_exporter_build_info gauge
    pvmonit_exporter_build_info{version="0.1.0"} 1.0
"""

from collections.abc import Iterator

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pvmonit_exporter import __version__
from pvmonit_exporter.collector.catalogue import EXPORTER_METRICS


class BuildInfoCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        doc = EXPORTER_METRICS[0]
        family = GaugeMetricFamily(doc.name, doc.help, labels=doc.labels)
        family.add_metric([__version__], 1.0)
        yield family
