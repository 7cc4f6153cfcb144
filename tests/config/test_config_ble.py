"""Bluetooth devices in the configuration: `ble_address` instead of `port`, the key inline or in a file, and the
key masked wherever the configuration is shown. (The one-line errors are fixtures in test_config.py.)"""

from pathlib import Path

import pytest
import yaml

from pvmonit_exporter.config import effective_config, load_config
from tests.config import assert_one_line_error, run_cli

KEY = "8f3a9c55d2e14b07a6c3f0e2b1d49a7c"


def write_config(tmp_path: Path, device: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("devices:\n  - name: mppt\n    port: /dev/ttyUSB0\n  - name: shunt\n" + device, encoding="utf-8")
    return path


def test_a_bluetooth_device(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, f'    ble_address: "e1:2b:3c:4d:5e:6f"\n    ble_key: {KEY}\n'))
    mppt, shunt = config.devices
    assert (mppt.source, shunt.source) == ("serial", "ble")
    assert (shunt.ble_address, shunt.ble_key, shunt.port) == ("E1:2B:3C:4D:5E:6F", bytes.fromhex(KEY), "")
    assert KEY not in repr(shunt)


def test_a_key_file_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "shunt.key").write_text(KEY.upper() + "\n", encoding="utf-8")
    config = load_config(write_config(tmp_path, '    ble_address: "E1:2B:3C:4D:5E:6F"\n    ble_key_file: shunt.key\n'))
    assert config.devices[1].ble_key == bytes.fromhex(KEY)


@pytest.mark.slow
def test_check_config_masks_the_key_and_shows_each_device_its_own_keys(tmp_path: Path) -> None:
    path = write_config(tmp_path, f'    ble_address: "E1:2B:3C:4D:5E:6F"\n    ble_key: {KEY}\n')
    result = run_cli("check-config", "--config.file", str(path))
    assert result.returncode == 0, result.stderr
    assert KEY not in result.stdout
    assert KEY[:12] not in result.stdout
    mppt, shunt = yaml.safe_load(result.stdout)["devices"]
    assert "ble_address" not in mppt
    assert "ble_key" not in mppt
    assert "port" not in shunt
    assert "serial_number" not in shunt
    assert (shunt["ble_address"], shunt["ble_key"]) == ("E1:2B:3C:4D:5E:6F", "****9a7c")
    assert yaml.safe_load(result.stdout) == effective_config(load_config(path))


@pytest.mark.slow
def test_a_bad_key_is_never_repeated_in_the_error(tmp_path: Path) -> None:
    wrong = KEY[:-1] + "g"
    path = write_config(tmp_path, f'    ble_address: "E1:2B:3C:4D:5E:6F"\n    ble_key: {wrong}\n')
    result = run_cli("check-config", "--config.file", str(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "devices[1].ble_key: a key is 32 hexadecimal digits" in result.stderr
    assert wrong not in result.stderr


@pytest.mark.slow
def test_an_absent_key_file_follows_the_apikey_file_rules(tmp_path: Path) -> None:
    """check-config warns (the key may be a credential that exists only inside the service); run refuses."""
    path = write_config(tmp_path, '    ble_address: "E1:2B:3C:4D:5E:6F"\n    ble_key_file: absent.key\n')
    checked = run_cli("check-config", "--config.file", str(path))
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.startswith(f"pvmonit-exporter: WARNING: {path}:6: devices[1].ble_key_file: ")
    assert "absent.key is absent: `run` will not start until it exists" in checked.stderr
    assert yaml.safe_load(checked.stdout)["devices"][1]["ble_key"] is None
    assert_one_line_error(run_cli("run", "--config.file", str(path)),
                          f"{path}:6: devices[1].ble_key_file: cannot read {tmp_path / 'absent.key'}: no such file")
