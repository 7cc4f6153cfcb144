"""The daemon end to end with a Bluetooth device on a scripted radio beside a VE.Direct device on a real PTY:
/metrics over real HTTP under the existing names, stale after silence, back when adverts resume."""

import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvmonit_exporter.config import Config, DeviceConfig
from pvmonit_exporter.daemon import Exporter
from pvmonit_exporter.vedirect.fields import FIELDS
from pvmonit_exporter.vedirect.framing import encode_block
from tests.ble.radio import ScriptedRadio
from tests.ble.test_advert import KEY, SENSIBLE, advert
from tests.daemon.test_exporter import Daemon, get, sample, samples
from tests.helpers import FakeDevicePort, wait_for
from tests.vedirect_samples import MPPT

ADDRESS = "E1:2B:3C:4D:5E:6F"
STALE = 1.5


class Installation:
    """The exporter, a SmartShunt advertising every 0.2 s while `advertising` is set, an MPPT sending every 0.2 s."""

    def __init__(self, tmp_path: Path) -> None:
        self.radio = ScriptedRadio()
        self.mppt = FakeDevicePort(tmp_path / "cable-mppt")
        devices = (DeviceConfig("mppt", self.mppt.path, stale_timeout=STALE),
                   DeviceConfig("shunt", "", stale_timeout=STALE, ble_address=ADDRESS, ble_key=KEY))
        self.exporter = Exporter(Config(devices=devices), "127.0.0.1:0", ble_scanner=self.radio)
        self.base = f"http://127.0.0.1:{self.exporter.port}"
        self.advertising = threading.Event()
        self.advertising.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, daemon=True)
        self.nonce = 0

    def _send(self) -> None:
        while not self._stop.wait(0.2):
            self.mppt.write(encode_block(MPPT))
            if self.advertising.is_set():
                self.nonce += 1
                self.radio.send(ADDRESS, advert(0xA389, 0x02, {
                    "battery_voltage": 2618, "battery_current": -4250, "alarm_reason": 0, "aux_mode": 3,
                    "consumed_ah": 123, "state_of_charge": 876, "time_to_go": 600}, nonce=self.nonce))

    def start(self) -> None:
        self.exporter.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.exporter.stop()
        self.mppt.close()


@pytest.fixture
def installation(tmp_path: Path) -> Iterator[Installation]:
    site = Installation(tmp_path)
    site.start()
    yield site
    site.stop()


def up(base: str, device: str) -> float | None:
    return sample(base, "vedirect_up", device=device)


def test_bluetooth_values_under_the_existing_names_stale_and_back(installation: Installation) -> None:
    base = installation.base
    wait_for(lambda: up(base, "shunt") == 1.0 and up(base, "mppt") == 1.0)
    assert sample(base, "vedirect_battery_voltage_volts", device="shunt") == pytest.approx(26.18)
    assert sample(base, "vedirect_battery_current_amperes", device="shunt") == pytest.approx(-4.25)
    assert sample(base, "vedirect_state_of_charge_ratio", device="shunt") == pytest.approx(0.876)
    assert sample(base, "vedirect_consumed_charge_coulombs", device="shunt") == pytest.approx(-12300 * 3.6)
    assert sample(base, "vedirect_time_to_go_seconds", device="shunt") == 36000.0
    assert sample(base, "vedirect_device_info", device="shunt", product_id="0xA389", product="SmartShunt 500A/50mV",
                  serial_number="", firmware="", source="ble") == 1.0
    assert sample(base, "vedirect_device_info", device="mppt", product_id="0xA04A",
                  product="BlueSolar MPPT 100/30 rev2", serial_number="HQ1328Y6TF6", firmware="1.59",
                  source="serial") == 1.0
    assert sample(base, "vedirect_port_connected", device="shunt") == 1.0
    assert (sample(base, "vedirect_battery_temperature_celsius", device="shunt")) is None  # aux off: absent

    installation.advertising.clear()  # out of range
    wait_for(lambda: up(base, "shunt") == 0.0, timeout=20)
    assert sample(base, "vedirect_battery_voltage_volts", device="shunt") is None
    assert up(base, "mppt") == 1.0  # the cable device never noticed
    assert sample(base, "vedirect_battery_voltage_volts", device="mppt") == pytest.approx(26.18)
    status, _, body = get(base + "/api/state")
    assert status == 200
    assert b'"source": "ble"' in body or b'"source":"ble"' in body

    installation.advertising.set()
    wait_for(lambda: up(base, "shunt") == 1.0, timeout=20)
    assert sample(base, "vedirect_battery_voltage_volts", device="shunt") == pytest.approx(26.18)


