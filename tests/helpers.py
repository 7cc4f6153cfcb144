"""Small helpers shared by tests: waiting for a condition, real pseudo-terminals, required tools, programs that
listen on a port the kernel picked.

Parallel safety (the suite runs on several pytest-xdist workers at once): a program under test listens on port 0
and the test learns the port it got — from the exporter's own log line (`start_daemon`), or from /proc for
programs that do not say (`listening_port`); a program that must be told its port gets one `port_holder` keeps.
Never pick a free port, release it and hand it over: another test may take it before the program binds it.
Files go under tmp_path, never a fixed path in /tmp; a reader is given a symlink there (`FakeDevicePort(link)`),
not a /dev/pts/N that the kernel hands to the next pseudo-terminal opened once it is closed."""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tty
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll `probe` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s (last value: {value!r})")
        time.sleep(interval)


class FakeDevicePort:
    """A real pseudo-terminal standing for a VE.Direct cable: tests write to `master`, the exporter opens `path`.

    With `link`, the exporter is given a stable symlink (like /dev/serial/by-id/…) that `unplug()` removes and
    `replug()` points at a brand-new terminal — what a USB cable does.
    """

    def __init__(self, link: Path | None = None) -> None:
        # Always a link of its own, never /dev/pts/N itself: the kernel gives a freed N to the next terminal
        # opened, so a daemon of another test (tests run in parallel) still retrying this port after it was
        # unplugged would open, lock and reconfigure that other test's terminal.
        self.link = link if link is not None else Path(tempfile.mkdtemp(prefix="pvmonit-tty-")) / "tty"
        self.master = -1
        self.slave = -1
        self.replug()

    @property
    def path(self) -> str:
        return str(self.link)

    def replug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no line discipline: CR must stay CR before the reader sets raw mode
        if self.link is not None:
            self.link.unlink(missing_ok=True)
            self.link.symlink_to(os.ttyname(self.slave))

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def unplug(self) -> None:
        if self.link is not None:
            self.link.unlink(missing_ok=True)
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1

    close = unplug


def require_tool(name: str) -> str:
    """The path of an external tool; absent → the test fails in CI (CI=true) and is skipped elsewhere."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (Debian: see .ci/run)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


# A port that refuses every connection: nothing listens on 127.0.0.1:1 (no test does, and port 0 is never given a
# port below 1024). Unlike a port picked free and released, no other test's program can take it meanwhile.
REFUSED_PORT = 1


def port_holder(dual_stack: bool = False) -> socket.socket:
    """A socket bound to a free 127.0.0.1 port (with `dual_stack`, free on IPv4 and IPv6) and never listening,
    for a program that must be told its port, or a stand-in that goes down and comes back on the same port:
    while held, the kernel's port 0 never hands the port to another test, connections to it are refused as by
    a closed port, and the program binds beside it (both SO_REUSEADDR: allowed while no other socket listens
    there). Close it when the program is done."""
    holder = socket.socket(socket.AF_INET6 if dual_stack else socket.AF_INET)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if dual_stack:
        holder.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    holder.bind(("::" if dual_stack else "127.0.0.1", 0))
    return holder


# app.serve's line once the daemon listens: `listening on http://127.0.0.1:PORT (metrics at …)`.
LISTENING = re.compile(r"listening on (http://\S+) \(metrics at ")


def start_daemon(args: Sequence[str], log: Path, timeout: float = 30.0,
                 **popen: Any) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m pvmonit_exporter ARGS --web.listen-address 127.0.0.1:0` (ARGS may give that flag themselves,
    with port 0), its stdout and stderr in `log`, once it listens: (the process, its base URL
    `http://127.0.0.1:PORT`, the port it bound and logged)."""
    listen = [] if "--web.listen-address" in args else ["--web.listen-address", "127.0.0.1:0"]
    # A log shared with an earlier run (a restart) already holds that run's line: only what this one adds counts.
    start = log.stat().st_size if log.exists() else 0
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "pvmonit_exporter", *args, *listen],
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **popen)

    def url() -> str | None:
        with log.open("rb") as written:
            written.seek(start)
            text = written.read().decode("utf-8", errors="replace")
        if process.poll() is not None:
            pytest.fail(f"the exporter exited with {process.returncode} before listening:\n{text}")
        found = LISTENING.search(text)
        return found[1] if found else None

    try:
        return process, wait_for(url, timeout=timeout)
    except BaseException:
        process.kill()
        process.wait()
        raise


def listening_port(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """The one TCP port `process` listens on, read from /proc once it listens: for programs started on port 0
    that do not say which port they got (VictoriaMetrics)."""

    def port() -> int | None:
        if process.poll() is not None:
            pytest.fail(f"{process.args!r} exited with {process.returncode} before listening")
        ports = listening_ports(process.pid)
        assert len(ports) <= 1, f"{process.args!r} listens on several ports: {ports}"
        return ports[0] if ports else None

    return wait_for(port, timeout=timeout)


def listening_ports(pid: int) -> list[int]:
    """The TCP ports process `pid` listens on: its sockets (/proc/PID/fd) in the LISTEN state (0A) of its
    network namespace's tables (/proc/PID/net/tcp, tcp6); none for a process exiting or gone."""
    sockets = set()
    ports = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:  # closed meanwhile
                continue
            if target.startswith("socket:["):
                sockets.add(target.removeprefix("socket:[").removesuffix("]"))
        for table in ("tcp", "tcp6"):
            for line in Path(f"/proc/{pid}/net/{table}").read_text(encoding="ascii").splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in sockets:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    except FileNotFoundError:  # the process is exiting (its /proc/PID/net is gone first) or gone
        return []
    return sorted(ports)
