"""`pvmonit-exporter hex` against the simulator's devices on real pseudo-terminals (real pyserial, real
subprocesses), and against devices that answer nothing, garbage or flags."""

import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import serial

from pvmonit_exporter.demo.day import SystemModel
from pvmonit_exporter.demo.devices import BlueSolarMppt, Bmv702, PhoenixInverter, SimulatedDevice
from pvmonit_exporter.demo.ports import Simulator
from pvmonit_exporter.sources.hexlink import HexLink
from pvmonit_exporter.sources.serialport import open_port
from pvmonit_exporter.vedirect.hex_session import PING
from tests.config import assert_one_line_error, run_cli

pytestmark = pytest.mark.slow

HISTORY_KEYS = ["days_ago", "yield_kwh", "consumed_kwh", "battery_voltage_max_v", "battery_voltage_min_v",
                "max_power_w", "max_battery_current_a", "max_pv_voltage_v", "bulk_min", "absorption_min",
                "float_min", "errors", "day_sequence"]


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    with Simulator(period=0.2, text_pause=0.5) as sim:
        yield sim


def ok(*args: str) -> str:
    result = run_cli("hex", *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_ping_prints_the_firmware_version(simulator: Simulator) -> None:
    assert ok(simulator.ports["mppt"], "ping") == "1.59\n"
    assert ok(simulator.ports["bmv"], "ping") == "3.08\n"


def test_get_by_hex_id_and_by_name(simulator: Simulator) -> None:
    out = ok(simulator.ports["mppt"], "get", "0xEDF0", "battery_absorption_voltage", "edf6", "0xEDEC")
    assert out.splitlines() == [
        "0xEDF0 battery_max_current 30.0 A",
        "0xEDF7 battery_absorption_voltage 28.8 V",
        "0xEDF6 battery_float_voltage 27.6 V",
        "0xEDEC battery_temperature n/a",  # the charger has no battery sensor: all bits set
    ]


def test_get_json_with_a_refused_register(simulator: Simulator) -> None:
    lines = ok(simulator.ports["mppt"], "get", "0xEDF0", "0x1234", "charger_temperature", "--json").splitlines()
    documents = [json.loads(line) for line in lines]
    assert documents[0] == {"register": "0xEDF0", "name": "battery_max_current", "value": 30.0, "unit": "A"}
    assert documents[1] == {"register": "0x1234", "name": "register_0x1234", "value": None, "unit": "",
                            "error": "unknown id"}
    assert documents[2]["unit"] == "°C"
    assert 0.0 < documents[2]["value"] < 80.0


def test_bmv_answers_its_capacity(simulator: Simulator) -> None:
    line = ok(simulator.ports["bmv"], "get", "battery_capacity", "--json")
    assert json.loads(line) == {"register": "0x1000", "name": "battery_capacity", "value": 200, "unit": "Ah"}


def test_history_json_matches_the_text_blocks(simulator: Simulator) -> None:
    days = [json.loads(line) for line in ok(simulator.ports["mppt"], "history", "--json").splitlines()]
    assert [day["days_ago"] for day in days] == list(range(31))  # newest first, every day the charger holds
    assert all(list(day) == HISTORY_KEYS for day in days)
    assert [day["day_sequence"] for day in days] == [days[0]["day_sequence"] - n for n in range(31)]
    charger = simulator.model.chargers["mppt"]
    assert days[0]["day_sequence"] == charger.day_sequence  # the text's HSDS
    assert days[1]["yield_kwh"] == pytest.approx(charger.yield_yesterday, abs=0.01)  # the text's H22
    assert days[1]["max_power_w"] == round(charger.max_power_yesterday)  # H23
    assert all(len(day["errors"]) == 4 for day in days)


def test_history_table(simulator: Simulator) -> None:
    lines = ok(simulator.ports["mppt"], "history").splitlines()
    assert lines[0].split()[:3] == ["day", "yield", "kWh"]
    assert len(lines) == 32
    assert [int(line.split()[0]) for line in lines[1:]] == list(range(31))


def test_bmv_has_no_history(simulator: Simulator) -> None:
    result = run_cli("hex", simulator.ports["bmv"], "history")
    assert_one_line_error(result, f"{simulator.ports['bmv']}: the device keeps no history (unknown id)")


def test_device_without_hex_is_a_timeout(simulator: Simulator) -> None:
    """The simulated Phoenix ignores HEX: one line, exit 2."""
    result = run_cli("hex", simulator.ports["inverter"], "ping")
    message = assert_one_line_error(result, f"{simulator.ports['inverter']}: no answer to HEX requests")
    assert "timeout" in message


def test_text_blocks_go_on_around_the_replies(simulator: Simulator) -> None:
    """A history read in the middle of the text stream: no block lost or mis-framed, the text resumes."""
    with open_port(simulator.ports["mppt"]) as port:
        link = HexLink(port)
        _, total, days = link.history()
        assert total is not None
        assert len(days) == 31
        deadline = time.monotonic() + 10
        while len(link.blocks) < 3 and time.monotonic() < deadline:
            link.blocks += link.decoder.feed(port.read(4096))
    stats = link.decoder.stats
    assert (stats.checksum_errors, stats.malformed_blocks, stats.hex_invalid) == (0, 0, 0)
    assert len(link.blocks) >= 3
    assert all(block["PID"] == "0xA04A" for block in link.blocks)


# ---------------------------------------------------------------------------------------------------------
# Errors and misbehaving devices


def test_no_such_port(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("hex", str(tmp_path / "ttyUSB9"), "ping"), f"{tmp_path / 'ttyUSB9'}: no such port")


def test_not_a_serial_port() -> None:
    assert_one_line_error(run_cli("hex", os.devnull, "ping"), f"{os.devnull}: not a serial port")


def test_port_in_use(simulator: Simulator) -> None:
    with serial.Serial(simulator.ports["mppt"], exclusive=True):
        result = run_cli("hex", simulator.ports["mppt"], "ping")
    assert_one_line_error(result, f"{simulator.ports['mppt']} is in use by another program")


def test_unknown_register_name(simulator: Simulator) -> None:
    result = run_cli("hex", simulator.ports["mppt"], "get", "battery_max_curent")
    assert_one_line_error(result, "battery_max_curent: not a register name or hex id")


class Garbler(PhoenixInverter):
    """Answers every request with bytes that are not a valid HEX message."""

    hex_firmware = 0x4114

    def answer(self, body: bytes, model: SystemModel) -> bytes | None:
        return b":7F0ED009600DC\n:ZZ\n\x00\xff garbage\n"


class Refuser(Bmv702):
    """Answers pings, and refuses every get with the flag of its name."""

    def __init__(self, name: str, flags: int) -> None:
        super().__init__(name)
        self.flags = flags

    def registers(self, model: SystemModel) -> Mapping[int, bytes]:
        return {}

    def missing_flag(self, register: int) -> int:
        return self.flags


@pytest.fixture(scope="module")
def odd_devices() -> Iterator[Simulator]:
    devices: list[SimulatedDevice] = [
        Garbler("garbler", serial="HQ0000GARBL"), Refuser("unsupported", 0x02), Refuser("bad_parameter", 0x04),
        BlueSolarMppt("mppt", serial="HQ1328Y6TF6", pv_peak_watts=600.0),
    ]
    with Simulator(devices, period=0.2, text_pause=0.5) as sim:
        yield sim


def test_device_answering_garbage_is_a_timeout(odd_devices: Simulator) -> None:
    port = odd_devices.ports["garbler"]
    assert_one_line_error(run_cli("hex", port, "get", "0xEDF0"), f"{port}: no answer to HEX requests after 3 tries")


@pytest.mark.parametrize(("device", "error"), [("unsupported", "not supported"), ("bad_parameter", "parameter error")])
def test_device_answering_flags(odd_devices: Simulator, device: str, error: str) -> None:
    port = odd_devices.ports[device]
    assert ok(port, "get", "0xEDF0") == f"0xEDF0 battery_max_current ({error})\n"
    document = json.loads(ok(port, "get", "0xEDF0", "--json"))
    assert document == {"register": "0xEDF0", "name": "battery_max_current", "value": None, "unit": "A",
                        "error": error}


def test_garbage_between_replies_is_skipped(odd_devices: Simulator) -> None:
    """A ping to the garbler gets garbage; the simulator's MPPT next to it is not disturbed."""
    with open_port(odd_devices.ports["garbler"]) as port:
        link = HexLink(port)
        (outcome,) = link.request([PING])
    assert outcome.error == "timeout"
    assert re.fullmatch(r"\d+\.\d\d\n", ok(odd_devices.ports["mppt"], "ping"))
