"""The daemon as a user runs it: `pvmonit-exporter run` in a subprocess, devices on real pseudo-terminals, HTTP."""

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pvmonit_exporter.vedirect.framing import encode_block
from tests.helpers import FakeDevicePort, require_tool, start_daemon, wait_for
from tests.vedirect_samples import BMV_HISTORY, BMV_MAIN, MPPT

pytestmark = pytest.mark.slow  # every test here runs the daemon


def get(url: str) -> tuple[int, str, bytes]:
    """(status, content type, body), whatever the status; no answer at all fails the test."""
    try:
        # 30 s: a loaded machine, or a server working through 2,000 pending connections, answers late, not never
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:  # 404, 500…: an answer, with its status
        with error:
            return error.code, error.headers.get("Content-Type", ""), error.read()


def samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, _, body = get(base + "/metrics")
    if status != 200:
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def is_up(base: str, device: str) -> bool:
    return sample(base, "vedirect_up", device=device) == 1.0


def sample(base: str, name: str, **labels: str) -> float | None:
    return samples(base).get((name, tuple(sorted(labels.items()))))


class Daemon:
    """`pvmonit-exporter run` on a port of its choosing (parallel-safe), its stdout and stderr in `stderr_path`."""

    def __init__(self, config: Path, tmp_path: Path) -> None:
        self.stderr_path = tmp_path / "stderr.log"
        self.process, self.base = start_daemon(["run", "--config.file", str(config)], self.stderr_path)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=15)


@pytest.fixture
def ports(tmp_path: Path) -> Iterator[dict[str, FakeDevicePort]]:
    fakes = {name: FakeDevicePort(tmp_path / f"cable-{name}") for name in ("mppt", "bmv")}
    yield fakes
    for fake in fakes.values():
        fake.close()


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def daemon(tmp_path: Path, ports: dict[str, FakeDevicePort]) -> Iterator[Daemon]:
    config = write_config(tmp_path, f"""
devices:
  - name: mppt
    port: {ports["mppt"].path}
    stale_timeout: 1.5
  - name: bmv
    port: {ports["bmv"].path}
  - name: never
    port: {tmp_path / "not-plugged"}
""")
    running = Daemon(config, tmp_path)
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()


def mppt_up(daemon: Daemon, port: FakeDevicePort) -> None:
    """Wait for the daemon to open the MPPT's port, send it one block, wait until the device is up."""
    wait_for(lambda: sample(daemon.base, "vedirect_port_connected", device="mppt") == 1.0)
    port.write(encode_block(MPPT))
    wait_for(lambda: sample(daemon.base, "vedirect_up", device="mppt") == 1.0)


def test_frames_on_ptys_appear_on_metrics(daemon: Daemon, ports: dict[str, FakeDevicePort]) -> None:
    wait_for(lambda: sample(daemon.base, "vedirect_port_connected", device="mppt") == 1.0)
    ports["mppt"].write(encode_block(MPPT))
    ports["bmv"].write(encode_block(BMV_MAIN) + encode_block(BMV_HISTORY))
    wait_for(lambda: sample(daemon.base, "vedirect_battery_voltage_volts", device="mppt") == 26.18)
    wait_for(lambda: sample(daemon.base, "vedirect_charge_cycles", device="bmv") == 3.0)
    values = samples(daemon.base)
    assert values[("vedirect_up", (("device", "mppt"),))] == 1.0
    assert values[("vedirect_up", (("device", "never"),))] == 0.0
    assert values[("vedirect_panel_power_watts", (("device", "mppt"),))] == 112.0
    assert values[("vedirect_charge_state", (("device", "mppt"), ("state", "Bulk")))] == 1.0
    assert values[("vedirect_state_of_charge_ratio", (("device", "bmv"),))] == pytest.approx(0.839)
    assert values[("vedirect_blocks_total", (("device", "bmv"),))] == 2.0
    assert not any(name.startswith("vedirect_battery_voltage") and dict(labels).get("device") == "never"
                   for name, labels in values)
    assert daemon.stop() == 0


def test_metrics_name_filter_on_the_real_daemon(daemon: Daemon, ports: dict[str, FakeDevicePort]) -> None:
    """`/metrics?name[]=…` (Prometheus's own filter) returns exactly the families asked for, from the daemon's
    own registry: ours and the library's process metrics alike."""
    mppt_up(daemon, ports["mppt"])
    status, _, body = get(daemon.base + "/metrics?name[]=vedirect_up")
    assert status == 200
    families = list(text_string_to_metric_families(body.decode()))
    assert [family.name for family in families] == ["vedirect_up"]
    assert {(s.labels["device"], s.value) for s in families[0].samples} == {("mppt", 1.0), ("bmv", 0.0),
                                                                            ("never", 0.0)}
    _, _, body = get(daemon.base + "/metrics?name[]=vedirect_blocks_total&name[]=process_open_fds")
    names = {s.name for family in text_string_to_metric_families(body.decode()) for s in family.samples}
    assert names == {"vedirect_blocks_total", "process_open_fds"}
    assert daemon.stop() == 0


