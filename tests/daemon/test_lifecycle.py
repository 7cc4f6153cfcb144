"""The daemon's life as an operator and an attacker see it, on a real `pvmonit-exporter run` subprocess:
signals to any thread, SIGHUP reloads, 2,000 idle and slow HTTP clients, hostile paths, a probe printing
300 MB, URL passwords."""

import ctypes
import json
import os
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pvmonit_exporter.vedirect.framing import encode_block
from tests.daemon.test_exporter import get, sample
from tests.helpers import REFUSED_PORT, FakeDevicePort, start_daemon, wait_for
from tests.vedirect_samples import MPPT

pytestmark = pytest.mark.slow

PYTHON = sys.executable


class Daemon:
    """`pvmonit-exporter run` on 127.0.0.1; `preexec` runs in the child before it starts (resource limits)."""

    def __init__(self, config: Path, tmp_path: Path, preexec: Callable[[], None] | None = None) -> None:
        self.config = config
        self.log_path = tmp_path / "stderr.log"
        self.process, self.base = start_daemon(["run", "--config.file", str(config)], self.log_path,
                                               preexec_fn=preexec)  # only setrlimit
        self.port = int(self.base.rsplit(":", 1)[1])

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def state(self) -> dict[str, Any]:
        status, _, content = get(self.base + "/api/state")
        assert status == 200, (status, content[:500])
        document: dict[str, Any] = json.loads(content)
        return document

    def other_threads(self) -> list[int]:
        """The daemon's thread ids other than the main thread's."""
        return [int(task) for task in os.listdir(f"/proc/{self.process.pid}/task") if int(task) != self.process.pid]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def file_probe(name: str, file: Path, interval: float = 1) -> str:
    return f"""
  - name: {name}
    type: file
    quantity: temperature
    path: {file}
    interval: {interval}
"""


def tgkill(pid: int, tid: int, signum: int) -> None:
    """Send `signum` to one thread of another process (kill() lets the kernel pick the main thread)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.tgkill(pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


# --- signals ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_delivered_to_another_thread_stops_the_daemon(tmp_path: Path, daemons: list[Daemon],
                                                               signum: signal.Signals) -> None:
    """The main thread used to wait without a timeout: CPython only runs handlers there, so a signal the
    kernel delivered to a reader or HTTP thread was never handled (5 of 65 stops needed SIGKILL)."""
    temperature = write(tmp_path / "temperature", "21.5\n")
    config = write(tmp_path / "config.yaml", f"probes:{file_probe('shed', temperature)}")
    daemon = Daemon(config, tmp_path)
    daemons.append(daemon)
    threads = daemon.other_threads()
    assert threads
    for tid in threads:  # to each of them, in turn, until the daemon stops: any one must do
        if daemon.process.poll() is not None:
            break
        tgkill(daemon.process.pid, tid, signum)
        try:
            daemon.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{signum.name} to thread {tid} did not stop the daemon:\n{daemon.log()}")
    assert daemon.process.returncode == 0
    assert f"received {signum.name}, stopping" in daemon.log()


# --- SIGHUP ----------------------------------------------------------------------------------------------------


def emoncms_config(tmp_path: Path, probes: str, interval: int = 1, userinfo: str = "pvmonit:hunter2hunter2") -> str:
    """An emoncms nobody answers (REFUSED_PORT): every snapshot stays queued. Its URL carries credentials."""
    return f"""
probes:{probes}
emoncms:
  url: "http://{userinfo}@127.0.0.1:{REFUSED_PORT}/emoncms"
  apikey: 0123456789abcdef0123456789abcdef
  queue_dir: {tmp_path / "queue"}
  interval: {interval}
  timeout: 1
