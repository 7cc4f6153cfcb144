"""A PvMonit 0.2 user's configuration, migrated as the README's table says, run for real: `pvmonit-exporter run`
reads genuine recordings and PvMonit-style frames from pseudo-terminals, a clamp meter from another, a
thermometer command, and its forwarder (the real threads and disk queue) posts to the stand-in emoncms over HTTP.
What emoncms stored is compared, input by input, with what PvMonit 0.2 would have posted for the same frames.

The expectation is computed here from the rules of PvMonit 0.2 as /work/shared/reference/pvmonit-2016.md states
them (copied below, with their source), never from the exporter's own code:

* device kind from the PID (`0x20?` BMV, `0xA0??` or `0x300` MPPT, `0xA2??` Phoenix) or a `BMV` label;
* node: a BMV's `BMV` label value; else `$VEDIRECT_DEVICE_CORRESPONDANCE[SER#]`; else the serial itself;
* inputs: each label of the kind's list (config-default.php) found in the device's output, raw text, once;
* probes on node `1`: `temp` = the thermometer's output + `$SONDE_TEMPERATURE_CORRECTION`, `conso` = the clamp's
  amperes × 230 in watts, left out when above `$CONSO_PLAFOND`;
* emoncms stores each value with PHP `(float)`.

Two differences are the contract, and asserted as such: `ON`/`OFF` arrive as 1/0 (PvMonit's text was stored as
0 whatever the alarm said), and an inverter gets `$VEDIRECT_PHOENIX_DATA` (PvMonit's code had no Phoenix case
and posted it an empty `json={}`, so no existing feed depends on it).
"""

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pvmonit_exporter.vedirect.framing import encode_block
from tests.forwarder.fake_emoncms import WRITE_KEY, FakeEmoncms
from tests.helpers import FakeDevicePort, wait_for
from tests.ops.processes import stop
from tests.vedirect_samples import INVERTER

pytestmark = pytest.mark.slow

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures"

# --- PvMonit 0.2's config-default.php (kepon85/PvMonit 67c6549), as the reference quotes it ----------------------
VEDIRECT_MPTT_DATA = ["CS", "PPV", "V", "ERR", "I", "VPV", "H19", "H20", "H21", "H22", "H23"]
# The list really held '' and a lowercase 'h14' (a typo): H14 was never sent.
VEDIRECT_BMV_DATA = ["V", "VS", "VM", "DM", "I", "T", "P", "CE", "SOC", "TTG", "Alarm", "AR", "H1", "H2", "H3",
                     "H4", "H5", "H6", "H7", "H8", "H9", "H10", "H11", "H12", "H13", "", "h14", "H15", "H16",
                     "H17", "H18"]
VEDIRECT_PHOENIX_DATA = ["P", "CS", "MODE", "AC_OUT_V", "AC_OUT_I", "WARN"]
# This user's own settings.
VEDIRECT_DEVICE_CORRESPONDANCE = {"HQ1411MYIKN": "MpttBleu", "HQ1234ABCDE": "Onduleur"}
SONDE_TEMPERATURE_CORRECTION = -1.5
CONSO_PLAFOND = 1500
MAINS_VOLTAGE = 230  # hard-coded in PvMonit's getForEmoncms.php

THERMOMETER_OUTPUT = "23.12"  # what `temperv14 -c` prints
CLAMP_LINE = b"03.2A\r\n"  # what the Aviosys clamp prints: 736 W
IMPOSSIBLE_CLAMP_LINE = b"09.0A\r\n"  # 2070 W: above the ceiling

# A BMV-712 Smart as it prints itself: PID 0xA381, `BMV 712 Smart`, every field of PvMonit's list, alarm on.
BMV712_MAIN = {"PID": "0xA381", "V": "26210", "VS": "12710", "VM": "13090", "DM": "-12", "I": "-3180",
               "P": "-83", "CE": "-21450", "SOC": "912", "TTG": "2875", "Alarm": "ON", "Relay": "OFF", "AR": "1",
               "BMV": "712 Smart", "FW": "0412", "MON": "0", "T": "18"}
BMV712_HISTORY = {f"H{n}": str(v) for n, v in zip(range(1, 19), (
    -152300, -21450, -80100, 212, 4, -9124500, 23410, 29310, 3600, 41, 3, 0, 1, 2, 11920, 14020, 310020, 339070),
    strict=True)}


