"""A daemon loads only what its configuration needs.

On a Raspberry Pi every library imported is resident memory: requests (~6 MB with urllib3 and its
encodings), asyncio (~2 MB), diskcache with SQLite (~2 MB). They belong to the parts a user may not configure
(emoncms, Bluetooth, MQTT, load control), so a daemon without those sections must never import them, not at
start and not while serving a scrape or the live page. Read from the real daemon's `-X importtime` report.
"""

import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import FakeDevicePort
from tests.ops.processes import environment, stop

pytestmark = pytest.mark.slow

# The libraries of optional parts; each is imported only when its section is configured.
OPTIONAL = ("requests", "urllib3", "asyncio", "diskcache", "sqlite3", "bleak", "victron_ble", "Crypto", "paho",
            "gpiozero")
# Modules, ours and the standard library's, that only other commands or optional parts need: each was once
# imported by every daemon (together ~1 MB resident on a 4-device daemon of ~30 MB).
NOT_FOR_SERIAL = ("difflib", "subprocess", "importlib.resources", "pvmonit_exporter.commands.read",
                  "pvmonit_exporter.commands.hex", "pvmonit_exporter.commands.ble",
                  "pvmonit_exporter.commands.simulate", "pvmonit_exporter.sources.probes",
                  "pvmonit_exporter.collector.probes",
                  "pvmonit_exporter.forwarder.policy", "pvmonit_exporter.forwarder.stats")
LISTENING = re.compile(rb"listening on (http://\S+) ")
IMPORTED = re.compile(rb"^import time:\s+\d+ \|\s+\d+ \| +([\w.]+)$", re.MULTILINE)


@pytest.mark.parametrize(("section", "allowed"), [
    ("", set()),
    # MQTT on its own needs paho, not the emoncms forwarder's HTTP client and disk queue (its collector used to
    # import them: +9 MB).
    ("mqtt:\n  url: mqtt://127.0.0.1:1\n", {"paho"}),
], ids=["serial only", "with mqtt"])
def test_a_daemon_imports_only_the_optional_libraries_of_what_it_runs(tmp_path: Path, section: str,
                                                                      allowed: set[str]) -> None:
    ports = [FakeDevicePort() for _ in range(4)]
    config = tmp_path / "config.yaml"
    config.write_text("devices:\n" + "".join(f"  - name: dev{i}\n    port: {p.path}\n" for i, p in enumerate(ports))
                      + section)
    log = tmp_path / "daemon.log"
    with log.open("wb") as stderr:
        daemon = subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", "pvmonit_exporter", "run", "--config.file", str(config),
             "--web.listen-address", "127.0.0.1:0"],
            stderr=stderr, env=environment())
    try:
        base = _listening(log, daemon)
        for path in ("/metrics", "/api/state", "/", "/healthz"):
            with urllib.request.urlopen(base + path, timeout=30) as answer:
                assert answer.status == 200
    finally:
        assert stop(daemon) == 0
        for port in ports:
            port.close()
    modules = {name.decode() for name in IMPORTED.findall(log.read_bytes())}
    imported = {name.split(".")[0] for name in modules}
    assert {"serial", "prometheus_client"} <= imported  # the report was read
    assert sorted(imported & (set(OPTIONAL) - allowed)) == []
    assert allowed <= imported
    assert sorted(modules & set(NOT_FOR_SERIAL)) == []


def _listening(log: Path, daemon: subprocess.Popen[bytes]) -> str:
    """The daemon's address, from its start-up line (it bound port 0)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (found := LISTENING.search(log.read_bytes())) is not None:
            return found.group(1).decode()
        assert daemon.poll() is None, log.read_text(errors="replace")
        time.sleep(0.05)
    raise AssertionError("the daemon never said where it listens:\n" + log.read_text(errors="replace"))