"""


def queued(daemon: Daemon) -> int:
    return int(daemon.state()["forwarder"]["queue_rows"])


def probe_names(daemon: Daemon) -> list[str]:
    return [probe["name"] for probe in daemon.state()["probes"]]


def test_sighup_reloads_a_valid_file_keeping_the_queued_rows(tmp_path: Path, daemons: list[Daemon]) -> None:
    temperature = write(tmp_path / "temperature", "21.5\n")
    config = write(tmp_path / "config.yaml", emoncms_config(tmp_path, file_probe("shed", temperature)))
    daemon = Daemon(config, tmp_path)
    daemons.append(daemon)
    wait_for(lambda: queued(daemon) >= 3, timeout=30)
    write(config, emoncms_config(tmp_path, file_probe("shed", temperature) + file_probe("attic", temperature)))
    before = queued(daemon)
    daemon.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "attic" in probe_names(daemon), timeout=30)
    assert daemon.process.poll() is None
    assert queued(daemon) >= before  # the new forwarder runs on the same queue: nothing was lost
    wait_for(lambda: sample(daemon.base, "pvmonit_probe_up", probe="attic") == 1.0)
    wait_for(lambda: queued(daemon) > before, timeout=30)  # and goes on queueing
    assert daemon.stop() == 0
    log = daemon.log()
    assert "configuration reloaded" in log
    assert "Traceback" not in log


def test_sighup_with_a_broken_file_logs_one_line_and_keeps_running(tmp_path: Path, daemons: list[Daemon]) -> None:
    """SIGHUP used to kill the process (its default action), which Restart=on-failure then left down."""
    temperature = write(tmp_path / "temperature", "21.5\n")
    config = write(tmp_path / "config.yaml", f"probes:{file_probe('shed', temperature)}")
    daemon = Daemon(config, tmp_path)
    daemons.append(daemon)
    wait_for(lambda: sample(daemon.base, "pvmonit_probe_up", probe="shed") == 1.0)
    write(config, "probes:\n  - name: shed\n    type: telepathy\n")
    daemon.process.send_signal(signal.SIGHUP)
    wait_for(lambda: "not reloaded" in daemon.log(), timeout=30)
    assert daemon.process.poll() is None
    readings = sample(daemon.base, "pvmonit_probe_readings_total", probe="shed") or 0
    wait_for(lambda: (sample(daemon.base, "pvmonit_probe_readings_total", probe="shed") or 0) > readings)
    assert daemon.stop() == 0
    lines = [line for line in daemon.log().splitlines() if "not reloaded" in line]
    assert len(lines) == 1
    assert "probes[0].type" in lines[0]
    assert "Traceback" not in daemon.log()


# --- URL passwords -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("userinfo", "shown"),
    [
        ("pvmonit:hunter2hunter2", "pvmonit:****"),
        ("hunter2hunter2", "****"),  # a token alone, as the user name: used to be shown whole
        ("pvmonit:hunter2%2Fhunter2", "pvmonit:****"),  # '/', '#', '?', ' ' in a password, percent-encoded
        ("pvmonit:hunter2%23hunter2", "pvmonit:****"),
        ("pvmonit:hunter2%3Fhunter2", "pvmonit:****"),
        ("pvmonit:hunter2%20hunter2", "pvmonit:****"),
    ],
)
def test_url_credentials_are_masked_in_api_state_the_page_and_the_log(tmp_path: Path, daemons: list[Daemon],
                                                                      userinfo: str, shown: str) -> None:
    """The live page shows the forwarder's figures and last error from /api/state, and nothing else of it."""
    temperature = write(tmp_path / "temperature", "21.5\n")
    config = write(tmp_path / "config.yaml", emoncms_config(tmp_path, file_probe("shed", temperature),
                                                            userinfo=userinfo))
    daemon = Daemon(config, tmp_path)
    daemons.append(daemon)
    wait_for(lambda: daemon.state()["forwarder"]["last_error"], timeout=60)
    body = get(daemon.base + "/api/state")[2].decode()
    page = get(daemon.base + "/")[2].decode() + get(daemon.base + "/static/app.js")[2].decode()
    assert f"{shown}@127.0.0.1" in json.loads(body)["forwarder"]["url"]
    assert f"{shown}@127.0.0.1" in json.loads(body)["forwarder"]["last_error"]
    assert daemon.stop() == 0
    assert f"{shown}@127.0.0.1" in daemon.log()
    assert "hunter2" not in body + page + daemon.log()


# --- hostile HTTP clients --------------------------------------------------------------------------------------


def test_a_long_static_path_gets_404_and_no_traceback(tmp_path: Path, daemons: list[Daemon]) -> None:
    """`/static/` + 256 characters: no answer and a 27-line traceback, for each request."""
    temperature = write(tmp_path / "temperature", "21.5\n")
    daemon = Daemon(write(tmp_path / "config.yaml", f"probes:{file_probe('shed', temperature)}"), tmp_path)
    daemons.append(daemon)
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as client:
            client.sendall(f"GET /static/{'a' * 256} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            assert client.recv(4096).startswith(b"HTTP/1.1 404")
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log()
    assert "a" * 256 not in daemon.log()  # no line about the requests at all at the default level


IDLE_AND_SLOW_CLIENTS = 2000
# The default soft limit of a systemd service, here made the hard limit too: the daemon cannot raise it.
DAEMON_FD_LIMIT = 1024


def limit_fds() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (DAEMON_FD_LIMIT, DAEMON_FD_LIMIT))


