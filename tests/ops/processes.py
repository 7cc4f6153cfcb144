"""Real programs on loopback for the end-to-end tests: starting and stopping them, their logs, the Prometheus
HTTP API (which VictoriaMetrics serves too), and the exporter's configuration on the simulator."""

import base64
import json
import os
import signal
import subprocess
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pvmonit_exporter.demo.ports import Simulator
from tests.forwarder.fake_emoncms import WRITE_KEY
from tests.helpers import listening_port, start_daemon

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 only, never a proxy


def get(url: str, headers: dict[str, str] | None = None) -> bytes:
    with _DIRECT.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
        body: bytes = response.read()
        return body


def answers(url: str, headers: dict[str, str] | None = None) -> bool:
    try:
        get(url, headers)
    except OSError:
        return False
    return True


def basic_auth(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def environment() -> dict[str, str]:
    """This process's environment without proxies: every program here talks to 127.0.0.1 only."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = "127.0.0.1"
    return env


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT; the exit status (-9 when it had to be killed)."""
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
class Processes:
    """Programs started by one test module, each logging to `<workdir>/<name>.log`."""

    workdir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=environment)

    def start(self, name: str, argv: list[str]) -> None:
        with (self.workdir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                                    cwd=self.workdir)

    def start_exporter(self, name: str, args: list[str]) -> str:
        """`python -m pvmonit_exporter ARGS` on a port of its choosing: its base URL, from its log."""
        self.processes[name], url = start_daemon(args, self.workdir / f"{name}.log", env=self.env, cwd=self.workdir)
        return url

    def start_server(self, name: str, argv: list[str]) -> str:
        """A program that ARGV tells to listen on 127.0.0.1:0: its base URL, with the port it got (from /proc)."""
        self.start(name, argv)
        return f"http://127.0.0.1:{listening_port(self.processes[name])}"

    def stop(self, name: str) -> int:
        return stop(self.processes[name])

    def stop_all(self) -> dict[str, int]:
        """Stop everything, last started first, and print the logs' ends (pytest shows them on failure)."""
        codes = {name: stop(process) for name, process in reversed(self.processes.items())}
        for name in self.processes:
            print(f"--- {name} log (end) ---\n{self.log(name)}")
        return codes

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace")[-4000:] if path.exists() else ""

    def running(self, name: str) -> bool:
        process = self.processes[name]
        assert process.poll() is None, f"{name} exited with {process.returncode}:\n{self.log(name)}"
        return True


@dataclass
class PrometheusApi:
    """The query API of Prometheus, or of VictoriaMetrics (the same paths and answers)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        answer = json.loads(get(f"{self.url}/api/v1/{path}" + (f"?{query}" if query else ""), self.headers))
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        data = self.api("query", **params)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def has_data(self, expr: str) -> bool:
        """Whether `expr` has a result now; a server that does not answer the query fails the test (it is ready)."""
        return bool(self.query(expr))


def exporter_config(workdir: Path, simulator: Simulator, emoncms_url: str) -> Path:
    """The simulator's devices, a temperature and a current probe, and the forwarder: every metric family."""
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
