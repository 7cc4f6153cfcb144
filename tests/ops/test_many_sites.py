"""Many sites, one central store, for real on loopback: two sites, each an exporter and a Prometheus in agent mode
running the repository's agent.yml (only the addresses, the site name and the scrape interval changed), push
with remote_write and basic auth to a real VictoriaMetrics single node (Debian's package).

- "cabin" runs `pvmonit-exporter demo`; "shed" runs the exporter on the simulator with probes and the emoncms
  forwarder, so that every panel of the dashboard has data.
- Every metric family each exporter serves (read from its own /metrics) is at the centre with its `site`.
- The dashboard's queries, read from pvmonit.json, with "All" sites and with each site, return that site's series
  and no other; with "All" every panel has data, as against a single Prometheus (test_end_to_end.py).
- The central store stops for 20 s and starts again: the samples of those 20 s arrive from the agents'
  write-ahead logs.
"""

import functools
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from pvmonit_exporter.demo.ports import Simulator
from tests.forwarder.fake_emoncms import FakeEmoncms
from tests.helpers import require_tool, wait_for
from tests.ops import (
    AGENT_CONFIG,
    PanelQuery,
    load_dashboard,
    load_yaml,
    metric_names,
    panel_queries,
    substitute_macros,
)
from tests.ops.processes import (
    STARTUP_TIMEOUT,
    Processes,
    PrometheusApi,
    answers,
    basic_auth,
    exporter_config,
    get,
)

pytestmark = pytest.mark.slow

SITES = ("cabin", "shed")
SCRAPE_SECONDS = 1  # agent.yml says 15 s; 1 s keeps the test short and gives many samples to count
# Long enough for the agents to fail several sends and back off (agent.yml: 1 s doubling, so their next try
# comes within ~16 s of the restart), short enough to keep the test short: what matters is that the samples
# scraped while the store was down arrive, not how long it was down.
OUTAGE_SECONDS = 20.0
# The agents send a batch every 30 s at most (agent.yml) and retry at most a minute apart: generous waits.
DELIVERY_TIMEOUT = 150.0
SETTLE_SECONDS = 45.0  # > agent.yml's 30 s batch_send_deadline, with a margin for a loaded machine
USERNAME, PASSWORD = "pvmonit", "correct horse battery staple"
GRAFANA_VARIABLES = {"instance": ".*", "device": ".+", "__rate_interval": "10s", "__interval": "1s",
                     "__range": "5m", "datasource": "prometheus"}
Series = dict[frozenset[tuple[str, str]], str]  # a query's answer: labels → value


@dataclass
class Site:
    name: str
    exporter: str  # base URLs
    agent: PrometheusApi

    def samples(self) -> list[Sample]:
        text = get(f"{self.exporter}/metrics").decode()
        return [sample for family in text_string_to_metric_families(text) for sample in family.samples]

    def families(self) -> set[str]:
        """The series names the exporter serves now, from its own /metrics."""
        return {sample.name for sample in self.samples()}

    def warmed_up(self) -> bool:
        """Every device and probe the exporter knows is up: every family it will serve is there."""
        ups = [sample.value for sample in self.samples() if sample.name in ("vedirect_up", "pvmonit_probe_up")]
        return bool(ups) and all(ups)

    def agent_metric(self, name: str) -> float:
        text = get(f"{self.agent.url}/metrics").decode()
        return sum(sample.value for family in text_string_to_metric_families(text)
                   for sample in family.samples if sample.name == name)


@dataclass
class Centre:
    processes: Processes
    store: PrometheusApi
    argv: list[str]
    sites: dict[str, Site]

    def start_store(self) -> None:
        """The first time on a port of its choosing; again on the same port, the one the agents write to (freed
        when it stopped: were anything to take it meanwhile, the store would refuse to start, loudly)."""
        address = self.store.url.removeprefix("http://") or "127.0.0.1:0"
        self.store.url = self.processes.start_server("victoria-metrics", [*self.argv, f"-httpListenAddr={address}"])
        wait_for(lambda: self.processes.running("victoria-metrics")
                 and answers(f"{self.store.url}/health", self.store.headers), timeout=STARTUP_TIMEOUT)

    def highest_sent(self) -> float:
        """The newest sample every agent has had the store accept (the least advanced agent's)."""
        return min(site.agent_metric("prometheus_remote_storage_queue_highest_sent_timestamp_seconds")
                   for site in self.sites.values())

    def settled_moment(self) -> float:
        """A moment whose samples, and the 15 s before it, have all reached the store from every site.

        An agent sends over up to two connections, each when its batch is full or 30 s old (agent.yml): once
        a sample scraped at T has been accepted, every sample scraped before T - 30 s has been too."""

        def ready() -> float | None:
            at = self.highest_sent() - SETTLE_SECONDS
            filled = all(self.store.query(f'count_over_time(up{{site="{name}"}}[15s]) >= 10', at)
                         for name in self.sites)
            return at if filled else None

        moment: float = wait_for(ready, timeout=DELIVERY_TIMEOUT, interval=1)
        return moment

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        return self.store.query(expr, at)


