"""The daemon with MQTT on (Home Assistant discovery, `interval: 10`) beside the same daemon with MQTT off: CPU and
memory, 4 simulated devices at 1 Hz, each run in its own process on the same pseudo-terminals.

    .venv/bin/python -m benchmarks.bench_mqtt [--seconds 60] [--rounds 2]

A real mosquitto (Debian's) on 127.0.0.1 receives the messages; a subscriber counts them, to show MQTT was on.
Runs alternate (off, on, off, on…) so that a machine busy with something else weighs on both alike. Prints
figures; asserts nothing about speed. Budget from issue 17: +0.2 % of a core, +5 MB.
"""

import argparse
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_daemon import blocks_total, byte_compile, cpu_seconds, free_port, peak_rss_mb
from pvmonit_exporter.demo.devices import demo_devices
from pvmonit_exporter.demo.ports import Simulator
from tests.mqtt.broker import Broker, Listener


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(ports: dict[str, str], seconds: float, workdir: Path, broker: Broker | None) -> dict[str, float]:
    config = workdir / "config.yaml"
    text = "devices:\n" + "".join(f"  - name: {n}\n    port: {p}\n" for n, p in ports.items())
    if broker is not None:
        text += f"mqtt:\n  url: {broker.url}\n  client_id: bench\n  interval: 10\n"
    config.write_text(text)
    listener = Listener(broker, ("pvmonit/+/state",)) if broker is not None else None
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "pvmonit_exporter", "run", "--config.file", str(config),
                                "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "warning"])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                totals = blocks_total(base + "/metrics")
                if len(totals) == len(ports) and all(totals.values()):
                    break
            except OSError:
                pass
            time.sleep(0.2)
        time.sleep(2)  # discovery and the first states are out
        states_before = len(listener.messages) if listener else 0
        cpu_before = cpu_seconds(process.pid)
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(process.pid) - cpu_before
        figures = {"cpu": 100 * cpu / elapsed, "peak": peak_rss_mb(process.pid), "rss": rss_mb(process.pid),
                   "states": ((len(listener.messages) - states_before) / elapsed) if listener else 0.0}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)
        if listener is not None:
            listener.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    devices = demo_devices(mppt_count=2)
    byte_compile()
    print(f"{len(devices)} simulated devices ({', '.join(d.name for d in devices)}) at 1 Hz, {args.seconds:.0f} s "
          f"per run, {args.rounds} rounds of MQTT off then on (interval 10 s, Home Assistant discovery)")
    results: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as workdir, Simulator(devices) as simulator:
        broker = Broker(Path(workdir))
        broker.start()
        try:
            for _ in range(args.rounds):
                results["off"].append(run(simulator.ports, args.seconds, Path(workdir), None))
                results["on"].append(run(simulator.ports, args.seconds, Path(workdir), broker))
        finally:
            broker.stop()
    rows = (("CPU (% of one core)", "cpu", 2), ("peak RSS (MB)", "peak", 1), ("RSS at the end (MB)", "rss", 1),
            ("MQTT state messages / s", "states", 2))
    width = max(len(label) for label, _, _ in rows)
    print(f"{'':{width}}  {'MQTT off':>10}  {'MQTT on':>10}  {'difference':>10}")
    for label, key, digits in rows:
        off = statistics.mean(r[key] for r in results["off"])
        on = statistics.mean(r[key] for r in results["on"])
        print(f"{label:{width}}  {off:>10.{digits}f}  {on:>10.{digits}f}  {on - off:>+10.{digits}f}")
    print("per round (off/on CPU %): " + ", ".join(f"{a['cpu']:.2f}/{b['cpu']:.2f}"
                                                   for a, b in zip(results["off"], results["on"], strict=True)))
    print("budget: +0.2 % of one core, +5 MB")


if __name__ == "__main__":
    main()
