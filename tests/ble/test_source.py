"""Bluetooth source: adverts → the same device state as serial blocks; radio failures → one log line, devices
down with the reason, retries."""

import logging

import pytest
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from pvmonit_exporter.collector.devices import DeviceCollector
from pvmonit_exporter.config import DeviceConfig
from pvmonit_exporter.sources.ble import Advert, BleDevices, BleSource, describe_scanner_error
from pvmonit_exporter.state import State
from tests.ble.radio import ScriptedRadio
from tests.ble.test_advert import KEY, OTHER_KEY, SMARTSHUNT_HEX, SMARTSHUNT_VALUES, advert
from tests.helpers import wait_for

ADDRESS = "E1:2B:3C:4D:5E:6F"
SHUNT = DeviceConfig("shunt", "", stale_timeout=5, ble_address=ADDRESS, ble_key=KEY)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def heard(data: bytes, address: str = ADDRESS) -> Advert:
    return Advert(address, data, -70, 0.0)


def shunt_adverts(count: int, first_nonce: int = 0x4A3F) -> list[bytes]:
    """The SmartShunt's advert, sent anew `count` times (a new nonce each: what a device does as values change)."""
    return [advert(0xA389, 0x02, SMARTSHUNT_VALUES, nonce=first_nonce + n) for n in range(count)]


def exposition(state: State) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeviceCollector(state))
    return generate_latest(registry).decode()


def test_adverts_feed_the_same_state_as_serial_blocks() -> None:
    clock = Clock()
    state = State([SHUNT], clock=clock)
    devices = BleDevices([SHUNT], state)
    devices.scanner_status(None, "Bluetooth")
    first, second, third = shunt_adverts(3)
    devices.handle(heard(bytes.fromhex(SMARTSHUNT_HEX), address="AA:BB:CC:DD:EE:FF"))  # not ours: ignored
    for data in (first, second, second):  # the same advert twice proves nothing
        devices.handle(heard(data))
        (view,) = state.devices()
        assert not view.up
        assert "vedirect_battery_voltage_volts" not in exposition(state)
    assert view.error == "the key looks wrong until 3 adverts in a row make sense (2 so far)"
    devices.handle(heard(third))
    (view,) = state.devices()
    assert view.up
    assert view.source == "ble"
    assert (view.port, view.connected, view.error) == (f"{ADDRESS} (Bluetooth)", True, None)
    assert view.fields == {"PID": "0xA389", "V": "12870", "I": "-3125", "CE": "-41200", "SOC": "793",
                           "TTG": "754", "AR": "0", "VS": "12620"}
    assert (view.identity.product, view.identity.kind) == ("SmartShunt 500A/50mV", "bmv")
    assert (view.stats.blocks_valid, view.stats.bytes_received) == (4, 92)
    text = exposition(state)
    assert ('vedirect_device_info{device="shunt",firmware="",product="SmartShunt 500A/50mV",product_id="0xA389",'
            'serial_number="",source="ble"} 1.0') in text
    assert 'vedirect_battery_voltage_volts{device="shunt"} 12.87' in text
    assert 'vedirect_state_of_charge_ratio{device="shunt"} 0.793' in text
    assert "vedirect_panel_power_watts" not in text  # not carried: absent, never 0
    clock.now += 6
    (view,) = state.devices()
    assert not view.up
    assert view.fields == {}
    assert "vedirect_battery_voltage_volts" not in exposition(state)


def test_a_wrong_key_is_the_device_error_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    state = State([SHUNT], clock=Clock())
    devices = BleDevices([SHUNT], state)
    devices.scanner_status(None, "Bluetooth")
    caplog.set_level(logging.INFO, logger="pvmonit_exporter")
    for nonce in (1, 2, 3):
        devices.handle(heard(advert(0xA389, 0x02, {"alarm_reason": 0}, key=OTHER_KEY, nonce=nonce)))
    (view,) = state.devices()
    assert not view.up
    assert view.error is not None
    assert "the key does not match this device" in view.error
    assert view.stats.malformed_blocks == 3
    assert [r.getMessage() for r in caplog.records if "does not match" in r.getMessage()] == [
        f"device shunt: {view.error}"]
    assert KEY.hex() not in caplog.text
    for data in shunt_adverts(3):
        devices.handle(heard(data))
    (view,) = state.devices()
    assert view.up
    assert view.error is None


def test_a_truncated_advert_is_counted_and_gives_nothing() -> None:
    state = State([SHUNT], clock=Clock())
    devices = BleDevices([SHUNT], state)
    devices.handle(heard(bytes.fromhex(SMARTSHUNT_HEX)[:-3]))
    (view,) = state.devices()
    assert not view.up
    assert (view.stats.malformed_blocks, view.stats.bytes_discarded) == (1, 20)


@pytest.mark.parametrize(("error", "message"), [
    (ImportError("No module named 'bleak'"), "Bluetooth needs the [ble] extra"),
    (FileNotFoundError(2, "No such file or directory"), "cannot reach the system D-Bus"),
    (PermissionError(13, "Permission denied"), "permission denied on the system D-Bus socket"),
    (RuntimeError("surprise"), "Bluetooth scanner failed: RuntimeError: surprise"),
])
def test_describe_scanner_error(error: BaseException, message: str) -> None:
    assert message in describe_scanner_error(error)