def test_unplug_then_replug(daemon: Daemon, ports: dict[str, FakeDevicePort]) -> None:
    mppt = ports["mppt"]
    mppt_up(daemon, mppt)
    mppt.unplug()
    wait_for(lambda: sample(daemon.base, "vedirect_up", device="mppt") == 0.0)
    assert sample(daemon.base, "vedirect_battery_voltage_volts", device="mppt") is None
    assert sample(daemon.base, "vedirect_port_connected", device="mppt") == 0.0
    mppt.replug()
    wait_for(lambda: sample(daemon.base, "vedirect_port_connected", device="mppt") == 1.0, timeout=20)
    mppt.write(encode_block(dict(MPPT, V="25500")))
    wait_for(lambda: sample(daemon.base, "vedirect_battery_voltage_volts", device="mppt") == 25.5)
    assert sample(daemon.base, "vedirect_up", device="mppt") == 1.0
    assert daemon.stop() == 0


def test_corrupted_frames_never_change_a_value(daemon: Daemon, ports: dict[str, FakeDevicePort]) -> None:
    mppt = ports["mppt"]
    mppt_up(daemon, mppt)
    for position in (5, 40, 90, 150):
        frame = bytearray(encode_block(dict(MPPT, V="99999", PPV="999")))
        frame[position] ^= 0x20
        mppt.write(bytes(frame))
        mppt.write(encode_block(MPPT))  # keeps the device up and proves the bad frame was consumed
    wait_for(lambda: sample(daemon.base, "vedirect_checksum_errors_total", device="mppt") == 4.0)
    assert sample(daemon.base, "vedirect_battery_voltage_volts", device="mppt") == 26.18
    assert sample(daemon.base, "vedirect_panel_power_watts", device="mppt") == 112.0
    assert daemon.stop() == 0


def test_api_state_and_other_routes(daemon: Daemon, ports: dict[str, FakeDevicePort]) -> None:
    mppt_up(daemon, ports["mppt"])
    status, kind, body = get(daemon.base + "/api/state")
    assert status == 200
    assert kind.startswith("application/json")
    document = json.loads(body)
    mppt = next(d for d in document["devices"] if d["name"] == "mppt")
    assert mppt["up"] is True
    assert mppt["product"] == "BlueSolar MPPT 100/30 rev2"
    assert mppt["fields"]["V"] == {"raw": "26180", "value": 26.18, "unit": "V", "text": None, "flags": [],
                                   "description": "Battery voltage", "known": True}
    assert mppt["fields"]["CS"]["text"] == "Bulk"
    never = next(d for d in document["devices"] if d["name"] == "never")
    assert never["up"] is False
    assert never["fields"] == {}
    assert "no such port" in never["error"]
    assert get(daemon.base + "/healthz")[:3:2] == (200, b"ok\n")
    assert get(daemon.base + "/")[0] == 200
    assert get(daemon.base + "/nothing-here")[0] == 404
    assert get(daemon.base + "/static/../../config.py")[0] == 404
    assert daemon.stop() == 0


def test_live_metrics_pass_promtool(daemon: Daemon, ports: dict[str, FakeDevicePort]) -> None:
    promtool = require_tool("promtool")
    wait_for(lambda: sample(daemon.base, "vedirect_port_connected", device="mppt") == 1.0)
    ports["mppt"].write(encode_block(MPPT))
    ports["bmv"].write(encode_block(BMV_MAIN) + encode_block(BMV_HISTORY))
    wait_for(lambda: sample(daemon.base, "vedirect_charge_cycles", device="bmv") == 3.0)
    _, _, body = get(daemon.base + "/metrics")
    result = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, check=False)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert daemon.stop() == 0


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, f"devices:\n  - name: a\n    port: {tmp_path / 'x'}\n")
        result = subprocess.run(
            [sys.executable, "-m", "pvmonit_exporter", "--config.file", str(config),
             "--web.listen-address", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=30, check=False,
        )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "cannot listen on 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_sigint_stops_cleanly(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"devices:\n  - name: a\n    port: {tmp_path / 'x'}\n")
    running = Daemon(config, tmp_path)
    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(timeout=15) == 0
    log = running.stderr_path.read_text()
    assert "stopping" in log
    assert "Traceback" not in log


def test_demo_serves_simulated_devices(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    demo, base = start_daemon(["demo"], log, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        for device in ("bmv", "mppt", "inverter"):
            wait_for(partial(is_up, base, device), timeout=30)
        wait_for(lambda: sample(base, "pvmonit_probe_up", probe="shed_temperature") == 1.0, timeout=30)
        first = sample(base, "vedirect_battery_voltage_volts", device="bmv")
        assert first is not None
        assert 20.0 < first < 32.0  # a 24 V bank
        wait_for(lambda: sample(base, "vedirect_battery_voltage_volts", device="bmv") != first, timeout=30)
    finally:
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=20)
    output = log.read_text(encoding="utf-8")
    assert demo.returncode == 0, output
    assert f"Metrics:      {base}/metrics" in output  # the banner names the port the demo bound
    assert "Traceback" not in output



def test_flags_before_the_command_count_too(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"devices:\n  - name: a\n    port: {tmp_path / 'x'}\n")
    process, base = start_daemon(["--web.listen-address", "127.0.0.1:0", "--config.file", str(config), "run"],
                                 tmp_path / "stderr.log")
    try:
        assert get(f"{base}/healthz")[0] == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
