"""The publisher against a real mosquitto: discovery per the table, stable ids, availability, states, energy
counters, reconnection and Home Assistant's birth. The state is the real `State`, fed real blocks."""

import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
PASSWORD = "s3cret"  # noqa: S105 - the test broker's


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
        assert kept is not None
        assert kept.payload == message.payload
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


@pytest.mark.slow
def test_an_mppt_is_announced_per_the_table_and_its_state_follows(rigs: list[Rig], broker: Broker) -> None:
    rig = rig_for(rigs, broker, [DeviceConfig("shed-mppt", "/dev/ttyUSB0")])
    rig.feed("shed-mppt", MPPT)
    found = "pvmonit_hq1328y6tf6"
    discovery = rig.discovery(found)
    assert discovery["dev"] == {"ids": [found], "name": "shed-mppt", "mf": "Victron Energy",
                                "mdl": "BlueSolar MPPT 100/30 rev2", "mdl_id": "0xA04A", "sn": "HQ1328Y6TF6",
                                "sw": "1.59", "via_device": "pvmonit_exporter_pvmonit_test"}
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
    assert cmps["charge_state"]["dev_cla"] == "enum"
    assert "Float" in cmps["charge_state"]["ops"]  # type: ignore[operator]
    assert "unit_of_meas" not in cmps["charge_state"]
    assert "stat_cla" not in cmps["charge_state"]
    assert cmps["tracker_mode"]["dev_cla"] == "enum"
    assert cmps["off_reason"]["dev_cla"] == "enum"
    assert cmps["charger_error_code"]["dev_cla"] == "enum"
    state = wait_for(lambda: rig.listener.last("pvmonit/shed-mppt/state"))
    assert state.qos == 0
    assert not state.retain
    values = state.json()
    assert values["time"] == rig.clock.now
    assert values["battery_voltage_volts"] == 26.18
    assert values["yield_total_joules"] == 1234 * 36_000.0
    assert values["charge_state"] == "Bulk"
    assert values["off_reason"] == []
    availability = wait_for(lambda: rig.listener.last("pvmonit/shed-mppt/availability"))
    assert (availability.payload, availability.qos) == (b"online", 1)
    assert retained(broker, "pvmonit/shed-mppt/availability").payload == b"online"  # type: ignore[union-attr]
    assert retained(broker, "pvmonit/status").payload == b"online"  # type: ignore[union-attr]
    assert retained(broker, "pvmonit/shed-mppt/state") is None  # live values are never retained
    # sent again every interval even unchanged: Home Assistant's exp_aft would expire it otherwise
    count = len(rig.listener.on("pvmonit/shed-mppt/state"))
    rig.feed("shed-mppt", MPPT)
    wait_for(lambda: len(rig.listener.on("pvmonit/shed-mppt/state")) >= count + 2, timeout=10)


