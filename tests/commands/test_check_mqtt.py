"""`check-config --mqtt` against a real mosquitto: connected, allowed to publish under the prefix or not (an ACL),
and the entities it would announce."""

import subprocess
import sys
from pathlib import Path

import pytest

from pvmonit_exporter.commands.check_mqtt import announcement_lines
from pvmonit_exporter.config import parse_config
from tests.mqtt.broker import Broker

PASSWORD = "check-pass"  # noqa: S105 - the test broker's


def check(tmp_path: Path, broker: Broker, **mqtt: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "password").write_text(PASSWORD, encoding="utf-8")
    lines = [f"  {key}: {value}" for key, value in {"url": broker.url, **mqtt}.items()]
    config = tmp_path / "config.yaml"
    config.write_text("devices:\n  - name: mppt\n    port: /dev/ttyUSB0\n  - name: shunt\n    port: auto\n"
                      "    serial_number: HQ2020ABCDE\nmqtt:\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "pvmonit_exporter", "check-config", "--mqtt", "--config.file",
                           str(config)], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.slow
def test_check_config_mqtt_connects_publishes_and_lists_entities(tmp_path: Path, broker: Broker) -> None:
    result = check(tmp_path, broker)
    assert result.returncode == 0, result.stderr
    assert f"# mqtt: connected to {broker.url}" in result.stdout
    assert "# mqtt: may publish under pvmonit/" in result.stdout
    assert "# mqtt: device shunt: homeassistant/device/pvmonit_hq2020abcde/config" in result.stdout
    assert "sensor <object_id>_yield_total_joules: energy, total_increasing, kWh" in result.stdout


@pytest.mark.slow
def test_check_config_mqtt_says_when_the_broker_refuses(tmp_path: Path) -> None:
    denied = Broker(tmp_path, users={"pvmonit": PASSWORD}, acl="user pvmonit\ntopic read elsewhere/#\n")
    denied.start()
    try:
        refused = check(tmp_path, denied, username="pvmonit", password_file="password")  # noqa: S106 - a file name
        assert refused.returncode == 2
        assert "did not come back" in refused.stderr
        assert "the broker's ACL may refuse publishing" in refused.stderr
        wrong = check(tmp_path, denied, username="nobody", password_file="password")  # noqa: S106 - a file name
        assert wrong.returncode == 2
        assert "cannot connect" in wrong.stderr
        assert PASSWORD not in wrong.stdout + wrong.stderr
    finally:
        denied.stop()


@pytest.mark.slow
def test_demo_with_a_wrong_broker_url_is_one_line() -> None:
    result = subprocess.run([sys.executable, "-m", "pvmonit_exporter", "demo", "--mqtt", "tcp://127.0.0.1:1883"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr == ("pvmonit-exporter: --mqtt: 'tcp://127.0.0.1:1883' must start with mqtt:// or mqtts:// "
                             "(TLS)\n")


def test_check_config_mqtt_lists_each_actuators_switch_select_and_topics() -> None:
    text = ("devices:\n  - name: mppt\n    port: /dev/ttyUSB0\nmqtt:\n  url: mqtt://127.0.0.1:1883\n"
            "actuators:\n  - {name: heater, type: mqtt, command_topic: cmnd/heater/POWER, state_topic: "
            "stat/heater/POWER}\n")
    lines = announcement_lines(parse_config(text, "c.yaml"))
    assert ("actuator heater: homeassistant/device/pvmonit_actuator_heater/config (a switch and a select), state on "
            "pvmonit/control/heater/state, commands on pvmonit/control/heater/set (ON, OFF) and "
            "pvmonit/control/heater/mode/set (auto, on, off)") in lines
    quiet = announcement_lines(parse_config(text.replace("1883\n", "1883\n  homeassistant: false\n"), "c.yaml"))
    assert "actuator heater: state on pvmonit/control/heater/state" in quiet
    assert "homeassistant: false: no discovery is published, no command is taken" in quiet
