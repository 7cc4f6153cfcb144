"""The demo's Bluetooth: a simulated SmartShunt on the simulated battery, heard through a simulated radio.

The radio is an `AdvertScanner` like the real one: it hands genuine Instant Readout adverts (built and encrypted
as a device does, reference victron-ble.md) to the same path bleak's adverts take. The page shows its devices'
port as "simulated Bluetooth".
"""

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pvmonit_exporter.ble.encode import build_advert, pack_record
from pvmonit_exporter.config import DeviceConfig
from pvmonit_exporter.demo.day import SystemModel
from pvmonit_exporter.demo.devices import Bmv702
from pvmonit_exporter.sources.ble import Advert, AdvertSink

BATTERY_MONITOR = 0x02
SMARTSHUNT_500A = 0xA389
AUX_TEMPERATURE = 2
ADVERT_PERIOD = 1.0  # seconds, as real devices
_BMV = Bmv702("bmv")


@dataclass(frozen=True)
class SimulatedSmartShunt:
    """A SmartShunt 500A/50mV with its temperature sensor, on the model's battery."""

    name: str
    address: str
    key: bytes

    def config(self) -> DeviceConfig:
        return DeviceConfig(name=self.name, port="", ble_address=self.address, ble_key=self.key,
                            stale_timeout=10.0)

    def advert(self, model: SystemModel, nonce: int) -> bytes:
        # The same battery as the simulated BMV: its main block, in the record's units.
        bmv = _BMV.blocks(model)[0]
        values = {
            "battery_voltage": round(int(bmv["V"]) / 10),  # mV → 0.01 V
            "battery_current": int(bmv["I"]),  # mA
            "consumed_ah": round(-int(bmv["CE"]) / 100),  # mAh, negative → 0.1 Ah, counted positive
            "state_of_charge": int(bmv["SOC"]),  # ‰ = 0.1 %
            "alarm_reason": int(bmv["AR"]),
            "aux_mode": AUX_TEMPERATURE,
            "aux_value": round((model.temperature + 273.15) * 100),  # 0.01 K
        }
        if bmv["TTG"] != "-1":  # infinite (not discharging): sent as "not available"
            values["time_to_go"] = int(bmv["TTG"])
        return build_advert(SMARTSHUNT_500A, BATTERY_MONITOR, pack_record(BATTERY_MONITOR, values), self.key, nonce)


class SimulatedRadio:
    """An `AdvertScanner` that hears the simulated devices once a second until stopped."""

    description = "simulated Bluetooth"

    def __init__(self, model: SystemModel, devices: Sequence[SimulatedSmartShunt]) -> None:
        self.model, self.devices = model, tuple(devices)
        self._nonce = 0

    def scan(self, sink: AdvertSink, stop: threading.Event, listening: Callable[[], None]) -> None:
        listening()
        while not stop.is_set():
            self._nonce = (self._nonce + 1) % 0x10000  # a device counts its adverts in the nonce
            for device in self.devices:
                sink(Advert(device.address, device.advert(self.model, self._nonce), -67, time.time()))
            stop.wait(ADVERT_PERIOD)


# The demo's key: a simulation's, printed here so that `ble decode` can be tried on the demo's adverts.
DEMO_KEY = bytes.fromhex("0df4d0395b7d1a876c0c33ecb9e70dcd")
DEMO_SHUNT = SimulatedSmartShunt("shunt-ble", "E1:2B:3C:4D:5E:6F", DEMO_KEY)