@pytest.fixture
def many_fds() -> Iterator[None]:
    """This test process holds 2,000 sockets: raise its own soft limit (the hard one must allow it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = IDLE_AND_SLOW_CLIENTS + 500
    if hard != resource.RLIM_INFINITY and hard < wanted:
        reason = f"RLIMIT_NOFILE's hard limit {hard} is below {wanted}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.usefixtures("many_fds")
def test_2000_idle_and_slow_clients_neither_stop_metrics_nor_starve_ports_and_probes(
        tmp_path: Path, daemons: list[Daemon]) -> None:
    """The old server gave every connection a thread and a descriptor without a cap: near 1,000 sockets
    /metrics stopped and serial replugs and probes failed with "Too many open files"."""
    temperature = write(tmp_path / "temperature", "21.5\n")
    cable = FakeDevicePort(None)
    link = tmp_path / "cable-mppt"
    config = write(tmp_path / "config.yaml", f"""
devices:
  - name: mppt
    port: {link}
    stale_timeout: 5
probes:{file_probe('shed', temperature)}
  - name: cpu
    type: command
    quantity: temperature
    command: ["{PYTHON}", "-c", "print(42.5)"]
    interval: 1
""")
    daemon = Daemon(config, tmp_path, preexec=limit_fds)
    daemons.append(daemon)
    clients: list[socket.socket] = []
    try:
        for index in range(IDLE_AND_SLOW_CLIENTS):
            client = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
            clients.append(client)
            if index % 2:  # a slow client: a request that never ends
                client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        status, _, body = get(daemon.base + "/metrics")
        assert status == 200, daemon.log()[-2000:]
        assert b'pvmonit_probe_up{probe="shed"} 1.0' in body
        # Meanwhile the serial cable is plugged in, and the command probe keeps running: both need descriptors.
        link.symlink_to(os.ttyname(cable.slave))
        wait_for(lambda: sample(daemon.base, "vedirect_port_connected", device="mppt") == 1.0, timeout=60)
        cable.write(encode_block(MPPT))
        wait_for(lambda: sample(daemon.base, "vedirect_up", device="mppt") == 1.0, timeout=30)
        runs = sample(daemon.base, "pvmonit_probe_readings_total", probe="cpu") or 0
        wait_for(lambda: (sample(daemon.base, "pvmonit_probe_readings_total", probe="cpu") or 0) > runs + 2)
        assert sample(daemon.base, "pvmonit_probe_up", probe="cpu") == 1.0
        open_fds = len(os.listdir(f"/proc/{daemon.process.pid}/fd"))
        assert open_fds < DAEMON_FD_LIMIT
    finally:
        for client in clients:
            client.close()
        # The link first: Linux gives a freed pty number to the next pty opened, perhaps another test's, which
        # the daemon, retrying the link, would open and lock.
        link.unlink(missing_ok=True)
        cable.close()
    assert daemon.stop() == 0
    assert "Too many open files" not in daemon.log()
    assert "Traceback" not in daemon.log()


# --- a runaway probe ----------------------------------------------------------------------------------------


def test_a_probe_printing_300_mb_does_not_take_the_memory(tmp_path: Path, daemons: list[Daemon]) -> None:
    """The old reader kept all of a command's output: 959 MB RSS for a probe printing 300 MB."""
    flood = "import sys\nchunk = b'1' * 65536\nfor _ in range(300 * 16):\n    sys.stdout.buffer.write(chunk)\n"
    config = write(tmp_path / "config.yaml", f"""
probes:
  - name: flood
    type: command
    quantity: temperature
    command: ["{PYTHON}", "-c", {json.dumps(flood)}]
    interval: 1
    timeout: 60
""")
    daemon = Daemon(config, tmp_path)
    daemons.append(daemon)
    wait_for(lambda: sample(daemon.base, "pvmonit_probe_errors_total", probe="flood", kind="failed"), timeout=90)
    peak_kib = next(int(line.split()[1]) for line in Path(f"/proc/{daemon.process.pid}/status").read_text()
                    .splitlines() if line.startswith("VmHWM:"))
    probe = next(p for p in daemon.state()["probes"] if p["name"] == "flood")
    assert "more than 64 KiB" in probe["error"]
    assert daemon.stop() == 0
    assert peak_kib < 200 * 1024, f"peak RSS {peak_kib // 1024} MiB"