@pytest.mark.slow
def test_a_bmv_an_inverter_and_a_probe_per_the_table(rigs: list[Rig], broker: Broker, tmp_path: Path) -> None:
    probe = ProbeConfig("shed_temperature", "file", "temperature", path=str(tmp_path / "t"))
    rig = rig_for(rigs, broker, [DeviceConfig("bmv", "/dev/ttyUSB0"), DeviceConfig("inverter", "/dev/ttyUSB1")],
                  probes=[probe])
    rig.feed("bmv", BMV_MAIN, BMV_HISTORY)
    rig.feed("inverter", INVERTER)
    rig.state.record_probe("shed_temperature", 21.5)
    bmv = rig.discovery("pvmonit_bmv")  # a BMV-70x sends no SER#: its configured name
    cmps = bmv["cmps"]
    assert isinstance(cmps, dict)
    assert {k: cmps["state_of_charge_ratio"][k] for k in ("dev_cla", "stat_cla", "unit_of_meas")} == {
        "dev_cla": "battery", "stat_cla": "measurement", "unit_of_meas": "%"}
    assert "value_json.state_of_charge_ratio * 100" in cmps["state_of_charge_ratio"]["val_tpl"]
    assert {k: cmps["consumed_charge_coulombs"].get(k) for k in ("dev_cla", "stat_cla", "unit_of_meas")} == {
        "dev_cla": None, "stat_cla": "measurement", "unit_of_meas": "Ah"}
    assert {k: cmps["time_to_go_seconds"].get(k) for k in ("dev_cla", "stat_cla", "unit_of_meas")} == {
        "dev_cla": None, "stat_cla": "measurement", "unit_of_meas": "min"}
    assert cmps["charged_energy_joules"]["stat_cla"] == "total_increasing"
    state = wait_for(lambda: rig.listener.last("pvmonit/bmv/state")).json()
    assert "battery_temperature_celsius" not in state  # T is '---': absent, never 0
    assert "time_to_go_seconds" not in state  # infinite: JSON has no infinity
    assert state["state_of_charge_ratio"] == 0.839
    assert state["alarm_reason"] == ["Low voltage", "Low SOC"]
    inverter = rig.discovery("pvmonit_hq1234abcde")
    icmps = inverter["cmps"]
    assert isinstance(icmps, dict)
    assert {k: icmps["ac_output_voltage_volts"][k] for k in ("dev_cla", "stat_cla", "unit_of_meas")} == {
        "dev_cla": "voltage", "stat_cla": "measurement", "unit_of_meas": "V"}
    assert {k: icmps["ac_output_current_amperes"][k] for k in ("dev_cla", "unit_of_meas")} == {
        "dev_cla": "current", "unit_of_meas": "A"}
    assert icmps["charge_state"]["dev_cla"] == "enum"
    assert icmps["device_mode"]["dev_cla"] == "enum"
    probe_discovery = rig.discovery("pvmonit_shed_temperature")
    assert probe_discovery["cmps"] == {"value": {
        "p": "sensor", "name": "Temperature", "uniq_id": "pvmonit_shed_temperature_value",
        "val_tpl": "{{ value_json.value if value_json.value is defined else '' }}", "exp_aft": 180,
        "dev_cla": "temperature", "stat_cla": "measurement", "unit_of_meas": "°C"}}
    probe_state = wait_for(lambda: rig.listener.last("pvmonit/shed_temperature/state")).json()
    assert (probe_state["value"], probe_state["unit"]) == (21.5, "°C")


@pytest.mark.slow
def test_a_bluetooth_device_is_announced_under_its_address(rigs: list[Rig], broker: Broker) -> None:
    from pvmonit_exporter.demo.ble import DEMO_SHUNT, SimulatedRadio
    from pvmonit_exporter.demo.day import SystemModel
    from pvmonit_exporter.sources.ble import BleSource

    config = DEMO_SHUNT.config()
    rig = rig_for(rigs, broker, [config])
    source = BleSource([config], rig.state, SimulatedRadio(SystemModel({}), [DEMO_SHUNT]))
    source.start()
    try:
        discovery = rig.discovery("pvmonit_e1_2b_3c_4d_5e_6f")
    finally:
        source.request_stop()
        source.stop()
    dev = discovery["dev"]
    assert isinstance(dev, dict)
    assert dev["ids"] == ["pvmonit_e1_2b_3c_4d_5e_6f"]
    assert "SmartShunt" in dev["mdl"]
    cmps = discovery["cmps"]
    assert isinstance(cmps, dict)
    assert cmps["state_of_charge_ratio"]["dev_cla"] == "battery"


def unique_ids(discovery: Any) -> list[str]:
    return sorted(component["uniq_id"] for component in discovery["cmps"].values())