def _agent_config(workdir: Path, site: str, exporter_url: str, store_url: str, password_file: Path) -> Path:
    """The repository's agent.yml for this site, this exporter and this store; the queue settings untouched."""
    config = load_yaml(AGENT_CONFIG)
    config["global"].update(scrape_interval=f"{SCRAPE_SECONDS}s", scrape_timeout=f"{SCRAPE_SECONDS}s")
    config["global"]["external_labels"]["site"] = site
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [exporter_url.removeprefix("http://")]}]
    (remote,) = config["remote_write"]
    remote["url"] = f"{store_url}/api/v1/write"
    remote["basic_auth"] = {"username": USERNAME, "password_file": str(password_file)}
    path = workdir / f"agent-{site}.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _wait_until_serving(processes: Processes, name: str, url: str) -> None:
    wait_for(lambda: processes.running(name) and answers(url), timeout=STARTUP_TIMEOUT)


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Centre]:
    prometheus, victoria_metrics = require_tool("prometheus"), require_tool("victoria-metrics")
    workdir = tmp_path_factory.mktemp("many-sites")
    processes = Processes(workdir)
    password_file = workdir / "remote-write.password"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")  # as `install /dev/stdin` leaves it
    store = PrometheusApi("", basic_auth(USERNAME, PASSWORD))  # its URL once it listens
    argv = [victoria_metrics, f"-storageDataPath={workdir / 'victoria-metrics'}",
            f"-httpAuth.username={USERNAME}", f"-httpAuth.password={PASSWORD}",
            # Answer with what has arrived, at once (the default hides the last 30 s), and never from a cache
            # filled before late samples arrived.
            "-search.latencyOffset=0s", "-search.disableCache"]
    centre = Centre(processes, store, argv, {})
    with FakeEmoncms() as emoncms, Simulator() as simulator:
        try:
            centre.start_store()
            exporters = {
                "cabin": ["demo"],
                "shed": ["run", "--config.file", str(exporter_config(workdir, simulator, emoncms.url))],
            }
            for name, exporter in exporters.items():
                exporter_url = processes.start_exporter(f"exporter-{name}", exporter)
                agent_url = processes.start_server(f"agent-{name}", [
                    prometheus, "--enable-feature=agent",
                    f"--config.file={_agent_config(workdir, name, exporter_url, store.url, password_file)}",
                    f"--storage.agent.path={workdir / f'wal-{name}'}", "--web.listen-address=127.0.0.1:0",
                ])
                centre.sites[name] = Site(name, exporter_url, PrometheusApi(agent_url))
            for name, site in centre.sites.items():
                _wait_until_serving(processes, f"exporter-{name}", f"{site.exporter}/metrics")
                _wait_until_serving(processes, f"agent-{name}", f"{site.agent.url}/-/ready")
            # emoncms down, then up: the shed's forwarder counts errors, queues rows, then sends them, so that
            # every emoncms panel has data (as in test_end_to_end.py).
            emoncms.go_down()
            wait_for(lambda: "pvmonit_emoncms_errors_total" in centre.sites["shed"].families(),
                     timeout=STARTUP_TIMEOUT, interval=0.5)
            emoncms.come_up()
            wait_for(emoncms.stored, timeout=STARTUP_TIMEOUT, interval=0.5)
            for name, site in centre.sites.items():
                wait_for(site.warmed_up, timeout=STARTUP_TIMEOUT, interval=0.5)
                # Samples flow to the centre (the first seconds of an agent may never be sent), enough of them to
                # fill the dashboard's rate windows.
                flowing = f'count_over_time(up{{site="{name}"}}[15s]) >= 10'
                wait_for(functools.partial(centre.store.has_data, flowing), timeout=DELIVERY_TIMEOUT, interval=1)
            yield centre
        finally:
            codes = processes.stop_all()
    assert set(codes.values()) == {0}, f"unclean stop: {codes}"