def test_describe_bleak_errors() -> None:
    pytest.importorskip("bleak")  # part of the [ble] extra that [test] installs
    from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason, BleakDBusError

    reasons = {
        BleakBluetoothNotAvailableReason.NO_BLUETOOTH: "no Bluetooth adapter found",
        BleakBluetoothNotAvailableReason.POWERED_OFF: "the Bluetooth adapter is powered off",
        BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM: "D-Bus refused access to BlueZ",
    }
    for reason, message in reasons.items():
        assert message in describe_scanner_error(BleakBluetoothNotAvailableError("x", reason))
    not_running = BleakDBusError("org.freedesktop.DBus.Error.ServiceUnknown", ["org.bluez was not provided"])
    assert describe_scanner_error(not_running) == "BlueZ is not running (sudo systemctl start bluetooth)"
    denied = BleakDBusError("org.freedesktop.DBus.Error.AccessDenied", ["Rejected send message"])
    assert "D-Bus refused access to BlueZ" in describe_scanner_error(denied)


def test_radio_failures_put_the_devices_down_log_once_and_retry(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pvmonit_exporter")
    radio = ScriptedRadio()
    for _ in range(3):
        radio.failures.put(FileNotFoundError(2, "No such file or directory"))
    state = State([SHUNT])
    source = BleSource([SHUNT], state, radio)
    source.backoff_start = 0.01
    source.start()
    try:
        wait_for(lambda: radio.scans >= 4)  # three failures, then a scan that works
        for data in shunt_adverts(3):
            radio.send(ADDRESS, data)
        wait_for(lambda: state.devices()[0].up)
        (view,) = state.devices()
        assert (view.connected, view.error) == (True, None)
    finally:
        source.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["Bluetooth: cannot reach the system D-Bus (is dbus running? is /run/dbus visible to the "
                        "service?); devices down: shunt (retrying)"]
    assert "Bluetooth: listening with scripted radio for shunt" in caplog.text


def test_while_the_radio_fails_the_device_shows_why() -> None:
    radio = ScriptedRadio()
    radio.failures.put(ImportError("No module named 'bleak'"))
    state = State([SHUNT])
    source = BleSource([SHUNT], state, radio)
    source.backoff_start = 60
    source.start()
    try:
        wait_for(lambda: state.devices()[0].error)
        (view,) = state.devices()
        assert (view.up, view.connected) == (False, False)
        assert view.error is not None
        assert view.error.startswith("Bluetooth needs the [ble] extra")
    finally:
        source.stop()


def test_a_wrong_key_that_passes_the_key_check_never_shows_values(caplog: pytest.LogCaptureFixture) -> None:
    """The key's first byte is right, the rest not (the usual typo): the adverts decrypt to nonsense, the device
    shows none of it, says the key looks wrong, and the log says so once."""
    typo = KEY[:-1] + bytes([KEY[-1] ^ 0x01])
    shunt = DeviceConfig("shunt", "", stale_timeout=5, ble_address=ADDRESS, ble_key=typo)
    state = State([shunt], clock=Clock())
    devices = BleDevices([shunt], state)
    devices.scanner_status(None, "Bluetooth")
    caplog.set_level(logging.DEBUG, logger="pvmonit_exporter")
    for data in shunt_adverts(50):
        devices.handle(heard(data))
    (view,) = state.devices()
    assert (view.up, view.fields) == (False, {})
    assert view.error is not None
    assert view.error.startswith("the key looks wrong: an advert's values make no sense (")
    assert "vedirect_battery_voltage_volts" not in exposition(state)
    assert view.stats.malformed_blocks == 50
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("device shunt: the key looks wrong: an advert's values make no sense (")


def test_the_smart_battery_sense_on_metrics_and_api_state() -> None:
    """Issue 16's Smart Battery Sense: 22.5 °C (not 22) on /metrics and in /api/state, and no current (its
    0x1FFFFF is "not available", which victron-ble reads as 2097.151 A)."""
    from pvmonit_exporter.web.api import device_document

    sense = DeviceConfig("sense", "", stale_timeout=5, ble_address=ADDRESS, ble_key=KEY)
    state = State([sense], clock=Clock())
    devices = BleDevices([sense], state)
    devices.scanner_status(None, "Bluetooth")
    for nonce in (1, 2, 3):
        devices.handle(heard(advert(0xA3A4, 0x02, {"battery_voltage": 1222, "alarm_reason": 0, "aux_mode": 2,
                                                    "aux_value": 29565, "battery_current": 0x1FFFFF}, nonce=nonce)))
    (view,) = state.devices()
    assert view.up
    text = exposition(state)
    assert 'vedirect_battery_temperature_celsius{device="sense"} 22.5' in text
    assert 'vedirect_battery_voltage_volts{device="sense"} 12.22' in text
    assert "vedirect_battery_current_amperes" not in text
    fields = device_document(view)["fields"]
    assert (fields["T"]["raw"], fields["T"]["value"], fields["T"]["unit"]) == ("22.5", 22.5, "°C")
    assert "I" not in fields