def pvmonit_kind(output: dict[str, str]) -> str:
    pid = output.get("PID", "")
    if "BMV" in output or re.fullmatch(r"0x20.", pid):
        return "bmv"
    if re.fullmatch(r"0xA0..", pid) or pid == "0x300":
        return "mppt"
    if re.fullmatch(r"0xA2..", pid):
        return "phoenix"
    return "unknown"


def pvmonit_node(output: dict[str, str]) -> str:
    if "BMV" in output:
        return output["BMV"]
    serial = output["SER#"]
    return VEDIRECT_DEVICE_CORRESPONDANCE.get(serial, serial)


def pvmonit_json(output: dict[str, str]) -> dict[str, str]:
    """The `json={LABEL:value,…}` PvMonit 0.2 posted for one device's output (raw text, each label once)."""
    wanted = {"mppt": VEDIRECT_MPTT_DATA, "bmv": VEDIRECT_BMV_DATA}.get(pvmonit_kind(output), [])
    return {label: output[label] for label in wanted if label in output}


def php_float(text: str) -> float:
    """emoncms's `(float)`: the leading number, else 0 (`"ON"` → 0)."""
    match = re.match(r"\s*[+-]?\d+(\.\d*)?", text)
    return float(match.group()) if match else 0.0


def as_stored(label: str, raw: str) -> float:
    """What emoncms must store for PvMonit's value now: its number; ON/OFF as 1/0 (the contract's one change)."""
    if raw in ("ON", "OFF"):
        return 1.0 if raw == "ON" else 0.0
    return php_float(raw)


def pvmonit_probe_json(amperes_line: bytes) -> dict[str, float]:
    temp = php_float(THERMOMETER_OUTPUT) + SONDE_TEMPERATURE_CORRECTION
    watts = php_float(amperes_line.decode().strip().rstrip("A")) * MAINS_VOLTAGE
    return {"temp": temp} if watts > CONSO_PLAFOND else {"temp": temp, "conso": watts}


# --- frames -----------------------------------------------------------------------------------------------------


def recorded_second(file: str) -> bytes:
    """The bytes of a recording from its second `PID` line to its third (the first block may be cut): one
    second of the device, a BMV's main and history blocks. It must hold no HEX message."""
    data = (CAPTURES / file).read_bytes()
    starts = [m.start() for m in re.finditer(rb"\r\nPID\t", data)]
    piece = data[starts[1]:starts[2]]
    assert b"\n:" not in piece
    return piece


def device_output(frames: bytes) -> dict[str, str]:
    """What PvMonit's vedirect.py printed for these frames, as LABEL → VALUE (first occurrence)."""
    output: dict[str, str] = {}
    for line in frames.split(b"\r\n"):
        label, sep, value = line.decode("latin-1").partition("\t")
        if sep and label != "Checksum":
            output.setdefault(label, value)
    return output


class Feeder:
    """Writes each device's frames once a second and the clamp's line ten times a second, as the hardware does."""

    def __init__(self, frames: dict[FakeDevicePort, bytes], clamp: FakeDevicePort) -> None:
        self.frames, self.clamp, self.clamp_line = frames, clamp, CLAMP_LINE
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(0.1):
            self.clamp.write(self.clamp_line)
            if tick % 10 == 0:
                for port, data in self.frames.items():
                    port.write(data)
            tick += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def ports(tmp_path: Path) -> Iterator[dict[str, FakeDevicePort]]:
    made = {name: FakeDevicePort(tmp_path / name) for name in ("mppt", "bmv700", "bmv712", "phoenix", "clamp")}
    yield made
    for port in made.values():
        port.close()


def slots(fake: FakeEmoncms) -> dict[int, dict[str, dict[str, float]]]:
    """What emoncms stored, by time slot, node and input."""
    stored: dict[int, dict[str, dict[str, float]]] = {}
    for point in fake.stored():
        stored.setdefault(point.time, {}).setdefault(point.node, {})[point.input] = point.value
    return stored


def first_slot(fake: FakeEmoncms, complete: Callable[[dict[str, dict[str, float]]], bool],
               after: int = 0) -> dict[str, dict[str, float]] | None:
    for at, nodes in sorted(slots(fake).items()):
        if at > after and complete(nodes):
            return nodes
    return None


