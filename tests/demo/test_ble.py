"""The demo's simulated SmartShunt: genuine encrypted adverts, the same battery as the simulated BMV."""

import threading

import pytest

from pvmonit_exporter.ble.advert import AdvertDecoder
from pvmonit_exporter.demo.ble import DEMO_SHUNT, SimulatedRadio
from pvmonit_exporter.demo.day import SystemModel
from pvmonit_exporter.demo.devices import Bmv702
from pvmonit_exporter.sources.ble import Advert


def test_the_shunt_measures_the_simulated_battery_like_the_bmv() -> None:
    model = SystemModel({"mppt": 600.0}, seed=1, start_hour=20.0)  # evening: discharging, time to go counts
    model.step(5.0)
    bmv = Bmv702("bmv").blocks(model)[0]
    heard: list[Advert] = []
    stop = threading.Event()
    listening = threading.Event()

    def sink(advert: Advert) -> None:
        heard.append(advert)
        stop.set()

    SimulatedRadio(model, [DEMO_SHUNT]).scan(sink, stop, listening.set)
    assert listening.is_set()
    (advert,) = heard
    assert advert.address == DEMO_SHUNT.address
    reading = AdvertDecoder(DEMO_SHUNT.key).decode(advert.data)
    assert (reading.product, reading.record_type) == ("SmartShunt 500A/50mV", "battery_monitor")
    block = reading.block
    assert abs(int(block["V"]) - int(bmv["V"])) <= 5  # 0.01 V in the advert, mV on the cable
    assert block["I"] == bmv["I"]
    assert block["SOC"] == bmv["SOC"]
    assert abs(int(block["CE"]) - int(bmv["CE"])) <= 50  # 0.1 Ah in the advert
    assert block["TTG"] == bmv["TTG"]
    assert float(block["T"]) == pytest.approx(model.temperature, abs=0.005)  # 0.01 K in the advert


def test_while_charging_time_to_go_is_not_sent() -> None:
    model = SystemModel({"mppt": 600.0}, seed=1, start_hour=12.0)
    model.step(5.0)
    assert model.battery_current > 0
    data = DEMO_SHUNT.advert(model, nonce=7)
    assert "TTG" not in AdvertDecoder(DEMO_SHUNT.key).decode(data).block
