"""Many sites: what one site sends over its link and what the central store needs — a site's Prometheus agent
at prometheus/agent.yml's own settings (15 s scrapes, batches of up to 30 s), and beside it vmagent (the other
agent the issue names, Debian's victoria-metrics package) scraping the same exporters with the same interval and
batching, each pushing to its own VictoriaMetrics single node.

    .venv/bin/python -m benchmarks.bench_many_sites [--seconds 300]

Two sites: the demo (`pvmonit-exporter demo`: BMV, MPPT, inverter, a temperature probe) and a 4-device site
(BMV, two MPPTs, inverter, the probe). Prints series per site, bytes per sample on the link, the agents' memory,
the central store's samples/s and memory, and the projection to 1,000 sites. Asserts nothing about speed.
"""

import argparse
import functools
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.bench_daemon import free_port
from pvmonit_exporter.demo.day import PROBE_INTERVAL, PROBE_NAME
from pvmonit_exporter.demo.devices import demo_devices
from pvmonit_exporter.demo.ports import Simulator
from tests.ops.processes import stop

REPO = Path(__file__).resolve().parents[1]
AGENT_CONFIG = REPO / "prometheus" / "agent.yml"
SITES = {"demo": 1, "four-devices": 2}  # site → MPPT count: 3 and 4 devices
PROJECTED_SITES = 1000
# VictoriaMetrics' documentation: the single node up to about a million samples a second; the cluster beyond.
SINGLE_NODE_SAMPLES_PER_SECOND = 1_000_000
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str) -> str:
    with _DIRECT.open(url, timeout=10) as response:
        body: bytes = response.read()
        return body.decode()


