"""The fixtures the command tests share with the parts they drive: the stand-in emoncms (and no proxies, as in
tests/forwarder), a D-Bus without BlueZ (tests/ble), a real mosquitto (tests/mqtt)."""

from tests.ble.conftest import bus_dropping_replies, bus_without_bluez
from tests.forwarder.conftest import _no_proxies, clock, fake
from tests.mqtt.broker import broker

__all__ = ["_no_proxies", "broker", "bus_dropping_replies", "bus_without_bluez", "clock", "fake"]
