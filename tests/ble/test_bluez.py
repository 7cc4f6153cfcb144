"""The real radio path — bleak, dbus-fast, a real D-Bus daemon — against a stand-in BlueZ: adverts heard reach
the state, passive scanning falls back to active where BlueZ lacks the advertisement monitor, and a machine
without an adapter or with it powered off gets its one line."""

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from pvmonit_exporter.ble.advert import COMPANY_ID
from pvmonit_exporter.config import DeviceConfig
from pvmonit_exporter.sources.ble import BleakAdvertScanner, BleSource, describe_scanner_error
from pvmonit_exporter.state import State
from tests.ble.fake_bluez import FakeBlueZ
from tests.ble.test_advert import KEY, SMARTSHUNT_VALUES, advert
from tests.config import ROOT
from tests.helpers import wait_for

ADDRESS = "E1:2B:3C:4D:5E:6F"
SHUNT = DeviceConfig("shunt", "", stale_timeout=5, ble_address=ADDRESS, ble_key=KEY)
APPLE = 0x004C  # another company's data in the same advert: ignored


def shunt_advert(nonce: int) -> bytes:
    return advert(0xA389, 0x02, SMARTSHUNT_VALUES, nonce=nonce)


@pytest.fixture
def advertising(bluez: FakeBlueZ) -> Iterator[FakeBlueZ]:
    """The SmartShunt advertising every 0.2 s once discovery runs (a real device advertises whether or not), each
    advert new (its nonce counts up)."""
    stop = threading.Event()

    def send() -> None:
        nonce = 0
        while not stop.wait(0.2):
            if bluez.discovering.is_set():
                nonce += 1
                bluez.advertise(ADDRESS, {APPLE: b"\x02\x15", COMPANY_ID: shunt_advert(nonce)}, rssi=-64)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    yield bluez
    stop.set()
    thread.join()


@pytest.mark.slow
def test_adverts_through_bleak_and_dbus_reach_the_state(advertising: FakeBlueZ,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pvmonit_exporter")
    state = State([SHUNT])
    source = BleSource([SHUNT], state)  # no scanner given: the real one, bleak
    source.start()
    try:
        wait_for(lambda: state.devices()[0].up, timeout=30)
        (view,) = state.devices()
        assert view.fields["V"] == "12870"
        assert view.fields["SOC"] == "793"
        assert (view.port, view.connected, view.error) == (f"{ADDRESS} (Bluetooth)", True, None)
    finally:
        source.stop()
    # Passive first; this BlueZ has no advertisement monitor, so active scanning, stopped at the end.
    calls = advertising.calls
    assert calls.index("RegisterMonitor") < calls.index("StartDiscovery")
    wait_for(lambda: "StopDiscovery" in advertising.calls)
    assert "passive scanning not available" in caplog.text
    assert "Bluetooth: listening with Bluetooth for shunt" in caplog.text


@pytest.mark.slow
def test_ble_scan_through_bleak_and_dbus(advertising: FakeBlueZ, tmp_path: os.PathLike[str]) -> None:
    config = f"{tmp_path}/config.yaml"
    with open(config, "w", encoding="utf-8") as file:
        file.write(f'devices:\n  - name: shunt\n    ble_address: "{ADDRESS}"\n    ble_key: {KEY.hex()}\n')
    result = subprocess.run([sys.executable, "-m", "pvmonit_exporter", "ble", "scan", "--seconds", "3",
                             "--config.file", config], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env=os.environ.copy(), check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr.endswith("scanning actively\nlistening for 3 s…\n")  # this BlueZ has no monitor
    heard = result.stdout.splitlines()[1].split()
    assert heard[:5] == [ADDRESS, "SmartShunt", "500A/50mV", "battery_monitor", "-64"]
    assert heard[-2:] == ["shunt", "matches"]


@pytest.mark.slow
def test_no_adapter(bluez_without_adapter: FakeBlueZ) -> None:
    with pytest.raises(Exception) as failure:  # noqa: PT011 - bleak's own exception: described below
        BleakAdvertScanner().scan(lambda advert: None, threading.Event(), lambda: None)
    assert describe_scanner_error(failure.value) == "no Bluetooth adapter found"


@pytest.mark.slow
def test_adapter_powered_off(bluez_powered_off: FakeBlueZ) -> None:
    with pytest.raises(Exception) as failure:  # noqa: PT011 - bleak's own exception: described below
        BleakAdvertScanner().scan(lambda advert: None, threading.Event(), lambda: None)
    assert describe_scanner_error(failure.value).startswith("the Bluetooth adapter is powered off")


@pytest.mark.slow
def test_a_scan_that_goes_silent_is_started_again(bus_without_bluez: str, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """bluetoothd restarts under a running scan (an upgrade, a crash): the scan hears nothing any more, so it
    ends after `silence_timeout` and starts again on the new bluetoothd."""
    caplog.set_level(logging.INFO, logger="pvmonit_exporter")
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_without_bluez)
    bluetoothd = [FakeBlueZ(bus_without_bluez)]
    bluetoothd[0].start()
    stop = threading.Event()

    def advertise() -> None:
        nonce = 0
        while not stop.wait(0.2):
            current = bluetoothd[-1]
            if current.discovering.is_set():
                nonce += 1
                current.advertise(ADDRESS, {COMPANY_ID: shunt_advert(nonce)}, rssi=-64)

    sender = threading.Thread(target=advertise, daemon=True)
    sender.start()
    state = State([SHUNT])
    scanner = BleakAdvertScanner()
    scanner.silence_timeout = 1.5
    source = BleSource([SHUNT], state, scanner)
    source.backoff_start = 0.1
    source.start()
    try:
        wait_for(lambda: state.devices()[0].up, timeout=30)
        bluetoothd[0].stop()  # bluetoothd goes away...
        restarted = FakeBlueZ(bus_without_bluez)  # ...and comes back, knowing nothing of the old scan
        restarted.start()
        bluetoothd.append(restarted)
        wait_for(restarted.discovering.is_set, timeout=30)
        wait_for(lambda: state.devices()[0].up and state.devices()[0].error is None, timeout=30)
    finally:
        source.stop()
        stop.set()
        sender.join()
        bluetoothd[-1].stop()
    assert caplog.text.count("no Victron advert heard for 1.5 s; scanning again") == 1