@pytest.mark.slow
@pytest.mark.parametrize("change", ["restart", "port renamed", "firmware updated", "device renamed"])
def test_the_same_unique_ids_after(change: str, rigs: list[Rig], broker: Broker) -> None:
    first = rig_for(rigs, broker, [DeviceConfig("mppt", "/dev/ttyUSB0")], client_id="a")
    first.feed("mppt", MPPT)
    before = first.discovery("pvmonit_hq1328y6tf6")
    first.stop()
    rigs.remove(first)
    name, port, block = "mppt", "/dev/ttyUSB0", dict(MPPT)
    if change == "port renamed":
        port = "/dev/serial/by-id/usb-VictronEnergy_BV_VE_Direct_cable-if00-port0"
    elif change == "firmware updated":
        block["FW"] = "161"
    elif change == "device renamed":
        name = "solar"
    second = rig_for(rigs, broker, [DeviceConfig(name, port)], client_id="b")
    second.listener.clear()
    second.feed(name, block)
    after = wait_for(lambda: second.listener.last("homeassistant/device/pvmonit_hq1328y6tf6/config")).json()
    assert unique_ids(after) == unique_ids(before)
    assert after["dev"]["ids"] == before["dev"]["ids"]  # type: ignore[index]


@pytest.mark.slow
def test_an_energy_counter_never_goes_down_nor_to_zero_nor_to_a_sentinel(rigs: list[Rig], broker: Broker) -> None:
    rig = rig_for(rigs, broker, [DeviceConfig("mppt", "/dev/ttyUSB0")])
    rig.feed("mppt", {**MPPT, "H19": "1234", "H20": "150"})
    wait_for(lambda: rig.listener.last("pvmonit/mppt/state"))
    for h19, h20 in (("1233", "149"), ("---", "---"), ("65535", "65535"), ("0", "151"), ("1235", "2")):
        rig.feed("mppt", {**MPPT, "H19": h19, "H20": h20})
        count = len(rig.listener.on("pvmonit/mppt/state"))
        wait_for(lambda n=count: len(rig.listener.on("pvmonit/mppt/state")) > n)  # type: ignore[misc]
    published = [m.json() for m in rig.listener.on("pvmonit/mppt/state")]
    totals = [s["yield_total_joules"] / 36_000 for s in published]
    todays = [s["yield_today_joules"] / 36_000 for s in published]
    assert all(b >= a for a, b in itertools.pairwise(totals)), totals
    assert totals[-1] == 1235
    assert 65535 not in totals
    assert 0 not in totals
    # yield today: never lower within a day; a drop to under 10 % is a new day (Home Assistant reads a new cycle)
    assert 65535 not in todays, todays
    assert 149 not in todays, todays
    assert todays[-1] == 2, todays


@pytest.mark.slow
def test_broker_restart_reconnects_and_republishes(rigs: list[Rig], broker: Broker) -> None:
    rig = rig_for(rigs, broker, [DeviceConfig("mppt", "/dev/ttyUSB0")])
    rig.feed("mppt", MPPT)
    rig.discovery("pvmonit_hq1328y6tf6")
    broker.stop()
    wait_for(lambda: not rig.connection.connected)
    dropped = rig.connection.snapshot().dropped_total
    wait_for(lambda: rig.connection.snapshot().dropped_total > dropped, timeout=10)  # live values: not queued
    broker.start()  # persistence false: the broker forgot every retained message
    rig.listener.close()
    rig.listener = Listener(broker)
    wait_for(lambda: rig.connection.connected, timeout=40)  # within the 30 s backoff cap
    rig.discovery("pvmonit_hq1328y6tf6")
    assert retained(broker, "pvmonit/status").payload == b"online"  # type: ignore[union-attr]
    wait_for(lambda: retained(broker, "pvmonit/mppt/availability"))
    assert rig.connection.snapshot().errors_total["connection"] >= 1


@pytest.mark.slow
def test_home_assistant_birth_resends_discovery_then_states(rigs: list[Rig], broker: Broker) -> None:
    rig = rig_for(rigs, broker, [DeviceConfig("mppt", "/dev/ttyUSB0")])
    rig.feed("mppt", MPPT)
    rig.discovery("pvmonit_hq1328y6tf6")
    rig.listener.clear()
    rig.listener.publish("homeassistant/status", "online")
    again = wait_for(lambda: rig.listener.on("homeassistant/device/pvmonit_hq1328y6tf6/config"), timeout=10)
    assert again
    topics = [m.topic for m in rig.listener.messages]
    first_discovery = topics.index("homeassistant/device/pvmonit_hq1328y6tf6/config")
    assert "pvmonit/mppt/state" in topics[first_discovery:]