def _series(result: list[dict[str, Any]]) -> Series:
    return {frozenset(item["metric"].items()): item["value"][1] for item in result}


# Served only while rows wait to be sent ("absent when the queue is empty"): a scrape may never catch it, and
# on a loaded machine the exporter is more often read in such a moment, so the centre was waited for in vain.
ONLY_WHILE_ROWS_WAIT = {"pvmonit_emoncms_queue_oldest_row_timestamp_seconds"}


def test_every_family_of_each_exporter_arrives_with_its_site(centre: Centre) -> None:
    for site in centre.sites.values():
        served = site.families() - ONLY_WHILE_ROWS_WAIT
        assert len(served) >= 30, sorted(served)

        def arrived(site: Site = site, served: set[str] = served) -> bool:
            at_centre = set(centre.store.api("label/__name__/values", **{"match[]": f'{{site="{site.name}"}}'}))
            return served <= at_centre

        wait_for(arrived, timeout=DELIVERY_TIMEOUT, interval=2)
        # ...each one queryable with its site, as a dashboard or an alert would ask.
        now = time.time()
        for name in sorted(served):
            assert centre.query(f'{name}{{site="{site.name}"}}', now), f"{name} of {site.name}"


def test_the_store_takes_pushes_only_with_the_password(centre: Centre) -> None:
    """The agents' samples arrive (above) because they send agent.yml's basic_auth; without it, none would."""
    request = urllib.request.Request(f"{centre.store.url}/api/v1/write", data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10)
    assert refused.value.code == 401


def _panel_results(centre: Centre, site: str, at: float) -> dict[PanelQuery, Series]:
    """Every panel query of the dashboard, as Grafana sends it with this Site menu value, answered at `at`."""
    variables = {**GRAFANA_VARIABLES, "site": site}
    return {query: _series(centre.query(substitute_macros(query.expr, variables), at))
            for query in panel_queries(load_dashboard())}


def test_dashboard_shows_each_site_and_all_sites(centre: Centre) -> None:
    at = centre.settled_moment()
    everything = _panel_results(centre, ".*", at)  # the Site menu's "All"
    by_site = {site: _panel_results(centre, site, at) for site in SITES}

    empty = [str(query) for query, series in everything.items() if not series]
    assert not empty, "panel queries without data at the centre:\n" + "\n".join(empty)
    for site_name, results in by_site.items():
        served = centre.sites[site_name].families()
        for query, series in results.items():
            for labels in series:
                assert ("site", site_name) in labels, f"{query}: a series of another site: {dict(labels)}"
            # A query on this site's metrics alone has data for this site (the demo has no probe or emoncms).
            if metric_names(query.expr) <= served:
                assert series, f"{query}: nothing for {site_name}"
    for query, series in everything.items():
        # "All" is exactly the sites side by side, with the same values.
        assert series == by_site["cabin"][query] | by_site["shed"][query], query


def test_samples_of_a_central_outage_arrive_from_the_agents_wal(centre: Centre) -> None:
    """The store is stopped for OUTAGE_SECONDS, then started again on the same data: the agents kept scraping
    into their WAL and deliver the samples of that time."""
    assert centre.processes.stop("victoria-metrics") == 0
    stopped = time.time()
    time.sleep(OUTAGE_SECONDS / 2)
    # The agents noticed: their sends fail and they keep retrying.
    for site in centre.sites.values():
        assert site.agent_metric("prometheus_remote_storage_samples_pending") > 0, site.name
    time.sleep(OUTAGE_SECONDS / 2)
    centre.start_store()
    restarted = time.time()

    window = int(restarted - stopped)
    expected = window / SCRAPE_SECONDS
    counted = {(name, metric): f'count_over_time({metric}{{site="{name}"}}[{window}s])'
               for name in SITES for metric in ("up", "pvmonit_exporter_build_info")}

    def counts() -> dict[tuple[str, str], float]:
        found = {}
        for key, expr in counted.items():
            result = centre.query(expr, restarted)
            found[key] = float(result[0]["value"][1]) if result else 0.0
        return found

    # Every scrape of the outage arrives (a few may be late on a loaded machine); the agents retry at most a
    # minute apart (agent.yml), then catch up.
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    found = counts()
    while not all(count >= 0.9 * expected for count in found.values()):
        assert time.monotonic() < deadline, f"samples of the {window} s outage at the centre: {found}"
        time.sleep(2)
        found = counts()
    for (name, metric), count in found.items():
        assert count <= expected + 2, f"{name}: {count:.0f} samples of {metric} for {window} s: duplicates?"
