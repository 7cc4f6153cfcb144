"""Load control on the broker, end to end: a real `pvmonit-exporter run` on the simulated installation, a real
mosquitto, and a relay on the broker — an `mqtt` actuator switched and read back, each actuator a Home Assistant
switch and select, a mode set from Home Assistant accepted on its command topic only, and audited."""

import json
import signal
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from pvmonit_exporter.demo.ports import Simulator
from tests.daemon.test_exporter import sample
from tests.daemon.test_lifecycle import Daemon
from tests.helpers import wait_for
from tests.mqtt.broker import Broker, Listener, retained

pytestmark = pytest.mark.slow

COMMAND_TOPIC, STATE_TOPIC = "cmnd/heater/POWER", "stat/heater/POWER"
DISCOVERY = "homeassistant/device/pvmonit_actuator_heater/config"
ACTUATOR_STATE = "pvmonit/control/heater/state"
SWITCH_COMMAND, MODE_COMMAND = "pvmonit/control/heater/set", "pvmonit/control/heater/mode/set"
FAST_ON = """    on_when: {value: summary.battery_soc, at_least: 0.5}
    off_when: {value: summary.battery_soc, below: 0.3}
"""


class Relay:
    """A relay on the broker, modelled on Tasmota's firmware as its documentation gives it (tasmota.github.io,
    docs/MQTT and docs/Commands: the full topic `%prefix%/%topic%/`, so `Power ON` or `OFF` arrives on
    `cmnd/<topic>/POWER` and the relay reports `ON` or `OFF` on `stat/<topic>/POWER`). `echo=False`: a relay that
    takes the commands and never reports (away, or its state topic misconfigured)."""

    def __init__(self, broker: Broker, *, echo: bool = True) -> None:
        self.echo = echo
        self.commands: list[str] = []
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="test-relay")
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(COMMAND_TOPIC, 1)
        self.client.loop_start()
        wait_for(self.client.is_connected, timeout=10)

    def _message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        payload = bytes(message.payload).decode()
        with self._lock:
            self.commands.append(payload)
        if self.echo and payload in ("ON", "OFF"):
            client.publish(STATE_TOPIC, payload, qos=1)

    def seen(self) -> list[str]:
        with self._lock:
            return list(self.commands)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start(tmp_path: Path, broker: Broker, simulator: Simulator, daemons: list[Daemon], rule: str = FAST_ON,
          confirm_timeout: float = 1) -> Daemon:
    devices = "".join(f"  - name: {name}\n    port: {port}\n    stale_timeout: 5\n    history: false\n"
                      for name, port in simulator.ports.items())
    config = tmp_path / "config.yaml"
    config.write_text(f"""devices:
{devices}mqtt:
  url: {broker.url}
  client_id: daemon-test
  interval: 1
  keepalive: 5
control:
  dry_run: false
  interval: 0.5
  audit_file: control.jsonl
actuators:
  - name: heater
    type: mqtt
    command_topic: {COMMAND_TOPIC}
    state_topic: {STATE_TOPIC}
    confirm_timeout: {confirm_timeout}
rules:
  - actuator: heater
    max_age: 30
{rule}""", encoding="utf-8")
    daemon = Daemon(config, tmp_path)
    daemons.append(daemon)
    return daemon


