"""`pvmonit-exporter simulate` end to end, as its user follows it: start it, read what it printed, and run the
commands it suggests in another process — `read`, `hex PORT get product_id --json`, `ble decode` — against the
simulated devices; then stop it as systemd (SIGTERM, exit 0) or a terminal (Ctrl-C, exit 130) would."""

import json
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.config import ROOT, run_cli

pytestmark = pytest.mark.slow


@contextmanager
def simulate() -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """`simulate` running, and what it printed up to "Press Ctrl-C to stop."."""
    process = subprocess.Popen([sys.executable, "-m", "pvmonit_exporter", "simulate"], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert process.stdout is not None
        printed: list[str] = []
        while not printed or printed[-1] != "Press Ctrl-C to stop.":
            line = process.stdout.readline()
            assert line, f"simulate ended early: {process.communicate(timeout=30)}"
            printed.append(line.rstrip("\n"))
        yield process, printed
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def suggested(printed: list[str], command: str) -> list[str]:
    """The arguments of the suggested `pvmonit-exporter COMMAND …` line."""
    line = next(line for line in printed if line.strip().startswith(f"pvmonit-exporter {command} "))
    return shlex.split(line)[1:]


def test_simulate_prints_ports_an_advert_and_a_key_that_read_hex_and_ble_decode_use() -> None:
    with simulate() as (process, printed):
        ports = dict(re.findall(r"^  (\w+) +(/dev/\S+)$", "\n".join(printed), flags=re.MULTILINE))
        assert set(ports) == {"mppt", "bmv", "inverter"}
        advert = re.search(r"^  advert +([0-9a-f]+)$", "\n".join(printed), flags=re.MULTILINE)
        key = re.search(r"^  key +([0-9a-f]{32})$", "\n".join(printed), flags=re.MULTILINE)
        assert advert is not None
        assert key is not None

        reader = subprocess.Popen([sys.executable, "-m", "pvmonit_exporter", "read", ports["mppt"], "--json"],
                                  cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert reader.stdout is not None
            block = json.loads(reader.stdout.readline())
        finally:
            reader.send_signal(signal.SIGINT)  # Ctrl-C: read closes the port and says how it went
            _, summary = reader.communicate(timeout=30)
        assert reader.returncode == 130
        assert block["PID"].startswith("0x")
        assert "PPV" in block
        assert summary.startswith("read: ")

        for name in ("mppt", "bmv"):
            hexed = run_cli("hex", ports[name], "get", "product_id", "--json")
            assert (hexed.returncode, hexed.stderr) == (0, ""), name
            answer = json.loads(hexed.stdout)
            assert answer["register"] == "0x0100"
            assert answer["value"] is not None  # answered (its decoding is another test's)
            assert "error" not in answer
        assert suggested(printed, "hex")[1] == ports["mppt"]

        decoded = run_cli(*suggested(printed, "ble"), "--json")
        assert (decoded.returncode, decoded.stderr) == (0, "")
        document = json.loads(decoded.stdout)
        assert document["record_type"] == "battery_monitor"
        assert document["product"].startswith("SmartShunt")
        assert document["values"]["battery_voltage_volts"] > 20  # the simulated 24 V bank
        assert suggested(printed, "ble")[3:5] == [key.group(1), advert.group(1)]

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_ctrl_c_stops_simulate_with_status_130() -> None:
    with simulate() as (process, _):
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        _, errors = process.communicate(timeout=30)
    assert "Traceback" not in errors
