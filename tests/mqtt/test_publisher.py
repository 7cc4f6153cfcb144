"""The publisher against a real mosquitto: discovery per the table, stable ids, availability, states, energy
counters, reconnection and Home Assistant's birth. The state is the real `State`, fed real blocks."""

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from pvmonit_exporter.config import DeviceConfig, MqttConfig, ProbeConfig
from pvmonit_exporter.mqtt.connection import MqttConnection
from pvmonit_exporter.mqtt.publisher import Publisher
from pvmonit_exporter.state import State
from pvmonit_exporter.vedirect.framing import DecoderStats
from tests.helpers import wait_for
from tests.mqtt.broker import Broker, Listener, retained
from tests.vedirect_samples import BMV_HISTORY, BMV_MAIN, INVERTER, MPPT

INTERVAL = 1.0


class Clock:
    """The state's clock, moved by the test: staleness without waiting."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Rig:
    """State → publisher → a real broker, and a listener on the broker."""

    def __init__(self, broker: Broker, devices: list[DeviceConfig], probes: list[ProbeConfig] | None = None,
                 previous: dict[str, str] | None = None, client_id: str = "pvmonit-test") -> None:
        self.clock = Clock()
        self.broker = broker
        self.devices = devices
        self.state = State(devices, probes or [], clock=self.clock)
        self.config = MqttConfig(host="127.0.0.1", port=broker.port, client_id=client_id, interval=INTERVAL)
        self.listener = Listener(broker)
        self.connection = MqttConnection(self.config)
        self.publisher = Publisher(self.config, self.state, devices, probes or [], self.connection, previous,
                                   rng=random.Random(1))

    def start(self) -> None:
        self.publisher.start()
        self.connection.start()
        wait_for(lambda: self.connection.connected)

    def feed(self, device: str, *blocks: dict[str, str]) -> None:
        self.state.record_blocks(device, list(blocks), DecoderStats())

    def discovery(self, found: str) -> dict[str, object]:
        topic = f"homeassistant/device/{found}/config"
        message = wait_for(lambda: self.listener.last(topic))
        assert message.qos == 1
        kept = retained(self.broker, topic)
        assert kept is not None and kept.payload == message.payload
        document: dict[str, object] = message.json()
        return document

    def stop(self) -> None:
        self.publisher.stop()
        self.connection.stop()
        self.listener.close()


@pytest.fixture
def rigs(broker: Broker) -> Iterator[list[Rig]]:
    made: list[Rig] = []
    yield made
    for rig in made:
        rig.stop()


def rig_for(rigs: list[Rig], broker: Broker, devices: list[DeviceConfig], **kwargs: object) -> Rig:
    rig = Rig(broker, devices, **kwargs)  # type: ignore[arg-type]
    rigs.append(rig)
    rig.start()
    return rig


def test_an_mppt_is_announced_per_the_table_and_its_state_follows(rigs: list[Rig], broker: Broker) -> None:
    rig = rig_for(rigs, broker, [DeviceConfig("shed-mppt", "/dev/ttyUSB0")])
    rig.feed("shed-mppt", MPPT)
    found = "pvmonit_hq1328y6tf6"
    discovery = rig.discovery(found)
    assert discovery["dev"] == {"ids": [found], "name": "shed-mppt", "mf": "Victron Energy",
                                "mdl": "BlueSolar MPPT 100/30 rev2", "mdl_id": "0xA04A", "sn": "HQ1328Y6TF6", "sw": "1.59",
                                "via_device": "pvmonit_exporter_pvmonit_test"}
    assert discovery["o"]["name"] == "pvmonit-exporter"  # type: ignore[index]
    assert discovery["avty"] == [{"t": "pvmonit/status"}, {"t": "pvmonit/shed-mppt/availability"}]
    assert discovery["avty_mode"] == "all"
    assert discovery["stat_t"] == "pvmonit/shed-mppt/state"
    cmps: dict[str, dict[str, object]] = discovery["cmps"]  # type: ignore[assignment]
    pick = {key: {k: cmps[key].get(k) for k in ("p", "dev_cla", "stat_cla", "unit_of_meas", "uniq_id", "exp_aft")}
            for key in ("yield_total_joules", "yield_today_joules", "yield_yesterday_joules", "panel_power_watts",
                        "battery_voltage_volts", "battery_current_amperes", "load_output_on")}
    assert pick == {
        "yield_total_joules": {"p": "sensor", "dev_cla": "energy", "stat_cla": "total_increasing",
                               "unit_of_meas": "kWh", "uniq_id": f"{found}_yield_total_joules", "exp_aft": 3},
        "yield_today_joules": {"p": "sensor", "dev_cla": "energy", "stat_cla": "total_increasing",
                               "unit_of_meas": "kWh", "uniq_id": f"{found}_yield_today_joules", "exp_aft": 3},
        "yield_yesterday_joules": {"p": "sensor", "dev_cla": "energy", "stat_cla": None, "unit_of_meas": "kWh",
                                   "uniq_id": f"{found}_yield_yesterday_joules", "exp_aft": 3},
        "panel_power_watts": {"p": "sensor", "dev_cla": "power", "stat_cla": "measurement", "unit_of_meas": "W",
                              "uniq_id": f"{found}_panel_power_watts", "exp_aft": 3},
        "battery_voltage_volts": {"p": "sensor", "dev_cla": "voltage", "stat_cla": "measurement",
                                  "unit_of_meas": "V", "uniq_id": f"{found}_battery_voltage_volts", "exp_aft": 3},
        "battery_current_amperes": {"p": "sensor", "dev_cla": "current", "stat_cla": "measurement",
                                    "unit_of_meas": "A", "uniq_id": f"{found}_battery_current_amperes",
                                    "exp_aft": 3},
        "load_output_on": {"p": "binary_sensor", "dev_cla": "power", "stat_cla": None, "unit_of_meas": None,
                           "uniq_id": f"{found}_load_output_on", "exp_aft": 3},
    }
    assert cmps["charge_state"]["dev_cla"] == "enum" and "Float" in cmps["charge_state"]["ops"]  # type: ignore[operator]
    assert "unit_of_meas" not in cmps["charge_state"] and "stat_cla" not in cmps["charge_state"]
    assert cmps["tracker_mode"]["dev_cla"] == "enum" and cmps["off_reason"]["dev_cla"] == "enum"
    assert cmps["charger_error_code"]["dev_cla"] == "enum"
    state = wait_for(lambda: rig.listener.last("pvmonit/shed-mppt/state"))
    assert state.qos == 0 and not state.retain
    values = state.json()
    assert values["time"] == rig.clock.now
    assert values["battery_voltage_volts"] == 26.18 and values["yield_total_joules"] == 1234 * 36_000.0
    assert values["charge_state"] == "Bulk" and values["off_reason"] == []
    availability = wait_for(lambda: rig.listener.last("pvmonit/shed-mppt/availability"))
    assert (availability.payload, availability.qos) == (b"online", 1)
    assert retained(broker, "pvmonit/shed-mppt/availability").payload == b"online"  # type: ignore[union-attr]
    assert retained(broker, "pvmonit/status").payload == b"online"  # type: ignore[union-attr]
    assert retained(broker, "pvmonit/shed-mppt/state") is None  # live values are never retained
    # sent again every interval even unchanged: Home Assistant's exp_aft would expire it otherwise
    count = len(rig.listener.on("pvmonit/shed-mppt/state"))
    rig.feed("shed-mppt", MPPT)
    wait_for(lambda: len(rig.listener.on("pvmonit/shed-mppt/state")) >= count + 2, timeout=10)