@pytest.mark.slow
def test_the_real_daemon_without_a_radio_logs_one_line_and_keeps_the_cables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`pvmonit-exporter run` on a machine with no system D-Bus: the Bluetooth device is down with the reason,
    the VE.Direct device reads on, one warning in the log, the key nowhere in it."""
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/pvmonit-test/bus")
    mppt = FakeDevicePort(tmp_path / "cable-mppt")
    config = tmp_path / "config.yaml"
    config.write_text(f"""
devices:
  - name: mppt
    port: {mppt.path}
  - name: shunt
    ble_address: "{ADDRESS}"
    ble_key: {KEY.hex()}
""", encoding="utf-8")
    daemon = Daemon(config, tmp_path)
    try:
        wait_for(lambda: sample(daemon.base, "vedirect_port_connected", device="mppt") == 1.0)
        mppt.write(encode_block(MPPT))
        wait_for(lambda: up(daemon.base, "mppt") == 1.0)
        state = wait_for(lambda: next((d for d in json.loads(get(daemon.base + "/api/state")[2])["devices"]
                                       if d["name"] == "shunt" and d["error"]), None))
        assert (state["up"], state["connected"], state["source"]) == (False, False, "ble")
        assert state["error"].startswith("cannot reach the system D-Bus")
        assert up(daemon.base, "shunt") == 0.0
    finally:
        assert daemon.stop() == 0
        mppt.close()
    log = daemon.stderr_path.read_text(encoding="utf-8")
    assert log.count("Bluetooth: cannot reach the system D-Bus") == 1, log
    assert KEY.hex() not in log
    assert "Traceback" not in log


WRONG_KEYS_PER_RECORD_TYPE = 1000
ADVERTS_EACH = 5


@pytest.mark.slow
def test_no_wrong_key_sharing_the_key_check_byte_ever_reaches_metrics() -> None:
    """Per record type, 1,000 devices whose keys share the key-check byte with the real key but are wrong (a fixed
    seed), each hearing the real device's adverts 5 times anew, on the daemon with /metrics over HTTP: none of
    them shows a value. One device per record type with the right key shows its values, in the same run."""
    radio = ScriptedRadio()
    devices: list[DeviceConfig] = []
    heard: list[tuple[str, bytes]] = []
    for index, (record, (product_id, record_type, values)) in enumerate(SENSIBLE.items()):
        adverts = [advert(product_id, record_type, values, nonce=n) for n in range(1, ADVERTS_EACH + 1)]
        generator = random.Random(f"daemon: wrong keys for {record}")
        keys = [KEY, *(KEY[:1] + generator.randbytes(15) for _ in range(WRONG_KEYS_PER_RECORD_TYPE))]
        for number, key in enumerate(keys):
            address = f"C0:{index:02X}:{number >> 8:02X}:{number & 0xFF:02X}:00:00"
            name = f"{record}-{'right' if key == KEY else number}"
            devices.append(DeviceConfig(name, "", stale_timeout=600, ble_address=address, ble_key=key))
            heard += [(address, data) for data in adverts]
    exporter = Exporter(Config(devices=tuple(devices)), "127.0.0.1:0", ble_scanner=radio)
    exporter.start()
    base = f"http://127.0.0.1:{exporter.port}"
    try:
        for address, data in heard:
            radio.send(address, data)

        def handled() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
            found = samples(base)
            counted = sum(value for (name, _), value in found.items()
                          if name in ("vedirect_blocks_total", "vedirect_malformed_blocks_total"))
            return found if counted == len(heard) else None

        found = wait_for(handled, timeout=300)
        state = json.loads(get(base + "/api/state")[2])
    finally:
        exporter.stop()
    errors = {d["name"]: d["error"] or "" for d in state["devices"]}
    assert {name for name, error in errors.items() if not error.startswith("the key looks wrong")} == {
        f"{record}-right" for record in SENSIBLE}
    value_metrics = {f"vedirect_{spec.metric}" for spec in FIELDS.values() if spec.metric}
    shown = {dict(labels)["device"] for (name, labels), _ in found.items() if name in value_metrics}
    assert shown == {f"{record}-right" for record in SENSIBLE}
    up = {dict(labels)["device"] for (name, labels), value in found.items() if name == "vedirect_up" and value}
    assert up == shown
