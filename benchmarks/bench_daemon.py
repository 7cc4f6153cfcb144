"""The daemon on 4 simulated devices at 1 Hz: CPU, peak memory, /metrics latency — and vedirect-m8 beside it.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python -m benchmarks.bench_daemon [--seconds 60] [--clients 20] [--requests 50]

Both contenders read the same four pseudo-terminals, fed by the simulator of `pvmonit-exporter demo` (a BMV
with main and history blocks, two MPPTs with occasional HEX messages, an inverter), one after the other, each
in its own process so that CPU time and peak RSS are its own. Prints figures; asserts nothing about speed.
"""

import argparse
import compileall
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tty
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from pvmonit_exporter.demo.devices import demo_devices
from pvmonit_exporter.demo.ports import Simulator
from pvmonit_exporter.vedirect.framing import encode_block

PEER_SCRIPT = """
import sys, threading, time
from vedirect_m8.vedirect import Vedirect

seconds, ports = float(sys.argv[1]), sys.argv[2:]
counts = dict.fromkeys(ports, 0)
stop = time.monotonic() + seconds

def read(port):
    # timeout=1: a blocking read; the library's default (0) spins a core per port.
    reader = Vedirect(serial_conf={"serial_port": port, "baud": 19200, "timeout": 1}, source_name=port)
    while time.monotonic() < stop:
        try:
            if reader.read_data_single(timeout=5):
                counts[port] += 1
        except Exception:
            pass

threads = [threading.Thread(target=read, args=(p,), daemon=True) for p in ports]
for t in threads:
    t.start()
print("ready", flush=True)
for t in threads:
    t.join()
print(" ".join(str(counts[p]) for p in ports), flush=True)
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def byte_compile() -> None:
    """Write the package's .pyc files, as `pip install` does. The daemon as installed never compiles its sources;
    one started where they are missing and PYTHONDONTWRITEBYTECODE is set (as on some development machines)
    compiles them at every start, which leaves ~0.7 MB more resident for good: not the daemon a Pi runs."""
    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "pvmonit_exporter"), quiet=1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - http://127.0.0.1 only
        return bytes(response.read())


def blocks_total(url: str) -> dict[str, float]:
    totals = {}
    for family in text_string_to_metric_families(scrape(url).decode()):
        for sample in family.samples:
            if sample.name == "vedirect_blocks_total":
                totals[sample.labels["device"]] = sample.value
    return totals


def latency(url: str, clients: int, requests: int) -> list[float]:
    timings: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        mine = []
        for _ in range(requests):
            started = time.perf_counter()
            scrape(url)
            mine.append(time.perf_counter() - started)
        with lock:
            timings.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(timings)


def run_ours(ports: dict[str, str], seconds: float, clients: int, requests: int, workdir: Path) -> dict[str, str]:
    config = workdir / "config.yaml"
    config.write_text("devices:\n" + "".join(f"  - name: {n}\n    port: {p}\n" for n, p in ports.items()))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pvmonit_exporter",
            "run",
            "--config.file",
            str(config),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--log.level",
            "warning",
        ]
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if len(blocks_total(base + "/metrics")) == len(ports) and all(blocks_total(base + "/metrics").values()):
                    break
            except OSError:
                pass
            time.sleep(0.2)
        before_blocks = blocks_total(base + "/metrics")
        cpu_before = cpu_seconds(process.pid)
        started = time.monotonic()
        while time.monotonic() - started < seconds:  # Prometheus's default 15 s scrape meanwhile
            scrape(base + "/metrics")
            time.sleep(min(15.0, max(0.0, seconds - (time.monotonic() - started))))
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(process.pid) - cpu_before
        after_blocks = blocks_total(base + "/metrics")
        timings = latency(base + "/metrics", clients, requests)
        rss = peak_rss_mb(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
    blocks = sum(after_blocks.values()) - sum(before_blocks.values())
    return {
        "CPU (% of one core)": f"{100 * cpu / elapsed:.2f}",
        "peak RSS (MB)": f"{rss:.1f}",
        "blocks decoded / s": f"{blocks / elapsed:.2f}",
        "/metrics p50 (ms)": f"{1000 * statistics.median(timings):.1f}",
        "/metrics p99 (ms)": f"{1000 * timings[int(len(timings) * 0.99) - 1]:.1f}",
        "/metrics requests": str(len(timings)),
    }


def vmodem_links(ports: dict[str, str]) -> list[Path]:
    """vedirect-m8 accepts only /dev/ttyUSBn-like names or ~/vmodemN: link free vmodem names to our terminals."""
    links: list[Path] = []
    number = 900
    for path in ports.values():
        while (Path.home() / f"vmodem{number}").exists():
            number += 1
        link = Path.home() / f"vmodem{number}"
        link.symlink_to(path)
        links.append(link)
    return links


def frame_latency(workdir: Path, blocks: int = 20) -> dict[str, str]:
    """Time from a block's last byte written to a pseudo-terminal until /api/state shows its value."""
    master, slave = os.openpty()
    tty.setraw(slave)
    config = workdir / "latency.yaml"
    config.write_text(f"devices:\n  - name: probe\n    port: {os.ttyname(slave)}\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "pvmonit_exporter", "run", "--config.file", str(config),
                                "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "warning"])
    latencies = []
    try:
        while True:
            try:
                if json.loads(scrape(base + "/api/state"))["devices"][0]["connected"]:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        for number in range(blocks):
            voltage = str(24000 + number)
            os.write(master, encode_block({"PID": "0xA04A", "V": voltage, "PPV": "100"}))
            written = time.perf_counter()
            while json.loads(scrape(base + "/api/state"))["devices"][0]["fields"].get("V", {}).get("raw") != voltage:
                time.sleep(0.002)
            latencies.append(time.perf_counter() - written)
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        os.close(master)
        os.close(slave)
    latencies.sort()
    return {"median": f"{1000 * statistics.median(latencies):.0f}", "max": f"{1000 * latencies[-1]:.0f}"}


def run_peer(ports: dict[str, str], seconds: float, links: list[Path]) -> dict[str, str]:
    process = subprocess.Popen(
        [sys.executable, "-c", PEER_SCRIPT, str(seconds + 2), *map(str, links)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    process.stdout.readline()  # "ready"
    time.sleep(2)  # let it open its ports, as ours had
    cpu_before = cpu_seconds(process.pid)
    started = time.monotonic()
    time.sleep(seconds - 0.5)
    cpu = cpu_seconds(process.pid) - cpu_before
    elapsed = time.monotonic() - started
    rss = peak_rss_mb(process.pid)
    counts = [int(n) for n in process.stdout.readline().split()]
    process.wait(timeout=30)
    return {
        "CPU (% of one core)": f"{100 * cpu / elapsed:.2f}",
        "peak RSS (MB)": f"{rss:.1f}",
        "blocks decoded / s": f"{sum(counts) / (seconds + 2):.2f}",
        "/metrics p50 (ms)": "n/a",
        "/metrics p99 (ms)": "n/a",
        "/metrics requests": "n/a",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=50, help="per client")
    args = parser.parse_args()
    devices = demo_devices(mppt_count=2)
    byte_compile()
    print(
        f"{len(devices)} simulated devices ({', '.join(d.name for d in devices)}) at 1 Hz, "
        f"{args.seconds:.0f} s each; {args.clients} concurrent /metrics clients × {args.requests} requests "
        "(the package byte-compiled, as installed)"
    )
    with tempfile.TemporaryDirectory() as workdir, Simulator(devices) as simulator:
        ours = run_ours(simulator.ports, args.seconds, args.clients, args.requests, Path(workdir))
        links = vmodem_links(simulator.ports)
        try:
            peer = run_peer(simulator.ports, args.seconds, links)
        finally:
            for link in links:
                link.unlink()
        latency = frame_latency(Path(workdir))
    width = max(len(k) for k in ours)
    print(f"{'':{width}}  {'pvmonit-exporter':>18}  {'vedirect-m8 loop':>18}")
    for key in ours:
        print(f"{key:{width}}  {ours[key]:>18}  {peer[key]:>18}")
    print(f"block written → visible in /api/state: median {latency['median']} ms, max {latency['max']} ms "
          "(20 blocks, polled every 2 ms)")
    print("goals: CPU ≤ 0.5 % of one core and peak RSS ≤ 30 MB (issue 19), a block in the state within 500 ms")


if __name__ == "__main__":
    main()