def wait(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_many_sites: {what}: not within {timeout:.0f} s")
        time.sleep(0.5)


def serves(url: str, text: str) -> bool:
    return text in get(url)


def metric(url: str, name: str) -> float:
    """The sum of a metric's samples on a /metrics page (0 when absent)."""
    return sum(sample.value for family in text_string_to_metric_families(get(url))
               for sample in family.samples if sample.name == name)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def query(store: str, expr: str) -> list[dict[str, Any]]:
    answer = yaml.safe_load(get(f"{store}/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


class Run:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        self.processes[name] = process
        return process

    def stop_all(self) -> None:
        for process in reversed(self.processes.values()):
            stop(process)


def store(run: Run, name: str) -> str:
    port = free_port()
    run.start(name, [tool("victoria-metrics"), f"-storageDataPath={run.workdir / name}",
                     f"-httpListenAddr=127.0.0.1:{port}", "-search.latencyOffset=0s"])
    url = f"http://127.0.0.1:{port}"
    wait(functools.partial(serves, f"{url}/health", "OK"), f"{name} starts")
    return url


def exporter_config(workdir: Path, site: str, simulator: Simulator) -> Path:
    config = {
        "devices": [{"name": name, "port": port} for name, port in simulator.ports.items()],
        "probes": [{"name": PROBE_NAME, "type": "file", "quantity": "temperature",
                    "path": str(simulator.probe_path), "interval": PROBE_INTERVAL}],
    }
    path = workdir / f"{site}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def prometheus_agent_config(workdir: Path, site: str, target: str, store_url: str, batch_deadline: str) -> Path:
    """agent.yml as shipped, this site's name, exporter and store (plain HTTP on loopback, no password)."""
    config = yaml.safe_load(AGENT_CONFIG.read_text(encoding="utf-8"))
    config["global"]["external_labels"]["site"] = site
    config["scrape_configs"][0]["static_configs"] = [{"targets": [target]}]
    (remote,) = config["remote_write"]
    remote["url"] = f"{store_url}/api/v1/write"
    del remote["basic_auth"]
    remote["queue_config"]["batch_send_deadline"] = batch_deadline
    path = workdir / f"agent-{site}.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def vmagent_scrape_config(workdir: Path, site: str, target: str) -> Path:
    shipped = yaml.safe_load(AGENT_CONFIG.read_text(encoding="utf-8"))
    config = {"global": {"scrape_interval": shipped["global"]["scrape_interval"]},
              "scrape_configs": [{"job_name": shipped["scrape_configs"][0]["job_name"],
                                  "static_configs": [{"targets": [target]}]}]}
    path = workdir / f"vmagent-{site}.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"bench_many_sites: {name} is not installed (Debian: prometheus, victoria-metrics)")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="how long the sites push (default 300)")
    parser.add_argument("--batch-send-deadline", help="instead of agent.yml's, e.g. 2m: fewer, bigger requests")
    args = parser.parse_args()
    shipped = yaml.safe_load(AGENT_CONFIG.read_text(encoding="utf-8"))
    scrape_seconds = float(shipped["global"]["scrape_interval"].removesuffix("s"))
    batch_deadline = args.batch_send_deadline or shipped["remote_write"][0]["queue_config"]["batch_send_deadline"]

    with tempfile.TemporaryDirectory(prefix="bench-many-sites-") as tmp:
        workdir = Path(tmp)
        run = Run(workdir)
        simulators = [Simulator(demo_devices(mppt_count=mppts)) for mppts in SITES.values()]
        try:
            central = store(run, "central")
            peer_store = store(run, "peer-store")
            agents: dict[str, tuple[str, int]] = {}  # name → (its /metrics, pid)
            for (site, _), simulator in zip(SITES.items(), simulators, strict=True):
                simulator.start()
                port = free_port()
                target = f"127.0.0.1:{port}"
                command = ["demo"] if site == "demo" else ["run", "--config.file",
                                                            str(exporter_config(workdir, site, simulator))]
                run.start(f"exporter-{site}", [sys.executable, "-m", "pvmonit_exporter", *command,
                                               "--web.listen-address", target])
                wait(functools.partial(serves, f"http://{target}/metrics", "vedirect_up"), f"exporter {site}")
                agent_port, vmagent_port = free_port(), free_port()
                agent = run.start(f"agent-{site}", [
                    tool("prometheus"), "--enable-feature=agent",
                    f"--config.file={prometheus_agent_config(workdir, site, target, central, batch_deadline)}",
                    f"--storage.agent.path={workdir / f'wal-{site}'}", "--storage.agent.wal-compression",
                    f"--web.listen-address=127.0.0.1:{agent_port}"])
                agents[f"prometheus agent, {site}"] = (f"http://127.0.0.1:{agent_port}/metrics", agent.pid)
                vmagent = run.start(f"vmagent-{site}", [
                    tool("vmagent"), f"-promscrape.config={vmagent_scrape_config(workdir, site, target)}",
                    f"-remoteWrite.url={peer_store}/api/v1/write", f"-remoteWrite.label=site={site}",
                    f"-remoteWrite.flushInterval={batch_deadline}",
                    f"-remoteWrite.tmpDataPath={workdir / f'vmq-{site}'}", f"-httpListenAddr=127.0.0.1:{vmagent_port}"])
                agents[f"vmagent, {site}"] = (f"http://127.0.0.1:{vmagent_port}/metrics", vmagent.pid)
            for name, (url, _) in agents.items():
                wait(functools.partial(serves, url, "process_"), f"{name} starts")

            # Count from the first sample the store has: what arrives after that, for `seconds`.
            wait(lambda: bool(query(central, "count(up)")) and bool(query(peer_store, "count(up)")),
                 "the first samples reach the stores", timeout=180)
            inserted_before = metric(f"{central}/metrics", "vm_rows_inserted_total")
            started = time.monotonic()
            time.sleep(args.seconds)
            samples_per_second = (metric(f"{central}/metrics", "vm_rows_inserted_total") - inserted_before) \
                / (time.monotonic() - started)
            print(f"batches sent at least every {batch_deadline}")
            report(central, peer_store, agents, run, samples_per_second, scrape_seconds)
        finally:
            run.stop_all()
            for simulator in simulators:
                simulator.stop()


def report(central: str, peer_store: str, agents: dict[str, tuple[str, int]], run: Run,
           samples_per_second: float, scrape_seconds: float) -> None:
    print(f"scrape interval {scrape_seconds:.0f} s (prometheus/agent.yml)")
    series = {}
    for site in SITES:
        (result,) = query(central, f'count({{site="{site}"}})')
        series[site] = float(result["value"][1])
        print(f"series per site, {site:13s}: {series[site]:5.0f}   ({series[site] / scrape_seconds:.1f} samples/s)")
    print()
    print(f"{'agent':32s} {'bytes/sample':>12s} {'samples sent':>12s} {'requests':>9s} {'memory (RSS)':>13s}")
    link: dict[str, float] = {}
    for name, (url, pid) in agents.items():
        if name.startswith("prometheus"):
            sent = metric(url, "prometheus_remote_storage_bytes_total")
            samples = metric(url, "prometheus_remote_storage_samples_total")
            requests = metric(url, "prometheus_remote_storage_sent_batch_duration_seconds_count")
        else:
            sent = metric(url, "vmagent_remotewrite_bytes_sent_total")
            samples = metric(url, "vmagent_remotewrite_block_size_rows_sum")
            requests = metric(url, "vmagent_remotewrite_requests_total")
        link[name] = sent / samples if samples else float("nan")
        print(f"{name:32s} {link[name]:12.2f} {samples:12.0f} {requests:9.0f} {rss_bytes(pid) / 2**20:10.1f} MB")
    memory = metric(f"{central}/metrics", "process_resident_memory_bytes")
    print()
    print(f"central store (VictoriaMetrics single node), the two sites: {samples_per_second:.1f} samples/s, "
          f"{memory / 2**20:.0f} MB resident")
    peer_memory = metric(f"{peer_store}/metrics", "process_resident_memory_bytes")
    print(f"  (its twin fed by the vmagents: {peer_memory / 2**20:.0f} MB resident)")
    exporters = [f"{name} {rss_bytes(process.pid) / 2**20:.0f} MB" for name, process in run.processes.items()
                 if name.startswith("exporter")]
    print(f"  the exporters, for scale: {', '.join(exporters)}")

    per_site = sum(series.values()) / len(series)
    total_series = PROJECTED_SITES * per_site
    total_rate = total_series / scrape_seconds
    bytes_per_sample = sum(v for k, v in link.items() if k.startswith("prometheus")) / len(SITES)
    per_site_day = per_site / scrape_seconds * 86400 * bytes_per_sample
    print()
    print(f"projection to {PROJECTED_SITES:,} sites of {per_site:.0f} series at {scrape_seconds:.0f} s: "
          f"{total_series:,.0f} active series, {total_rate:,.0f} samples/s "
          f"({total_rate / SINGLE_NODE_SAMPLES_PER_SECOND:.1%} of the ~1M samples/s VictoriaMetrics gives as the "
          f"single node's range)")
    print(f"link per site: {per_site_day / 2**20:.1f} MB a day, {per_site_day * 30 / 2**20:.0f} MB a month "
          f"(Prometheus agent, {bytes_per_sample:.1f} bytes/sample)")


if __name__ == "__main__":
    main()
