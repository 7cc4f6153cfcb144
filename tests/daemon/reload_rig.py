"""A real `pvmonit-exporter run` reloaded (SIGHUP) again and again, with its descriptors and memory measured from
/proc: shared by tests/daemon/test_reload.py and benchmarks/bench_reload.py.

The daemon runs everything a reload replaces: the simulator's four VE.Direct devices on pseudo-terminals (the
demo's), a `file` probe and a `serial` current clamp, and a forwarder with its disk queue posting to the fake
emoncms. A reload is complete when the daemon logs `configuration reloaded` (`app.reload_from` logs it once the
new pipeline runs): each SIGHUP is sent when the previous one has completed, so reloads go as fast as the daemon
does them."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from pvmonit_exporter.demo.ports import Simulator
from tests.forwarder.fake_emoncms import WRITE_KEY, FakeEmoncms

RELOADED = b"configuration reloaded from"
START_TIMEOUT = 60.0
RELOAD_TIMEOUT = 60.0  # one reload; only catches a hang


class ReloadRig:
    """`with ReloadRig(tmp) as rig: rig.reload_until(10); rig.fds()…`; `env` for the daemon's process (another
    checkout on PYTHONPATH, for a before/after)."""

    def __init__(self, directory: Path, env: Mapping[str, str] | None = None) -> None:
        self.directory = directory
        self.env = dict(os.environ if env is None else env)
        self.reloads = 0
        self.simulator = Simulator()
        self.emoncms = FakeEmoncms()
        self.log_path = directory / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "ReloadRig":
        self.simulator.start()
        self.emoncms.__enter__()
        devices, _ = self.simulator.exporter_config()
        config = self.directory / "config.yaml"
        config.write_text(
            "devices:\n" + "".join(f"  - name: {d.name}\n    port: {d.port}\n" for d in devices)
            + f"probes:\n  - name: shed\n    type: file\n    quantity: temperature\n"
              f"    path: {self.simulator.probe_path}\n    interval: 1\n"
              f"  - name: clamp\n    type: serial\n    quantity: current\n    port: {self.simulator.clamp_path}\n"
              f"    interval: 1\n"
            + f"emoncms:\n  url: {self.emoncms.url}\n  apikey: {WRITE_KEY}\n"
              f"  queue_dir: {self.directory / 'queue'}\n  interval: 1\n",
            encoding="utf-8")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pvmonit_exporter", "run", "--config.file", str(config),
                 "--web.listen-address", "127.0.0.1:0"],
                stdout=subprocess.DEVNULL, stderr=log, env=self.env,
                cwd=self.directory)  # not a checkout: its code would come before PYTHONPATH
        self._wait(lambda: b"listening on" in self.log_path.read_bytes(), START_TIMEOUT, "start")
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            self.emoncms.__exit__(kind, error, trace)
            self.simulator.stop()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def reload_until(self, total: int) -> None:
        """SIGHUP, one at a time, each once the previous reload has completed, until `total` have."""
        assert self.process is not None
        while self.reloads < total:
            self.process.send_signal(signal.SIGHUP)
            self.reloads += 1
            self._wait(lambda: self.log_path.read_bytes().count(RELOADED) >= self.reloads, RELOAD_TIMEOUT,
                       f"reload {self.reloads}")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS in /proc/PID/status")

    def _wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"the daemon ended during {what}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not done within {timeout} s:\n{self.log()[-2000:]}")
            time.sleep(0.01)
