"""The `mqtt` section and `emoncms: via: mqtt`: what a valid file gives, and the password never shown."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pvmonit_exporter.config import MqttConfig, load_config

MINIMAL = "devices:\n  - name: mppt\n    port: /dev/ttyUSB0\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(MINIMAL + text, encoding="utf-8")
    return path


def test_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "mqtt:\n  url: mqtt://broker.local\n"))
    assert config.mqtt == MqttConfig(host="broker.local", port=1883, client_id=f"pvmonit-{socket.gethostname()}")
    assert (config.mqtt.topic_prefix, config.mqtt.interval, config.mqtt.keepalive, config.mqtt.homeassistant,
            config.mqtt.discovery_prefix) == ("pvmonit", 10.0, 60.0, True, "homeassistant")


def test_tls_password_file_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "mqtt.password").write_text("s3cret\n", encoding="utf-8")
    config = load_config(write(tmp_path, "mqtt:\n  url: mqtts://broker.local\n  username: pvmonit\n"
                                         "  password_file: mqtt.password\n  ca_file: ca.pem\n"))
    assert config.mqtt is not None
    assert (config.mqtt.port, config.mqtt.tls, config.mqtt.password) == (8883, True, "s3cret")
    assert config.mqtt.ca_file == str(tmp_path / "ca.pem")
    assert "s3cret" not in repr(config.mqtt)


@pytest.mark.slow
def test_check_config_never_prints_the_password_and_loads_back(tmp_path: Path) -> None:
    (tmp_path / "mqtt.password").write_text("s3cret-password\n", encoding="utf-8")
    path = write(tmp_path, "mqtt:\n  url: mqtt://broker.local:1884\n  username: pvmonit\n"
                           "  password_file: mqtt.password\n")
    result = subprocess.run([sys.executable, "-m", "pvmonit_exporter", "check-config", "--config.file", str(path)],
                            capture_output=True, text=True, check=True)
    assert "s3cret" not in result.stdout + result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["mqtt"]["url"] == "mqtt://broker.local:1884"
    again = tmp_path / "again.yaml"
    again.write_text(result.stdout, encoding="utf-8")
    assert load_config(again).mqtt == load_config(path).mqtt


def test_emoncms_via_mqtt(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "mqtt:\n  url: mqtt://broker.local\nemoncms:\n  via: mqtt\n"
                                         "  queue_dir: queue\n"))
    assert config.emoncms is not None
    assert (config.emoncms.via, config.emoncms.topic, config.emoncms.apikey) == ("mqtt", "emon", "")
    assert config.emoncms.url == "mqtt://broker.local:1883/emon"


@pytest.mark.slow
def test_without_mqtt_paho_is_not_imported(tmp_path: Path) -> None:
    """The daemon stays light without an mqtt section: building its pipeline loads nothing of paho."""
    path = write(tmp_path, "")
    code = ("import sys; from pvmonit_exporter.daemon import Pipeline; from pvmonit_exporter.charts import ChartRing;"
            f"from pvmonit_exporter.config import load_config; Pipeline(load_config({str(path)!r}), ChartRing());"
            "print(any(m.startswith('paho') for m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
