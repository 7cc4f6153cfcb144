"""The daemon under the outside campaign of issue 10, before and after: `/metrics` latency with 20 clients
while 2,000 idle and slow connections are open, then while 2,000 clients connect again as soon as they are
shed (issue 19; 20 clients, and one scraping in a row as Prometheus does), and peak memory with a probe
printing 300 MB.

    .venv/bin/python -m benchmarks.bench_hostile [--requests 25] [--before REF]

"before" is the code at REF (default: the last commit before issue 10's fixes), extracted with `git archive`
into a temporary directory and run from there; "after" is this checkout. Both run as `pvmonit-exporter demo`
(four simulated devices) with the file descriptor limit a systemd service starts with (soft 1024). Prints
figures; asserts nothing about speed.
"""

import argparse
import io
import json
import multiprocessing
import multiprocessing.sharedctypes
import multiprocessing.synchronize
import os
import resource
import selectors
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from benchmarks.bench_daemon import free_port
from tests.ops.processes import stop

REPO = Path(__file__).resolve().parent.parent
BEFORE_REF = "0dad99a"  # main when issue 10's work began: the standard library's http.server
SLOW_CONNECTIONS = 2000
CLIENTS = 20
SINGLE_SCRAPER_FACTOR = 20  # the one scraper makes as many scrapes as the 20 clients together
SERVICE_SOFT_FD_LIMIT = 1024  # systemd's default soft RLIMIT_NOFILE for a service
FLOOD_MB = 300


@contextmanager
def code_at(ref: str) -> Iterator[Path | None]:
    """A directory holding the package as it was at `ref`; None when git or the commit is not available."""
    with tempfile.TemporaryDirectory(prefix="pvmonit-before-") as directory:
        try:
            archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "pvmonit_exporter"],
                                     capture_output=True, check=True, timeout=60).stdout
        except (OSError, subprocess.CalledProcessError):
            yield None
            return
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(directory, filter="data")
        yield Path(directory)


def service_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (SERVICE_SOFT_FD_LIMIT, hard))


def start(code: Path, args: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pvmonit_exporter", *args, "--web.listen-address", f"127.0.0.1:{port}"],
        cwd=code, env=dict(os.environ, PYTHONPATH=str(code)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=service_fd_limit,  # noqa: PLW1509 - only setrlimit
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):  # noqa: S310 - http://127.0.0.1 only
                return process, base
        except OSError:
            time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"the daemon in {code} did not start")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- /metrics behind 2,000 idle and slow connections ----------------------------------------------------------


def open_slow_connections(port: int, count: int) -> list[socket.socket]:
    """Half idle (connected, silent), half slow (a request that never ends)."""
    sockets = []
    for index in range(count):
        try:
            client = socket.create_connection(("127.0.0.1", port), timeout=5)
            if index % 2:
                client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        except OSError:
            continue  # a server out of descriptors stops accepting: counted by what is left open
        sockets.append(client)
    return sockets


def drip(sockets: list[socket.socket], stop: threading.Event) -> None:
    """The slow clients send one more header byte every 2 s, as slowloris does."""
    while not stop.wait(2.0):
        for client in sockets[1::2]:
            with suppress(OSError):  # closed by the server
                client.sendall(b"a")


def scrape_latencies(url: str, requests: int, clients: int = CLIENTS) -> tuple[list[float], int]:
    """`clients` threads each scraping `url` `requests` times, one after the other, on a new connection each."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()

    def client() -> None:
        nonlocal failures
        for _ in range(requests):
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - http://127.0.0.1 only
                    response.read()
            except OSError:
                with lock:
                    failures += 1
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def metrics_under_slow_clients(code: Path, requests: int) -> dict[str, str]:
    process, base = start(code, ["demo"])
    stop_drip = threading.Event()
    sockets: list[socket.socket] = []
    try:
        time.sleep(2)  # the devices come up
        sockets = open_slow_connections(int(base.rsplit(":", 1)[1]), SLOW_CONNECTIONS)
        dripper = threading.Thread(target=drip, args=(sockets, stop_drip), daemon=True)
        dripper.start()
        latencies, failures = scrape_latencies(base + "/metrics", requests)
        open_fds = len(os.listdir(f"/proc/{process.pid}/fd"))
    finally:
        stop_drip.set()
        for client in sockets:
            client.close()
        stop(process)
    return {
        "p50 ms": f"{percentile(latencies, 0.50) * 1000:.1f}",
        "p99 ms": f"{percentile(latencies, 0.99) * 1000:.1f}",
        "failed": f"{failures}/{CLIENTS * requests}",
        "server fds": str(open_fds),
    }


def reconnect_when_shed(port: int, count: int, stop: "multiprocessing.synchronize.Event",
                        reconnects: "multiprocessing.sharedctypes.Synchronized[int]") -> None:
    """`count` idle and slow clients that each connect again the moment the server closes them: the worst case
    for shedding the idlest connection, since every shed one comes straight back. Bounded by `stop`.

    Run in a process of its own, as an attacker is: in a thread of the measuring process, the faster the server
    sheds, the more of that process's interpreter lock the reconnecting took from the scrapers being timed."""
    selector = selectors.DefaultSelector()
    for index in range(count):
        _connect_idle_client(selector, port, index)
    while not stop.is_set():
        missing = count - len(selector.get_map())
        for index in range(missing):  # those whose connect failed
            _connect_idle_client(selector, port, index)
        for key, _ in selector.select(timeout=0.2):
            client = key.fileobj
            assert isinstance(client, socket.socket)
            if _closed_by_server(client):
                selector.unregister(client)
                client.close()
                with reconnects.get_lock():
                    reconnects.value += 1
                _connect_idle_client(selector, port, key.data)
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    selector.close()