def test_a_pvmonit_configuration_sends_what_pvmonit_0_2_sent(tmp_path: Path,
                                                             ports: dict[str, FakeDevicePort]) -> None:
    frames = {
        "mppt": recorded_second("bluesolar_1.23.dump"),
        "bmv700": recorded_second("bvm702.dump"),  # a main and a history block
        "bmv712": encode_block(BMV712_MAIN) + encode_block(BMV712_HISTORY),
        "phoenix": encode_block(INVERTER),
    }
    outputs = {name: device_output(data) for name, data in frames.items()}
    # What PvMonit 0.2 posted, node by node (the inverter: an empty json, which stores nothing).
    pvmonit = {pvmonit_node(out): pvmonit_json(out) for out in outputs.values()}
    assert pvmonit["Onduleur"] == {}
    assert "H14" in outputs["bmv712"]
    assert "H14" not in pvmonit["712 Smart"]
    expected = {node: {label: as_stored(label, raw) for label, raw in posted.items()}
                for node, posted in pvmonit.items()}
    expected["Onduleur"] = {label: php_float(outputs["phoenix"][label])
                            for label in VEDIRECT_PHOENIX_DATA if label in outputs["phoenix"]}
    expected["1"] = pvmonit_probe_json(CLAMP_LINE)
    assert expected["712 Smart"]["Alarm"] == 1.0
    assert expected["700"]["Alarm"] == 0.0
    assert len(expected["712 Smart"]) == 29
    assert len(expected["MpttBleu"]) == 11

    thermometer = tmp_path / "temperv14"
    thermometer.write_text(f"#!{sys.executable}\nprint({THERMOMETER_OUTPUT!r})\n")
    thermometer.chmod(0o755)
    with FakeEmoncms() as fake:
        # The README's migration table, line by line, for this user's config.php.
        config = tmp_path / "config.yaml"
        config.write_text(f"""
devices:
  - name: MpttBleu                  # $VEDIRECT_DEVICE_CORRESPONDANCE: HQ1411MYIKN => MpttBleu
    port: {ports["mppt"].path}
  - name: bmv700
    port: {ports["bmv700"].path}
    emoncms_node: 700               # PvMonit named a BMV's node after its BMV field
  - name: bmv712
    port: {ports["bmv712"].path}
    emoncms_node: 712 Smart
  - name: Onduleur
    port: {ports["phoenix"].path}
probes:
  - name: temperature
    type: command
    command: [{thermometer}, -c]    # $TEMPERV14_BIN
    quantity: temperature
    offset: {SONDE_TEMPERATURE_CORRECTION}   # $SONDE_TEMPERATURE_CORRECTION
    interval: 1
    emoncms_input: temp
  - name: clamp
    type: serial                    # $AMPEREMETRE_BIN
    port: {ports["clamp"].path}
    baud: 19200
    quantity: current
    power_voltage: 230
    power_max: {CONSO_PLAFOND}      # $CONSO_PLAFOND
    interval: 1
    emoncms_input: conso
emoncms:
  url: {fake.url}
  apikey: {WRITE_KEY}
  queue_dir: {tmp_path / "queue"}
  interval: 1
""", encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        daemon = subprocess.Popen(
            [sys.executable, "-m", "pvmonit_exporter", "run", "--config.file", str(config),
             "--web.listen-address", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        feeder = Feeder({ports[name]: data for name, data in frames.items()}, ports["clamp"])
        try:
            def complete(nodes: dict[str, dict[str, float]]) -> bool:
                return set(nodes) == set(expected) and set(nodes["1"]) == {"temp", "conso"} and all(
                    set(nodes[n]) == set(expected[n]) for n in expected if n != "1")

            stored = wait_for(lambda: first_slot(fake, complete) or daemon.poll() is not None, timeout=60)
            assert daemon.poll() is None, daemon.stderr.read() if daemon.stderr else ""
            assert isinstance(stored, dict)
            for node, inputs in expected.items():
                assert stored[node] == pytest.approx(inputs), node

            # An impossible reading (2070 W at 230 V) is dropped, as PvMonit dropped it: node 1 gets temp only.
            last = max(slots(fake))
            feeder.clamp_line = IMPOSSIBLE_CLAMP_LINE
            without_conso = wait_for(lambda: first_slot(
                fake, lambda nodes: "1" in nodes and "conso" not in nodes["1"], after=last), timeout=30)
            assert without_conso["1"] == pytest.approx(pvmonit_probe_json(IMPOSSIBLE_CLAMP_LINE))
        finally:
            feeder.stop()
            stop(daemon)
            if daemon.stderr:
                daemon.stderr.close()
    # Every request went through the bulk API with the key in the header only.
    assert all(r.url.startswith("/emoncms/input/bulk") and WRITE_KEY not in r.url for r in fake.recorded())