def audit(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "control.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def card(daemon: Daemon) -> dict[str, Any]:
    (found,) = daemon.state()["control"]["actuators"]
    return found  # type: ignore[no-any-return]


def test_an_mqtt_actuator_switches_a_relay_on_the_broker_reads_it_back_and_is_announced(
        tmp_path: Path, broker: Broker, daemons: list[Daemon]) -> None:
    relay = Relay(broker)
    listener = Listener(broker, (ACTUATOR_STATE,))
    try:
        with Simulator(period=0.5) as simulator:
            daemon = start(tmp_path, broker, simulator, daemons)
            wait_for(lambda: relay.seen() == ["OFF", "ON"], timeout=60)  # safe at start, then the rule
            wait_for(lambda: card(daemon)["read_back"] is True, timeout=30)
            assert sample(daemon.base, "pvmonit_control_actuator_on", actuator="heater") == 1.0
            assert card(daemon)["fault"] is False
            wait_for(lambda: (m := listener.last(ACTUATOR_STATE)) and m.json()["state"] == "ON", timeout=30)
            assert listener.last(ACTUATOR_STATE).json() == {  # type: ignore[union-attr]
                "state": "ON", "mode": "auto", "fault": False, "dry_run": False}

            discovery = retained(broker, DISCOVERY)
            assert discovery is not None
            message = discovery.json()
            assert message["dev"]["ids"] == ["pvmonit_actuator_heater"]
            assert message["dev"]["name"] == "heater"
            assert message["dev"]["mdl"] == "mqtt actuator"
            assert message["dev"]["via_device"] == "pvmonit_exporter_daemon_test"
            assert message["avty"] == [{"t": "pvmonit/status"}]
            assert message["stat_t"] == ACTUATOR_STATE
            assert message["cmps"] == {
                "switch": {"p": "switch", "name": None, "uniq_id": "pvmonit_actuator_heater_switch",
                           "cmd_t": SWITCH_COMMAND, "pl_on": "ON", "pl_off": "OFF",
                           "val_tpl": "{{ value_json.state }}"},
                "mode": {"p": "select", "name": "Mode", "uniq_id": "pvmonit_actuator_heater_mode",
                         "cmd_t": MODE_COMMAND, "ops": ["auto", "on", "off"], "val_tpl": "{{ value_json.mode }}",
                         "ent_cat": "config"},
            }
            daemon.process.send_signal(signal.SIGTERM)
            assert daemon.process.wait(timeout=60) == 0
        assert relay.seen() == ["OFF", "ON", "OFF"]  # off again before the exit
        assert audit(tmp_path)[-1]["rule"]["why"] == "stop"
        assert "Traceback" not in daemon.log()
    finally:
        relay.close()
        listener.close()


def test_a_relay_that_never_reports_is_a_fault_and_goes_back_to_its_safe_state(
        tmp_path: Path, broker: Broker, daemons: list[Daemon]) -> None:
    relay = Relay(broker, echo=False)
    try:
        with Simulator(period=0.5) as simulator:
            daemon = start(tmp_path, broker, simulator, daemons)
            wait_for(lambda: [line for line in audit(tmp_path) if line["veto"] == "fault"], timeout=60)
            assert relay.seen()[:3] == ["OFF", "ON", "OFF"]  # safe at start, the rule, safe again at the fault
            (fault, *_) = [line for line in audit(tmp_path) if line["veto"] == "fault"]
            assert (fault["from"], fault["to"], fault["rule"]["why"]) == ("on", "off", "fault")
            assert daemon.stop() == 0
        assert "control: heater: fault: it reads back off, not on" in daemon.log()
    finally:
        relay.close()


def test_a_mode_set_from_home_assistant_is_taken_on_its_command_topic_only_and_audited(
        tmp_path: Path, broker: Broker, daemons: list[Daemon]) -> None:
    relay = Relay(broker)
    home_assistant = Listener(broker, (ACTUATOR_STATE,))
    try:
        with Simulator(period=0.5) as simulator:
            daemon = start(tmp_path, broker, simulator, daemons)
            wait_for(lambda: relay.seen() == ["OFF", "ON"], timeout=60)
            wait_for(lambda: retained(broker, DISCOVERY), timeout=30)  # subscribed to its command topics by now

            # not a command: a wrong topic (its state, beside its command topics), or a payload not offered
            home_assistant.publish(ACTUATOR_STATE, "off")
            home_assistant.publish("pvmonit/control/heater/mode", "off")
            home_assistant.publish("pvmonit/control/heater", "off")
            home_assistant.publish(MODE_COMMAND, "sometimes")
            home_assistant.publish(SWITCH_COMMAND, "toggle")
            wait_for(lambda: sample(daemon.base, "pvmonit_mqtt_errors_total", kind="command") == 2.0, timeout=30)
            assert card(daemon)["mode"] == "auto"
            assert [line for line in audit(tmp_path) if line["rule"]["why"] == "mode"] == []
            log = daemon.log()
            assert log.count(f"ignored 'sometimes' on {MODE_COMMAND}") == 1
            assert log.count(f"ignored 'toggle' on {SWITCH_COMMAND}") == 1

            # the select: off, then the relay follows and Home Assistant sees the new mode
            home_assistant.publish(MODE_COMMAND, "off")
            wait_for(lambda: relay.seen() == ["OFF", "ON", "OFF"], timeout=30)
            wait_for(lambda: (m := home_assistant.last(ACTUATOR_STATE)) and m.json()["mode"] == "off"
                     and m.json()["state"] == "OFF", timeout=30)
            assert card(daemon)["mode"] == "off"
            (line,) = [line for line in audit(tmp_path) if line["rule"]["why"] == "mode" and line["to"] == "off"
                       and line["veto"] is None and "Home Assistant" in line["rule"]["text"]]
            assert line["actuator"] == "heater"
            assert line["rule"]["text"] == "mode set from Home Assistant: auto → off"
            assert line["rule"]["mode"] == "off"
            assert set(line) == {"time", "actuator", "from", "to", "rule", "veto", "dry_run"}
            assert "control: heater: mode set from Home Assistant: auto → off" in daemon.log()

            # the switch: ON forces the mode on
            home_assistant.publish(SWITCH_COMMAND, "ON")
            wait_for(lambda: relay.seen() == ["OFF", "ON", "OFF", "ON"], timeout=30)
            assert card(daemon)["mode"] == "on"
            assert [line["rule"]["text"] for line in audit(tmp_path) if "Home Assistant" in line["rule"]["text"]] \
                == ["mode set from Home Assistant: auto → off", "mode set from Home Assistant: off → on"]
            assert sample(daemon.base, "pvmonit_mqtt_errors_total", kind="command") == 2.0
            assert daemon.stop() == 0
    finally:
        relay.close()
        home_assistant.close()


def test_a_reload_ends_a_mode_from_home_assistant_keeps_an_unchanged_actuator_and_switches_off_a_changed_one(
        tmp_path: Path, broker: Broker, daemons: list[Daemon]) -> None:
    relay = Relay(broker)
    home_assistant = Listener(broker, (ACTUATOR_STATE,))
    try:
        with Simulator(period=0.5) as simulator:
            daemon = start(tmp_path, broker, simulator, daemons)
            wait_for(lambda: relay.seen() == ["OFF", "ON"], timeout=60)
            wait_for(lambda: retained(broker, DISCOVERY), timeout=30)
            home_assistant.publish(MODE_COMMAND, "off")
            wait_for(lambda: relay.seen() == ["OFF", "ON", "OFF"], timeout=30)
            config = daemon.config
            text = config.read_text(encoding="utf-8")

            # the same actuator, its rule changed: kept as it is (off), on the new connection, in the file's mode
            config.write_text(text.replace("max_age: 30", "max_age: 40"), encoding="utf-8")
            daemon.process.send_signal(signal.SIGHUP)
            wait_for(lambda: relay.seen() == ["OFF", "ON", "OFF", "ON"], timeout=60)
            assert daemon.log().count("configuration reloaded") == 1
            wait_for(lambda: card(daemon)["read_back"] is True, timeout=30)
            assert card(daemon)["mode"] == "auto"

            # its command topic changed: the relay on the old one is switched off once the broker is back
            config.write_text(text.replace(f"command_topic: {COMMAND_TOPIC}", "command_topic: cmnd/other/POWER"),
                              encoding="utf-8")
            daemon.process.send_signal(signal.SIGHUP)
            wait_for(lambda: relay.seen() == ["OFF", "ON", "OFF", "ON", "OFF"], timeout=60)
            assert "control: heater is no longer configured as it was, and cannot be reached now" in daemon.log()
            assert daemon.stop() == 0
        assert relay.seen() == ["OFF", "ON", "OFF", "ON", "OFF"]
        assert "Traceback" not in daemon.log()
    finally:
        relay.close()
        home_assistant.close()
