"""The operations kit against the real thing: the exporter on simulated devices and probes, forwarding to the
stand-in emoncms, scraped every second by a real Prometheus (Debian's package) loaded with our alert rules.

Every panel query of the dashboard, Grafana's macros substituted, must return at least one series; every metric
named by the dashboard or the alerts must have been scraped; every rule must evaluate without error.
"""

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from pvmonit_exporter.demo.ports import Simulator
from tests.forwarder.fake_emoncms import FakeEmoncms
from tests.helpers import require_tool, wait_for
from tests.ops import (
    ALERTS,
    SCRAPE_CONFIG,
    alert_rules,
    load_dashboard,
    load_yaml,
    metric_names,
    panel_queries,
    substitute_macros,
)
from tests.ops.processes import STARTUP_TIMEOUT, Processes, PrometheusApi, answers, exporter_config

pytestmark = pytest.mark.slow

SCRAPE_INTERVAL = "1s"
# What Grafana would send for "All" sites, exporters and devices and a 1 s scrape ($__rate_interval ≥ 4 scrape
# intervals). This Prometheus scrapes the exporter itself: no `site` label, as at a single site.
GRAFANA_VARIABLES = {
    "site": ".*",
    "instance": ".*",
    "device": ".+",
    "__rate_interval": "10s",
    "__interval": "1s",
    "__range": "5m",
    "datasource": "prometheus",
}
DATA_TIMEOUT = 40.0


@dataclass
class Stack(Processes):
    """The exporter and the Prometheus scraping it."""

    exporter_url: str = ""
    prometheus: PrometheusApi = field(default_factory=lambda: PrometheusApi(""))


def _prometheus_config(workdir: Path, exporter_url: str) -> Path:
    """The repository's scrape snippet and rules, at one scrape a second against this exporter."""
    config = load_yaml(SCRAPE_CONFIG)
    (rule_file,) = config["rule_files"]
    shutil.copy(ALERTS, workdir / rule_file)
    config["global"] = {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL}
    (job,) = config["scrape_configs"]
    job.update(scrape_interval=SCRAPE_INTERVAL, scrape_timeout=SCRAPE_INTERVAL)
    job["static_configs"] = [{"targets": [exporter_url.removeprefix("http://")]}]
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = require_tool("prometheus")
    workdir = tmp_path_factory.mktemp("ops-e2e")
    stack = Stack(workdir)
    # emoncms starts down, so that the backlog metrics (the oldest queued row) have data too.
    with FakeEmoncms() as emoncms, Simulator() as simulator:
        try:
            emoncms.go_down()
            stack.exporter_url = stack.start_exporter("exporter", [
                "run", "--config.file", str(exporter_config(workdir, simulator, emoncms.url)),
            ])
            stack.prometheus = PrometheusApi(stack.start_server("prometheus", [
                prometheus, f"--config.file={_prometheus_config(workdir, stack.exporter_url)}",
                f"--storage.tsdb.path={workdir / 'tsdb'}", "--web.listen-address=127.0.0.1:0",
            ]))
            wait_for(lambda: stack.running("exporter") and answers(f"{stack.exporter_url}/metrics"),
                     timeout=STARTUP_TIMEOUT)
            wait_for(lambda: stack.running("prometheus") and answers(f"{stack.prometheus.url}/-/ready"),
                     timeout=STARTUP_TIMEOUT)
            # Rows queue up while emoncms is down; once Prometheus has seen that, emoncms comes back.
            wait_for(lambda: stack.prometheus.has_data("pvmonit_emoncms_queue_oldest_row_timestamp_seconds"),
                     timeout=DATA_TIMEOUT)
            emoncms.come_up()
            wait_for(lambda: stack.prometheus.has_data("pvmonit_emoncms_last_success_timestamp_seconds > 0"),
                     timeout=DATA_TIMEOUT)
            wait_for(lambda: stack.prometheus.has_data('vedirect_up{device="mppt"} == 1'), timeout=DATA_TIMEOUT)
            wait_for(lambda: stack.prometheus.has_data("pvmonit_power_watts"), timeout=DATA_TIMEOUT)
            # Enough samples for every rate window.
            window = GRAFANA_VARIABLES["__rate_interval"]
            wait_for(lambda: stack.prometheus.has_data(f"count_over_time(up[{window}]) >= 4"), timeout=DATA_TIMEOUT)
            yield stack
        finally:
            codes = stack.stop_all()
    assert codes == {"exporter": 0, "prometheus": 0}, \
        f"unclean stop {codes}:\n{stack.log('exporter')}\n{stack.log('prometheus')}"


def test_target_is_up(stack: Stack) -> None:
    (target,) = stack.prometheus.api("targets")["activeTargets"]
    assert target["health"] == "up", target
    assert target["labels"]["job"] == "pvmonit-exporter"


def test_every_panel_query_returns_data(stack: Stack) -> None:
    queries = panel_queries(load_dashboard())
    assert len(queries) >= 30
    empty = []
    for query in queries:
        expr = substitute_macros(query.expr, GRAFANA_VARIABLES)
        if not stack.prometheus.query(expr):
            empty.append(str(query))
    assert not empty, "queries without data:\n" + "\n".join(empty)


def test_every_metric_of_the_dashboard_and_alerts_was_scraped(stack: Stack) -> None:
    scraped = set(stack.prometheus.api("label/__name__/values"))
    named = {name for query in panel_queries(load_dashboard()) for name in metric_names(query.expr)}
    named |= {name for rule in alert_rules() for name in metric_names(rule["expr"])}
    assert "pvmonit_emoncms_queue_oldest_row_timestamp_seconds" in named
    missing = sorted(named - scraped)
    assert not missing, f"named by the dashboard or the alerts, never scraped: {missing}"


def test_alert_rules_evaluate_on_real_data(stack: Stack) -> None:
    def evaluated() -> list[dict[str, Any]]:
        rules = [rule for group in stack.prometheus.api("rules")["groups"] for rule in group["rules"]]
        return rules if rules and all(rule.get("lastEvaluation", "").startswith("2") for rule in rules) else []

    rules = wait_for(evaluated, timeout=DATA_TIMEOUT)
    assert {rule["name"] for rule in rules} == {rule["alert"] for rule in alert_rules()}
    for rule in rules:
        assert rule["health"] == "ok", rule
    # A healthy installation pages nobody (pending is fine: nothing has lasted long enough to fire).
    firing = [alert for alert in stack.prometheus.api("alerts")["alerts"] if alert["state"] == "firing"]
    assert not firing, firing


def test_forwarder_reached_emoncms(stack: Stack) -> None:
    """The forwarder panels show a real recovery: errors while emoncms was down, rows sent since."""
    assert stack.prometheus.query('pvmonit_emoncms_errors_total{kind="connection"} > 0')
    assert stack.prometheus.query("pvmonit_emoncms_rows_sent_total > 0")
