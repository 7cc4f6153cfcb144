"""The operations kit against the real thing: the exporter on simulated devices and probes, forwarding to the
stand-in emoncms, scraped every second by a real Prometheus (Debian's package) loaded with our alert rules.

Every panel query of the dashboard, Grafana's macros substituted, must return at least one series; every metric
named by the dashboard or the alerts must have been scraped; every rule must evaluate without error.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from pvmonit_exporter.sources.simulator import Simulator
from tests.forwarder.fake_emoncms import WRITE_KEY, FakeEmoncms
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
STARTUP_TIMEOUT = 30.0
DATA_TIMEOUT = 40.0
STOP_TIMEOUT = 20.0

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 only, never a proxy


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> bytes:
    with _DIRECT.open(url, timeout=10) as response:
        body: bytes = response.read()
        return body


def _answers(url: str) -> bool:
    try:
        _get(url)
    except OSError:
        return False
    return True


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return -9
    return process.returncode


@dataclass
class Stack:
    workdir: Path
    exporter_url: str = ""
    prometheus_url: str = ""
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        answer = json.loads(_get(f"{self.prometheus_url}/api/v1/{path}" + (f"?{query}" if query else "")))
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def has_data(self, expr: str) -> bool:
        try:
            return bool(self.query(expr))
        except OSError:
            return False

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace")[-4000:] if path.exists() else ""

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        with (self.workdir / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                                    cwd=self.workdir)

    def running(self, name: str) -> bool:
        process = self.processes[name]
        assert process.poll() is None, f"{name} exited with {process.returncode}:\n{self.log(name)}"
        return True


def _exporter_config(workdir: Path, simulator: Simulator, emoncms_url: str) -> Path:
    config = {
        "devices": [{"name": name, "port": port} for name, port in simulator.ports.items()],
        "probes": [  # the demo's thermometer and current clamp, as the demo configures them
            {"name": "shed_temperature", "type": "file", "quantity": "temperature",
             "path": str(simulator.probe_path), "interval": 1, "emoncms_input": "temp"},
            {"name": "house_consumption", "type": "serial", "quantity": "current", "port": simulator.clamp_path,
             "power_voltage": 230, "power_max": 1500, "interval": 1, "emoncms_input": "conso"},
        ],
        "emoncms": {"url": emoncms_url, "apikey": WRITE_KEY, "interval": 1, "timeout": 5,
                    "queue_dir": str(workdir / "queue")},
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _prometheus_config(workdir: Path, exporter_port: int) -> Path:
    """The repository's scrape snippet and rules, at one scrape a second against this exporter."""
    config = load_yaml(SCRAPE_CONFIG)
    (rule_file,) = config["rule_files"]
    shutil.copy(ALERTS, workdir / rule_file)
    config["global"] = {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL}
    (job,) = config["scrape_configs"]
    job.update(scrape_interval=SCRAPE_INTERVAL, scrape_timeout=SCRAPE_INTERVAL)
    job["static_configs"] = [{"targets": [f"127.0.0.1:{exporter_port}"]}]
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus = require_tool("prometheus")
    workdir = tmp_path_factory.mktemp("ops-e2e")
    stack = Stack(workdir)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = "127.0.0.1"
    # emoncms starts down, so that the backlog metrics (the oldest queued row) have data too.
    with FakeEmoncms() as emoncms, Simulator() as simulator:
        try:
            emoncms.go_down()
            exporter_port, prometheus_port = _free_port(), _free_port()
            stack.exporter_url = f"http://127.0.0.1:{exporter_port}"
            stack.prometheus_url = f"http://127.0.0.1:{prometheus_port}"
            stack.start("prometheus", [
                prometheus, f"--config.file={_prometheus_config(workdir, exporter_port)}",
                f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ], env)
            stack.start("exporter", [
                sys.executable, "-m", "pvmonit_exporter", "run",
                "--config.file", str(_exporter_config(workdir, simulator, emoncms.url)),
                "--web.listen-address", f"127.0.0.1:{exporter_port}",
            ], env)
            wait_for(lambda: stack.running("exporter") and _answers(f"{stack.exporter_url}/metrics"),
                     timeout=STARTUP_TIMEOUT)
            wait_for(lambda: stack.running("prometheus") and _answers(f"{stack.prometheus_url}/-/ready"),
                     timeout=STARTUP_TIMEOUT)
            # Rows queue up while emoncms is down; once Prometheus has seen that, emoncms comes back.
            wait_for(lambda: stack.has_data("pvmonit_emoncms_queue_oldest_row_timestamp_seconds"),
                     timeout=DATA_TIMEOUT)
            emoncms.come_up()
            wait_for(lambda: stack.has_data("pvmonit_emoncms_last_success_timestamp_seconds > 0"),
                     timeout=DATA_TIMEOUT)
            wait_for(lambda: stack.has_data('vedirect_up{device="mppt"} == 1'), timeout=DATA_TIMEOUT)
            wait_for(lambda: stack.has_data("pvmonit_power_watts"), timeout=DATA_TIMEOUT)
            # Enough samples for every rate window.
            wait_for(lambda: stack.has_data(f"count_over_time(up[{GRAFANA_VARIABLES['__rate_interval']}]) >= 4"),
                     timeout=DATA_TIMEOUT)
            yield stack
        finally:
            codes = {name: _stop(process) for name, process in reversed(stack.processes.items())}
            for name in stack.processes:  # shown by pytest when something failed
                print(f"--- {name} log (end) ---\n{stack.log(name)}")
    assert codes == {"exporter": 0, "prometheus": 0}, \
        f"unclean stop {codes}:\n{stack.log('exporter')}\n{stack.log('prometheus')}"