@pytest.mark.slow
def test_a_device_removed_from_the_configuration_is_removed_after_a_reload(rigs: list[Rig], broker: Broker) -> None:
    first = rig_for(rigs, broker, [DeviceConfig("mppt", "/dev/ttyUSB0"), DeviceConfig("inverter", "/dev/ttyUSB1")],
                    client_id="a")
    first.feed("mppt", MPPT)
    first.feed("inverter", INVERTER)
    first.discovery("pvmonit_hq1234abcde")
    first.discovery("pvmonit_hq1328y6tf6")
    first.stop()
    rigs.remove(first)
    announced = first.publisher.announced()
    assert announced == {"pvmonit_hq1328y6tf6": "mppt", "pvmonit_hq1234abcde": "inverter"}
    second = rig_for(rigs, broker, [DeviceConfig("mppt", "/dev/ttyUSB0")], previous=announced, client_id="b")
    second.feed("mppt", MPPT)
    wait_for(lambda: retained(broker, "homeassistant/device/pvmonit_hq1234abcde/config") is None, timeout=15)
    assert retained(broker, "homeassistant/device/pvmonit_hq1328y6tf6/config") is not None


@pytest.mark.slow
def test_two_devices_with_one_serial_number_are_not_merged(rigs: list[Rig], broker: Broker) -> None:
    rig = rig_for(rigs, broker, [DeviceConfig("a", "/dev/ttyUSB0"), DeviceConfig("b", "/dev/ttyUSB1")])
    rig.feed("a", MPPT)
    rig.discovery("pvmonit_hq1328y6tf6")
    rig.feed("b", MPPT)
    for _ in range(3):
        rig.publisher.publish_once()
    names = {m.json()["dev"]["name"] for m in rig.listener.on("homeassistant/device/+/config")}
    assert names == {"a", "pvmonit-exporter pvmonit-test"}  # b's values are not announced as a's


@pytest.mark.slow
def test_with_a_password_file_and_over_tls(tmp_path: Path) -> None:
    from tests.mqtt.broker import make_ca

    secured = Broker(tmp_path, users={"pvmonit": PASSWORD}, tls=make_ca(tmp_path))
    secured.start()
    try:
        state = State([DeviceConfig("mppt", "/dev/ttyUSB0")])
        state.record_blocks("mppt", [MPPT], DecoderStats())
        for password, expected in (("wrong", False), (PASSWORD, True)):
            config = MqttConfig(host="127.0.0.1", port=secured.port, tls=True, username="pvmonit", password=password,
                                ca_file=str(secured.tls.ca_file), client_id="tls-test")  # type: ignore[union-attr]
            connection = MqttConnection(config)
            publisher = Publisher(config, state, [DeviceConfig("mppt", "/dev/ttyUSB0")], [], connection)
            publisher.start()
            connection.start()
            try:
                if expected:
                    wait_for(lambda c=connection: c.connected)  # type: ignore[misc]
                    found = wait_for(lambda: retained(secured, "homeassistant/device/pvmonit_hq1328y6tf6/config",
                                                      username="pvmonit", password=PASSWORD))
                    assert json.loads(found.payload)["dev"]["sn"] == "HQ1328Y6TF6"
                else:
                    wait_for(lambda c=connection: c.snapshot().errors_total["auth"] > 0)  # type: ignore[misc]
                    assert not connection.connected
            finally:
                publisher.stop()
                connection.stop()
        # verification is on: a CA that did not sign the broker's certificate is refused
        (tmp_path / "other").mkdir()
        other = make_ca(tmp_path / "other")
        config = MqttConfig(host="127.0.0.1", port=secured.port, tls=True, username="pvmonit", password=PASSWORD,
                            ca_file=str(other.ca_file), client_id="tls-wrong-ca")
        connection = MqttConnection(config)
        connection.start()
        try:
            wait_for(lambda: connection.snapshot().errors_total["connection"] > 0)
            assert not connection.connected
        finally:
            connection.stop()
    finally:
        secured.stop()