def _connect_idle_client(selector: selectors.BaseSelector, port: int, index: int) -> None:
    """One client that connects and says nothing (even `index`) or half a request (odd), watched by `selector`."""
    try:
        client = socket.create_connection(("127.0.0.1", port), timeout=1)
        if index % 2:
            client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    except OSError:
        return  # the backlog is full: this one tries again at the next round
    client.setblocking(False)
    selector.register(client, selectors.EVENT_READ, index)


def _closed_by_server(client: socket.socket) -> bool:
    """True when the server closed `client` (or the socket failed); what the server sent is read and dropped."""
    try:
        return client.recv(65536) == b""
    except OSError:
        return True


def metrics_under_reconnecting_clients(code: Path, requests: int, clients: int = CLIENTS) -> dict[str, str]:
    process, base = start(code, ["demo"])
    stop_churn = multiprocessing.Event()
    reconnects = multiprocessing.Value("q", 0)
    try:
        time.sleep(2)  # the devices come up
        churn = multiprocessing.Process(target=reconnect_when_shed,
                                        args=(int(base.rsplit(":", 1)[1]), SLOW_CONNECTIONS, stop_churn, reconnects))
        churn.start()
        time.sleep(3)  # every client has connected once and the server sheds
        latencies, failures = scrape_latencies(base + "/metrics", requests, clients)
    finally:
        stop_churn.set()
        churn.join()
        stop(process)
    return {
        "p50 ms": f"{percentile(latencies, 0.50) * 1000:.1f}",
        "p99 ms": f"{percentile(latencies, 0.99) * 1000:.1f}",
        "failed": f"{failures}/{clients * requests}",
        "reconnects": str(reconnects.value),
    }


# --- a probe printing 300 MB ---------------------------------------------------------------------------------


def flood_probe_peak(code: Path, workdir: Path) -> dict[str, str]:
    flood = (f"import sys\nchunk = b'1' * 65536\nfor _ in range({FLOOD_MB} * 16):\n"
             "    sys.stdout.buffer.write(chunk)\n")
    config = workdir / "flood.yaml"
    config.write_text(f"""
probes:
  - name: flood
    type: command
    quantity: temperature
    command: ["{sys.executable}", "-c", {json.dumps(flood)}]
    interval: 3600
    timeout: 120
""", encoding="utf-8")
    process, base = start(code, ["run", "--config.file", str(config)])
    started = time.monotonic()
    try:
        while time.monotonic() - started < 120:
            with urllib.request.urlopen(base + "/api/state", timeout=10) as response:  # noqa: S310 - local
                probe = json.load(response)["probes"][0]
            if probe["error"] or probe["value"] is not None:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        peak = peak_rss_mb(process.pid)
    finally:
        stop(process)
    return {"peak RSS MB": f"{peak:.0f}", "probe done s": f"{elapsed:.1f}", "error": str(probe["error"])[:40]}


def table(title: str, rows: dict[str, dict[str, str]]) -> None:
    print(title)
    columns = list(next(iter(rows.values())))
    print(f"  {'':8}" + "".join(f"{column:>14}" for column in columns[:-1]) + f"  {columns[-1]}")
    for name, row in rows.items():
        print(f"  {name:8}" + "".join(f"{row[column]:>14}" for column in columns[:-1]) + f"  {row[columns[-1]]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=25, help="scrapes per client (default 25)")
    parser.add_argument("--before", default=BEFORE_REF, help=f"git ref of the code before (default {BEFORE_REF})")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, SLOW_CONNECTIONS + 1000), hard))
    with code_at(args.before) as before, tempfile.TemporaryDirectory() as workdir:
        contenders: dict[str, Path] = {"after": REPO}
        if before is None:
            print(f"(before: git ref {args.before} unavailable; after only)")
        else:
            contenders = {"before": before, **contenders}
        runs: list[tuple[str, Callable[[Path], dict[str, str]]]] = [
            (f"/metrics, {CLIENTS} clients x {args.requests} scrapes, {SLOW_CONNECTIONS} idle and slow connections "
             f"open, soft fd limit {SERVICE_SOFT_FD_LIMIT}",
             lambda code: metrics_under_slow_clients(code, args.requests)),
            (f"/metrics, {CLIENTS} clients x {args.requests} scrapes, {SLOW_CONNECTIONS} idle and slow clients "
             "connecting again as soon as they are shed",
             lambda code: metrics_under_reconnecting_clients(code, args.requests)),
            # As Prometheus scrapes: one request at a time, so that the figures are the hostile clients' cost
            # alone and not also 20 scrapes queueing for the same two worker threads (p50 ~50 ms with no hostile
            # client at all). A new connection each time: the flood sheds an idle keep-alive connection first.
            (f"/metrics, one client x {SINGLE_SCRAPER_FACTOR * args.requests} scrapes in a row (as Prometheus), "
             f"{SLOW_CONNECTIONS} idle and slow clients connecting again as soon as they are shed",
             lambda code: metrics_under_reconnecting_clients(code, SINGLE_SCRAPER_FACTOR * args.requests, 1)),
            (f"a command probe printing {FLOOD_MB} MB", lambda code: flood_probe_peak(code, Path(workdir))),
        ]
        for title, run in runs:
            table(title, {name: run(code) for name, code in contenders.items()})


if __name__ == "__main__":
    main()