def test_target_is_up(stack: Stack) -> None:
    (target,) = stack.api("targets")["activeTargets"]
    assert target["health"] == "up", target
    assert target["labels"]["job"] == "pvmonit-exporter"


def test_every_panel_query_returns_data(stack: Stack) -> None:
    queries = panel_queries(load_dashboard())
    assert len(queries) >= 30
    empty = []
    for query in queries:
        expr = substitute_macros(query.expr, GRAFANA_VARIABLES)
        if not stack.query(expr):
            empty.append(str(query))
    assert not empty, "queries without data:\n" + "\n".join(empty)


def test_every_metric_of_the_dashboard_and_alerts_was_scraped(stack: Stack) -> None:
    scraped = set(stack.api("label/__name__/values"))
    named = {name for query in panel_queries(load_dashboard()) for name in metric_names(query.expr)}
    named |= {name for rule in alert_rules() for name in metric_names(rule["expr"])}
    assert "pvmonit_emoncms_queue_oldest_row_timestamp_seconds" in named
    missing = sorted(named - scraped)
    assert not missing, f"named by the dashboard or the alerts, never scraped: {missing}"


def test_alert_rules_evaluate_on_real_data(stack: Stack) -> None:
    def evaluated() -> list[dict[str, Any]]:
        rules = [rule for group in stack.api("rules")["groups"] for rule in group["rules"]]
        return rules if rules and all(rule.get("lastEvaluation", "").startswith("2") for rule in rules) else []

    rules = wait_for(evaluated, timeout=DATA_TIMEOUT)
    assert {rule["name"] for rule in rules} == {rule["alert"] for rule in alert_rules()}
    for rule in rules:
        assert rule["health"] == "ok", rule
    # A healthy installation pages nobody (pending is fine: nothing has lasted long enough to fire).
    firing = [alert for alert in stack.api("alerts")["alerts"] if alert["state"] == "firing"]
    assert not firing, firing


def test_forwarder_reached_emoncms(stack: Stack) -> None:
    """The forwarder panels show a real recovery: errors while emoncms was down, rows sent since."""
    assert stack.query('pvmonit_emoncms_errors_total{kind="connection"} > 0')
    assert stack.query("pvmonit_emoncms_rows_sent_total > 0")
