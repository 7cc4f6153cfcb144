"""config.load_config on one fixture per error, `check-config` and `run` through the real command line, and
config.yaml.example (valid, and every key documented)."""

import dataclasses
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from pvmonit_exporter.config import (
    DEFAULT_AUTO_PORT_PATTERNS,
    DEFAULT_EMONCMS_FIELDS,
    Config,
    ConfigError,
    DeviceConfig,
    EmoncmsConfig,
    MqttConfig,
    ProbeConfig,
    WebConfig,
    effective_config,
    load_config,
)
from pvmonit_exporter.config.checks import node_name_problem
from pvmonit_exporter.config.schema import ActuatorConfig, ControlConfig, RuleConfig
from tests.config import (
    CLI_TIMEOUT,
    ROOT,
    assert_one_line_error,
    run_cli,
    run_cli_unprivileged,
    run_main,
    world_readable_dir,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLE = ROOT / "config.yaml.example"
EXAMPLE_KEY_FILE = "/etc/pvmonit-exporter/emoncms.key"
INLINE_KEY = "0123456789abcdef0123456789abcdef"  # valid_full.yaml's emoncms.apikey

# Fixture (tests/config/fixtures/NAME.yaml) → (the line the error names, the key path it names, a fragment of its
# message). No line: the problem has no place in the file; an empty key path: it is about the file as a whole.
ERRORS: dict[str, tuple[int | None, str, str]] = {
    "bad_yaml": (4, "", "invalid YAML: expected ',' or ']'"),
    "emoncms_key_file_with_comment": (6, "emoncms.apikey_file", "the key must be 32 hexadecimal digits (emoncms "
                                                                "refuses any other); found spaces, line breaks"),
    "emoncms_key_with_space": (6, "emoncms.apikey", "the key must be 32 hexadecimal digits (emoncms refuses any "
                                                  "other); found spaces, line breaks"),
    "two_auto_without_serial": (5, "devices[1].port", "only one `auto` device may go without serial_number"),
    "duplicate_key": (4, "", "invalid YAML: key 'devices' appears twice in the same mapping"),
    "empty": (None, "", "the file is empty"),
    "comments_only": (None, "", "the file is empty"),
    "top_not_mapping": (None, "", "must be a mapping, got a list"),
    "unknown_key": (1, "", "unknown key 'stale_timout' (did you mean 'stale_timeout'?)"),
    "unknown_key_typo": (3, "devices[0]", "unknown key 'prot' (did you mean 'port'?)"),
    "unknown_key_before_other_errors": (6, "devices[1]", "unknown key 'stale_timeuot' (did you mean 'stale_timeout'?)"),
    "unknown_device_key": (6, "devices[1]", "unknown key 'baud' (allowed here: ble_address, ble_key, ble_key_file, "
                                         "emoncms_fields, emoncms_node, hex_timeout, history,"),
    "unknown_web_key": (2, "web", "unknown key 'listen' (did you mean 'listen_address'?)"),
    "emoncms_unknown_label": (9, "emoncms.fields.bmv[2]", "unknown label 'soc' (did you mean 'SOC'?)"),
    "device_unknown_label": (4, "devices[0].emoncms_fields[1]", "unknown label 'VBAT' (the labels"),
    "emoncms_text_label": (9, "emoncms.fields.mppt[1]", "'PID' is text: emoncms stores only numbers"),
    "tag_float_not_a_number": (1, "", "invalid YAML: 'abc' is not a valid !!float"),
    "tag_python_object": (2, "", "invalid YAML: could not determine a constructor for the tag "
                              "'!!python/object/apply:os.system'"),
    "invalid_date": (4, "", "invalid YAML: '2026-02-30' is not a valid !!timestamp: day is out of range"),
    "invalid_timestamp": (4, "", "invalid YAML: '2026-01-01 25:61:00' is not a valid !!timestamp"),
    "date_where_text_is_expected": (2, "devices[0].name", "must be a non-empty string, got date"),
    "billion_laughs": (6, "", "anchors and aliases expand to more than 10000 values; refused before expanding"),
    "recursive_alias": (1, "", "invalid YAML: an alias refers to a node that contains it"),
    "deep_nesting": (1, "", "invalid YAML: lists or mappings nested more than 32 deep"),
    "not_utf8": (2, "", "not UTF-8 text: byte 0xe9 (save the file as UTF-8)"),
    "directory": (None, "", "is a directory, not a configuration file"),
    "wrong_type_port": (5, "devices[1].port", "must be a non-empty string, got int"),
    "missing_port": (2, "devices[0].port", "missing required key"),
    "missing_name": (2, "devices[0].name", "missing required key"),
    "duplicate_name": (4, "devices[1].name", "duplicate device name 'mppt' (also devices[0])"),
    "bad_device_name": (2, "devices[0].name", "'my mppt' must be 1-64 letters, digits"),
    "relative_port": (3, "devices[0].port", "'ttyUSB0' must be an absolute path"),
    "same_port_twice": (5, "devices[1].port", "/dev/ttyUSB0 is already used by devices[0]"),
    "serial_number_without_auto": (4, "devices[0].serial_number", "is only used with port: auto"),
    "devices_not_list": (1, "devices", "must be a list, got a mapping"),
    "device_not_mapping": (2, "devices[0]", "must be a mapping, got a string"),
    "device_emoncms_fields_not_list": (4, "devices[0].emoncms_fields", "must be a list of VE.Direct labels"),
    "no_devices_or_probes": (None, "devices", "configure at least one device or probe"),
    "zero_stale_timeout": (1, "stale_timeout", "must be from 1 to 86,400 s, got 0"),
    "boolean_stale_timeout": (4, "devices[0].stale_timeout", "must be a number, got a boolean"),
    "nan_stale_timeout": (1, "stale_timeout", "must be a number"),
    "huge_stale_timeout": (2, "stale_timeout", "must be a number"),
    "bad_listen_address": (2, "web.listen_address", "'localhost' is not HOST:PORT"),
    "listen_port_out_of_range": (2, "web.listen_address", "':70000' is not HOST:PORT"),
    "listen_port_superscript_digit": (3, "web.listen_address", "is not HOST:PORT"),
    "battery_range_inverted": (3, "web.battery_voltage_max", "must be greater than battery_voltage_min"),
    "relative_auto_port_pattern": (1, "auto_port_patterns", "must be a non-empty list of absolute glob patterns"),
    "probe_missing_command": (2, "probes[0].command", "missing required key for a command probe"),
    "probe_missing_path": (2, "probes[0].path", "missing required key for a w1 probe"),
    "probe_missing_port": (2, "probes[0].port", "missing required key for a serial probe"),
    "probe_bad_type": (3, "probes[0].type", "must be one of command, serial, w1, file, got 'modbus'"),
    "probe_bad_quantity": (5, "probes[0].quantity", "must be one of temperature, current, power, got 'humidity'"),
    "probe_command_string": (4, "probes[0].command", "must be a non-empty list of strings"),
    "probe_key_of_other_type": (5, "probes[0].path", "does not apply to a command probe"),
    "probe_min_not_below_max": (7, "probes[0].max", "must be greater than min"),
    "probe_power_voltage_not_current": (6, "probes[0].power_voltage", "only applies to a current probe"),
    "web_consumption_ratios_inverted": (3, "web.consumption_alarm_ratio", "needs consumption_warning_ratio < "
                                        "consumption_alarm_ratio <= 1, got 0.8 and 0.5"),
    "web_temperature_bounds_unordered": (2, "web.temperature_warning_low",
                                         "needs temperature_alarm_low < temperature_warning_low < "
                                         "temperature_warning_high < temperature_alarm_high, got 5, 4, 26, 30"),
    "probe_power_max_without_voltage": (6, "probes[0].power_max", "needs power_voltage"),
    "device_bad_emoncms_node": (4, "devices[0].emoncms_node", "'BMV#712': emoncms would drop '#'"),
    "device_history_not_boolean": (4, "devices[0].history", "must be true or false, got a string"),
    "emoncms_org_long_node": (4, "devices[0].emoncms_node", "longer than the 16 characters emoncms.org allows"),
    "probe_duplicate_name": (6, "probes[1].name", "duplicate probe name 'cpu'"),
    "probe_zero_baud": (5, "probes[0].baud", "must be a whole number from 50 to 4,000,000, got 0"),
    "emoncms_both_keys": (6, "emoncms.apikey", "set exactly one of apikey or apikey_file"),
    "emoncms_no_key": (4, "emoncms.apikey", "set exactly one of apikey or apikey_file"),
    "emoncms_apikey_file_empty": (6, "emoncms.apikey_file", "keys/blank.key is empty"),
    "emoncms_bad_url": (5, "emoncms.url", "'emoncms.org' must start with http:// or https://"),
    # PvMonit's $EMONCMS_URL_INPUT_JSON_POST pasted as is: the base URL is suggested, the query (a key?) not shown.
    "emoncms_url_input_post_json": (5, "emoncms.url", "ends in '/input/post.json', an input API address; the "
                                                   "exporter wants emoncms's own address and adds the API itself: "
                                                   "did you mean 'http://emoncms.org/'?"),
    "emoncms_url_input_post": (5, "emoncms.url", "ends in '/input/post', an input API address; "),
    "emoncms_url_input_bulk": (5, "emoncms.url", "did you mean 'http://192.168.1.20/emoncms/'?"),
    "emoncms_url_input_bulk_json": (5, "emoncms.url", "ends in '/input/bulk.json', an input API address; the exporter "
                                                   "wants emoncms's own address and adds the API itself: did you "
                                                   "mean 'https://emoncms.org/'?"),
    "emoncms_missing_queue_dir": (4, "emoncms.queue_dir", "missing required key"),
    "mqtt_bad_scheme": (5, "mqtt.url", "'tcp://192.168.1.10:1883' must start with mqtt:// or mqtts:// (TLS)"),
    "mqtt_password_file_unreadable": (7, "mqtt.password_file", "keys: is a directory, not a key file"),
    "mqtt_interval_out_of_range": (6, "mqtt.interval", "must be from 1 to 300 s, got 600"),
    "mqtt_keepalive_out_of_range": (6, "mqtt.keepalive", "must be from 5 to 600 s, got 2"),
    "mqtt_bad_topic_prefix": (6, "mqtt.topic_prefix", "'pvmonit/#' must be topic levels of letters, digits"),
    "mqtt_ca_file_without_tls": (6, "mqtt.ca_file", "is only used with an mqtts:// url"),
    "mqtt_password_in_url": (5, "mqtt.url", "must be mqtt://HOST or mqtt://HOST:PORT (a port from 1 to 65535; the "
                                         "user goes in username, the password in password_file)"),
    "mqtt_object_id_collision": (4, "devices[1].name", "its Home Assistant object id 'pvmonit_shed_mppt' is also "
                                                    "devices[0].name's"),
    "emoncms_via_mqtt_without_mqtt": (5, "emoncms.via", "mqtt needs an mqtt section"),
    "emoncms_via_mqtt_with_url": (8, "emoncms.url", "is not used with via: mqtt"),
    "emoncms_topic_without_via_mqtt": (7, "emoncms.topic", "is only used with via: mqtt"),
    "emoncms_bad_payload": (8, "emoncms.payload", "must be one of pvmonit, si, got 'json'"),
    "emoncms_interval_below_one": (8, "emoncms.interval", "must be from 1 to 86,400 s, got 0.5"),
    "emoncms_fractional_batch_size": (8, "emoncms.batch_size", "must be a whole number from 1 to 10,000 rows, got 1.5"),
    "emoncms_unknown_fields_kind": (9, "emoncms.fields", "unknown key 'solar' (allowed here: bmv, charger, inverter,"),
    "emoncms_not_mapping": (4, "emoncms", "must be a mapping, got a string"),
    "probe_on_device_port": (10, "probes[0].port", "/dev/ttyUSB1 is also devices[1].port: two readers on one port"),
    "two_probes_one_port": (8, "probes[1].port", "/dev/ttyUSB3 is also probes[0].port"),
    "emoncms_same_node_and_input": (7, "devices[1].emoncms_node", "input 'CS' of emoncms node 'mppt' would also come "
                                                               "from devices[0].name: one would overwrite the other"),
    "emoncms_two_probes_one_input": (11, "probes[1].emoncms_input", "input 'temp' of emoncms node '1' would also come "
                                                                "from probes[0].emoncms_input"),
    "emoncms_probe_input_on_device_node": (12, "probes[0].emoncms_input", "input 'V' of emoncms node 'solar' would "
                                                                      "also come from devices[0].name"),
    "emoncms_huge_timeout": (9, "emoncms.timeout", "must be from 1 to 600 s, got 1e+308"),
    "emoncms_huge_batch_size": (9, "emoncms.batch_size", "must be a whole number from 1 to 10,000 rows, got "
                                                         "1000000000"),
    "emoncms_huge_interval": (9, "emoncms.interval", "must be from 1 to 86,400 s, got 1e+300"),
    "emoncms_tiny_queue": (8, "emoncms.max_queue_rows", "must be a whole number from 100 to 10,000,000 rows, got 10"),
    "probe_huge_interval": (7, "probes[0].interval", "must be from 0.1 to 86,400 s, got 1e+20"),
    "probe_tiny_timeout": (6, "probes[0].timeout", "must be from 0.1 to 3,600 s, got 0.001"),
    "probe_huge_baud": (6, "probes[0].baud", "must be a whole number from 50 to 4,000,000, got 1000000000"),
    "probe_huge_scale": (6, "probes[0].scale", "must be from -1,000,000,000 to 1,000,000,000, got 1e+300"),
    "web_negative_voltage": (2, "web.battery_voltage_min", "must be from 0 to 1,000 V, got -12"),
    "number_as_yaml11_text": (5, "devices[0].stale_timeout", "got the text '1e3': YAML reads an exponent without a "
                                                          "dot as text; write 1.0e+03"),
    "device_huge_stale_timeout": (4, "devices[0].stale_timeout", "must be from 1 to 86,400 s, got 1e+12"),
    "ble_key_not_hex": (4, "devices[0].ble_key", "a key is 32 hexadecimal digits"),
    "ble_key_file_short": (4, "devices[0].ble_key_file", "a key is 32 hexadecimal digits"),
    "ble_bad_address": (3, "devices[0].ble_address", "'E1-2B-3C-4D-5E-6F' is not a Bluetooth address"),
    "ble_port_and_address": (4, "devices[0].ble_address", "set either port (a VE.Direct cable) or ble_address"),
    "ble_no_key": (2, "devices[0].ble_key", "set exactly one of ble_key or ble_key_file"),
    "ble_both_keys": (4, "devices[0].ble_key", "set exactly one of ble_key or ble_key_file"),
    "ble_key_without_address": (4, "devices[0].ble_key", "is only used with ble_address"),
    "emoncms_key_pvmonit_placeholder": (6, "emoncms.apikey", "the key is PvMonit's placeholder XXXX… (24 X)"),
    "emoncms_key_file_pvmonit_placeholder": (6, "emoncms.apikey_file", "the key is PvMonit's placeholder XXXX…"),
    "emoncms_key_too_short": (6, "emoncms.apikey", "the key must be 32 hexadecimal digits (emoncms refuses any "
                                                   "other); found 31 characters"),
    "emoncms_key_not_hex": (6, "emoncms.apikey", "found characters that are not hexadecimal digits"),
    # A password holding '/', '#' or '?' unencoded: the parsers (urllib3's as urllib's) end the host there, so
    # the password's end is unknown and the URL is not shown at all.
    "emoncms_url_password_with_slash": (5, "emoncms.url", "has an '@' after the host: a user name or password "
                                                          "holding '/', '?', '#' or '@' must be percent-encoded"),
    "emoncms_url_password_with_hash": (5, "emoncms.url", "has an '@' after the host"),
    "emoncms_url_password_with_question_mark": (5, "emoncms.url", "has an '@' after the host"),
    "emoncms_url_password_with_space": (5, "emoncms.url", "'http://pvmonit:****@emonpi.local/emoncms' holds a "
                                                          "space or a control character: percent-encode it"),
    "emoncms_url_query": (5, "emoncms.url", "'https://emoncms.org/emoncms?****' has a query ('?') or a fragment"),
    "emoncms_url_bad_port": (5, "emoncms.url", "'http://pvmonit:****@emonpi.local:80a/emoncms' must name a host, "
                                               "and a port from 1 to 65535"),
    "tag_bool_maybe": (4, "", "invalid YAML: 'maybe' is not a valid !!bool"),
    "tag_timestamp_not_a_date": (4, "", "invalid YAML: 'notadate' is not a valid !!timestamp"),
    "ble_same_address_twice": (6, "devices[1].ble_address", "E1:2B:3C:4D:5E:6F is already used by devices[0]"),
}
VALID = ("valid_minimal", "valid_full")
# Key files `check-config` cannot read: a warning from check-config (exit 0), an error from `run`.
# Fixture → (the line and key path of the warning, a fragment of it, a fragment of run's error).
KEY_WARNINGS: dict[str, tuple[int, str, str, str]] = {
    "emoncms_apikey_file_missing": (
        6, "emoncms.apikey_file", "/nonexistent/pvmonit-exporter/emoncms.key is absent: `run` will not start until",
        "cannot read /nonexistent/pvmonit-exporter/emoncms.key: no such file"),
    "emoncms_apikey_credential_absent": (
        7, "emoncms.apikey_file", "emoncms.key is absent: expected while the service is stopped, as systemd creates "
                               "it from LoadCredential= only for the running service",
        "(systemd creates it from LoadCredential= only inside the running service: start the service"),
}
# `run` must refuse these before it starts anything (a sample: every kind of section).
RUN_SAMPLE = ("bad_yaml", "unknown_key", "wrong_type_port", "probe_missing_command", "emoncms_both_keys",
              "bad_listen_address", "emoncms_key_pvmonit_placeholder", "emoncms_key_file_pvmonit_placeholder",
              "tag_bool_maybe")


def fixture(name: str) -> str:
    return str(FIXTURES / f"{name}.yaml")


def where(file: str, line: int | None, key_path: str) -> str:
    """The start of ConfigError's line: `FILE:LINE: KEY.PATH: `, without `LINE` when the problem has no place in
    the file, `FILE:LINE: ` when it is about the file as a whole."""
    place = file if line is None else f"{file}:{line}"
    return f"{place}: {key_path}: " if key_path else f"{place}: "


# The same errors through the real command line, a Python start-up each: a sample of every kind of file error.
CLI_SAMPLE = ("bad_yaml", "empty", "unknown_key", "emoncms_key_with_space")


@pytest.fixture(scope="module")
def cli_results() -> dict[tuple[str, str], subprocess.CompletedProcess[str]]:
    """`check-config` on a sample and `run` on a sample, concurrently, in subprocesses."""
    jobs = [("check-config", name) for name in CLI_SAMPLE] + [("run", name) for name in RUN_SAMPLE]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda job: run_cli(job[0], "--config.file", fixture(job[1])), jobs)
        return dict(zip(jobs, results, strict=True))


def test_every_fixture_is_listed() -> None:
    on_disk = {path.stem for path in FIXTURES.glob("*.yaml")}  # directory.yaml is a directory on purpose
    assert on_disk == set(ERRORS) | set(VALID) | set(KEY_WARNINGS)


# --- one error per fixture ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_load_config_error(name: str) -> None:
    line, key_path, fragment = ERRORS[name]
    file = fixture(name)
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    error = caught.value
    assert (error.file, error.line, error.key_path) == (file, line, key_path)
    assert fragment in error.message
    assert str(error) == where(file, line, key_path) + error.message
    assert "\n" not in str(error)


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_check_config_error(name: str) -> None:
    """`main`, in this process: the whole command but the interpreter's start-up."""
    line_number, key_path, fragment = ERRORS[name]
    file = fixture(name)
    line = assert_one_line_error(run_main("check-config", "--config.file", file), where(file, line_number, key_path))
    assert fragment in line


@pytest.mark.slow
@pytest.mark.parametrize("name", CLI_SAMPLE)
def test_check_config_error_through_the_command_line(
        name: str, cli_results: dict[tuple[str, str], subprocess.CompletedProcess[str]]) -> None:
    """The subprocess answers what `main` in-process answers (test_check_config_error), to the byte."""
    line_number, key_path, fragment = ERRORS[name]
    real = cli_results["check-config", name]
    line = assert_one_line_error(real, where(fixture(name), line_number, key_path))
    assert fragment in line
    in_process = run_main("check-config", "--config.file", fixture(name))
    assert (real.returncode, real.stdout, real.stderr) == (in_process.returncode, in_process.stdout, in_process.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("name", RUN_SAMPLE)
def test_run_refuses_bad_config(name: str,
                                cli_results: dict[tuple[str, str], subprocess.CompletedProcess[str]]) -> None:
    line_number, key_path, fragment = ERRORS[name]
    line = assert_one_line_error(cli_results["run", name], where(fixture(name), line_number, key_path))
    assert fragment in line


@pytest.mark.slow
def test_config_file_without_command_runs_and_refuses_bad_config() -> None:
    file = fixture("wrong_type_port")
    line = assert_one_line_error(run_cli("--config.file", file), where(file, 5, "devices[1].port"))
    assert "must be a non-empty string" in line


@pytest.mark.slow
def test_run_refuses_bad_listen_address_flag() -> None:
    result = run_cli("run", "--config.file", fixture("valid_minimal"), "--web.listen-address", "localhost")
    line = assert_one_line_error(result, "--web.listen-address: ")
    assert "'localhost' is not HOST:PORT" in line


# --- key files that cannot be read while the service is stopped ----------------------------------------


def assert_one_warning(result: subprocess.CompletedProcess[str], file: str, line: int, key_path: str) -> str:
    """check-config's contract for a warning: exit 0, the configuration printed, one WARNING line on stderr."""
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"# {file}: valid\n")
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"pvmonit-exporter: WARNING: {where(file, line, key_path)}"), result.stderr
    return result.stderr.rstrip("\n")


@pytest.mark.parametrize("name", sorted(KEY_WARNINGS))
def test_check_config_warns_of_an_unreadable_key_file(name: str) -> None:
    line, key_path, warning, _ = KEY_WARNINGS[name]
    file = fixture(name)
    result = run_main("check-config", "--config.file", file)
    assert warning in assert_one_warning(result, file, line, key_path)
    printed = yaml.safe_load(result.stdout)
    assert printed["emoncms"]["apikey"] is None
    config = load_config(file, key_required=False)
    assert config.emoncms is not None
    assert config.emoncms.apikey == ""
    assert len(config.warnings) == 1


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(KEY_WARNINGS))
def test_run_refuses_an_unreadable_key_file(name: str) -> None:
    line_number, key_path, _, error = KEY_WARNINGS[name]
    file = fixture(name)
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    assert (caught.value.line, caught.value.key_path) == (line_number, key_path)
    line = assert_one_line_error(run_cli("run", "--config.file", file), where(file, line_number, key_path))
    assert error in line


def test_a_key_in_the_credentials_directory_is_a_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside the service, $CREDENTIALS_DIRECTORY names the credentials' directory (the path may differ)."""
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "credentials"))
    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        "devices:\n  - name: a\n    port: /dev/ttyUSB0\n"
        f"emoncms:\n  url: http://127.0.0.1/emoncms\n  apikey_file: {tmp_path}/credentials/emoncms.key\n"
        "  queue_dir: /tmp/q\n",
        encoding="utf-8",
    )
    config = load_config(config_file, key_required=False)
    assert "expected while the service is stopped" in config.warnings[0]
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    config = load_config(config_file, key_required=False)
    assert "expected while the service is stopped" not in config.warnings[0]


@pytest.mark.slow
def test_check_config_warns_of_a_key_file_this_user_cannot_read() -> None:
    with world_readable_dir() as work:
        key_file = work / "emoncms.key"
        key_file.write_text("0123456789abcdef0123456789abcdef\n", encoding="utf-8")
        key_file.chmod(0o000)
        path = work / "config.yaml"
        path.write_text("devices:\n  - name: a\n    port: /dev/ttyUSB0\n"
                        f"emoncms:\n  url: http://127.0.0.1/emoncms\n  apikey_file: {key_file}\n  queue_dir: q\n",
                        encoding="utf-8")
        path.chmod(0o644)
        result = run_cli_unprivileged("check-config", "--config.file", str(path), work=work)
    line = assert_one_warning(result, str(path), 6, "emoncms.apikey_file")
    assert "cannot be read by this user (uid " in line
    assert "0123456789abcdef" not in result.stdout + result.stderr


# --- files that cannot be read --------------------------------------------------------------------------


def test_no_such_file(tmp_path: Path) -> None:
    file = str(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    assert str(caught.value) == f"{file}: no such file"
    for command in ("check-config", "run"):
        line = assert_one_line_error(run_main(command, "--config.file", file), f"{file}: ")
        assert line == f"pvmonit-exporter: {file}: no such file"


@pytest.mark.slow
def test_fifo_does_not_hang(tmp_path: Path) -> None:
    """A FIFO nobody writes to would block an ordinary open() forever."""
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    line = assert_one_line_error(run_cli("check-config", "--config.file", str(fifo)), f"{fifo}: ")
    assert line.endswith("is not a regular file (a device, a FIFO or a socket)")


def test_too_large(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# padding\n" * 200_000, encoding="utf-8")
    line = assert_one_line_error(run_main("check-config", "--config.file", str(path)), f"{path}: ")
    assert line.endswith("larger than 1024 KiB: not a configuration file")


def test_python_tag_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "config.yaml"
    path.write_text(f"devices:\n  - name: !!python/object/apply:os.system [touch {marker}]\n    port: /dev/ttyUSB0\n",
                    encoding="utf-8")
    line = assert_one_line_error(run_main("check-config", "--config.file", str(path)), f"{path}:2: invalid YAML: ")
    assert "could not determine a constructor" in line
    assert not marker.exists()


@pytest.mark.slow
def test_permission_denied() -> None:
    with world_readable_dir() as work:
        path = work / "config.yaml"
        path.write_text((FIXTURES / "valid_minimal.yaml").read_text(encoding="utf-8"), encoding="utf-8")
        path.chmod(0o000)
        result = run_cli_unprivileged("check-config", "--config.file", str(path), work=work)
    line = assert_one_line_error(result, f"{path}: ")
    assert line == f"pvmonit-exporter: {path}: permission denied"


# --- check-config on valid files ------------------------------------------------------------------------


def check_config_output(file: str) -> tuple[dict[str, object], str]:
    """`check-config` on a valid file: (the printed YAML, parsed; the raw stdout)."""
    result = run_main("check-config", "--config.file", file)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(f"# {file}: valid\n")
    printed = yaml.safe_load(result.stdout)
    assert isinstance(printed, dict)
    assert printed == effective_config(load_config(file))
    return printed, result.stdout


def test_check_config_minimal_fills_in_defaults() -> None:
    printed, _ = check_config_output(fixture("valid_minimal"))
    assert printed == {
        "devices": [{"name": "mppt", "port": "/dev/ttyUSB0", "serial_number": None, "stale_timeout": 5.0,
                     "emoncms_fields": None, "emoncms_node": None, "history": True, "hex_timeout": None}],
        "probes": [],
        "emoncms": None,
        "web": {"listen_address": ":9737", "battery_voltage_min": 11.0, "battery_voltage_max": 15.0,
                "pv_power_max": 400.0, "consumption_max": 1500.0, "consumption_warning_ratio": 0.5,
                "consumption_alarm_ratio": 0.8, "temperature_warning_low": 10.0, "temperature_warning_high": 26.0,
                "temperature_alarm_low": 5.0, "temperature_alarm_high": 30.0},
        "mqtt": None,
        "stale_timeout": 5.0,
        "auto_port_patterns": list(DEFAULT_AUTO_PORT_PATTERNS),
    }


def test_check_config_full_masks_inline_key() -> None:
    file = fixture("valid_full")
    assert INLINE_KEY in Path(file).read_text(encoding="utf-8")
    printed, stdout = check_config_output(file)
    assert INLINE_KEY not in stdout
    assert INLINE_KEY[:12] not in stdout
    emoncms = printed["emoncms"]
    assert isinstance(emoncms, dict)
    assert emoncms["apikey"] == "****cdef"
    # Defaults filled in where the file says nothing.
    assert emoncms["fields"]["inverter"] == list(DEFAULT_EMONCMS_FIELDS["inverter"])
    assert emoncms["fields"]["mppt"] == ["PPV", "V"]
    assert emoncms["url"] == "https://emoncms.example.org/emoncms"
    probes = printed["probes"]
    assert isinstance(probes, list)
    battery_box = next(p for p in probes if p["name"] == "battery_box")
    assert (battery_box["interval"], battery_box["timeout"], battery_box["scale"], battery_box["offset"]) == (
        60.0, 10.0, 1.0, 0.0)
    devices = printed["devices"]
    assert isinstance(devices, list)
    assert [d["stale_timeout"] for d in devices] == [7.0, 10.0, 7.0]  # the global value, or the device's own
    # Node names as emoncms keeps them: a space kept, a YAML number taken as its text.
    assert [d["emoncms_node"] for d in devices] == [None, "712 Smart", None]
    assert [d["history"] for d in devices] == [True, False, True]  # default true; the file turns one off
    assert emoncms["probe_node"] == "1"


@pytest.mark.parametrize("key", ["fedcba9876543210fedcba9876543210", "FEDCBA9876543210FEDCBA9876543210"])
def test_check_config_masks_key_from_file(tmp_path: Path, key: str) -> None:
    key_file = tmp_path / "emoncms.key"
    key_file.write_text(key + "\n", encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(
        "devices:\n  - name: mppt\n    port: /dev/ttyUSB0\n"
        f"emoncms:\n  url: http://pi.local/emoncms\n  apikey_file: {key_file}\n  queue_dir: {tmp_path / 'q'}\n",
        encoding="utf-8",
    )
    assert load_config(config).emoncms is not None
    printed, stdout = check_config_output(str(config))
    assert key not in stdout
    emoncms = printed["emoncms"]
    assert isinstance(emoncms, dict)
    assert emoncms["apikey"] == "****" + key[-4:]


# --- config.yaml.example --------------------------------------------------------------------------------


@pytest.fixture
def example(tmp_path: Path) -> tuple[str, dict[str, object]]:
    """config.yaml.example with its apikey_file pointing at a real key file: (its text, its parsed YAML)."""
    key_file = tmp_path / "emoncms.key"
    key_file.write_text("0123456789abcdef0123456789abcdef\n", encoding="utf-8")
    text = EXAMPLE.read_text(encoding="utf-8")
    assert EXAMPLE_KEY_FILE in text
    text = text.replace(EXAMPLE_KEY_FILE, str(key_file))
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return text, data


def test_example_is_valid(tmp_path: Path, example: tuple[str, dict[str, object]]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(example[0], encoding="utf-8")
    config = load_config(path)
    assert [d.name for d in config.devices] == ["MpttBleu", "Bmv", "Onduleur", "Shunt"]
    assert {p.type for p in config.probes} == {"command", "serial", "w1", "file"}
    assert config.emoncms is not None
    assert config.emoncms.apikey == "0123456789abcdef0123456789abcdef"
    # Where the example shows a section's settings, they are the defaults ("every key, with its default").
    assert config.web == WebConfig()
    assert config.stale_timeout == Config(devices=()).stale_timeout
    assert config.auto_port_patterns == DEFAULT_AUTO_PORT_PATTERNS
    defaults = EmoncmsConfig(url=config.emoncms.url, apikey=config.emoncms.apikey,
                             queue_dir=config.emoncms.queue_dir)
    assert config.emoncms == defaults
    result = run_main("check-config", "--config.file", str(path))
    assert result.returncode == 0, result.stderr


def keys_of(items: object) -> set[str]:
    """The keys used by a mapping, or by every mapping of a list."""
    mappings = items if isinstance(items, list) else [items]
    return {str(key) for mapping in mappings if isinstance(mapping, dict) for key in mapping}


def commented_keys(text: str) -> set[str]:
    """Keys shown in the example only as a commented-out alternative (`# apikey: …`)."""
    return set(re.findall(r"^\s*#\s*([a-z_]+):\s", text, flags=re.MULTILINE))


def field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_example_documents_every_key(example: tuple[str, dict[str, object]]) -> None:
    text, data = example
    sections: list[tuple[type, set[str]]] = [
        (Config, keys_of(data) | commented_keys(text)),  # the mqtt section is commented out
        (MqttConfig, commented_keys(text) | {"host", "port", "tls", "password"}),  # in url; read from password_file
        (WebConfig, keys_of(data["web"])),
        (DeviceConfig, keys_of(data["devices"])),
        (ProbeConfig, keys_of(data["probes"])),
        (EmoncmsConfig, keys_of(data["emoncms"]) | commented_keys(text)),
        # The control sections are shown commented out: switching loads is for those who ask for it.
        (ControlConfig, commented_keys(text)),
        (ActuatorConfig, commented_keys(text) | set(re.findall(r"^#\s+- (name):", text, flags=re.MULTILINE))),
        (RuleConfig, commented_keys(text) | set(re.findall(r"^#\s+- (actuator):", text, flags=re.MULTILINE))),
    ]
    for cls, shown in sections:
        missing = field_names(cls) - {"source", "warnings"} - shown  # what the loader adds, not keys
        assert not missing, f"{cls.__name__}: {sorted(missing)} not in config.yaml.example"
    emoncms = data["emoncms"]
    assert isinstance(emoncms, dict)
    assert set(emoncms["fields"]) == set(DEFAULT_EMONCMS_FIELDS)
    assert {"apikey", "apikey_file"} <= keys_of(emoncms) | commented_keys(text)


def test_example_key_check_would_notice_a_missing_key(example: tuple[str, dict[str, object]]) -> None:
    """The check above is not vacuous: drop one documented key and it is missing."""
    _, data = example
    web = data["web"]
    assert isinstance(web, dict)
    del web["pv_power_max"]
    assert field_names(WebConfig) - keys_of(web) == {"pv_power_max"}


@pytest.mark.slow
def test_unprivileged_run_reads_a_readable_file() -> None:
    """The permission test above, run as root, drops root in a child: that child can read what nobody may read,
    so the "permission denied" there comes from the file's mode and nothing else."""
    if os.geteuid() != 0:
        pytest.skip("not root: the permission test uses chmod 000 directly")
    with world_readable_dir() as work:
        readable = work / "readable.yaml"
        readable.write_text((FIXTURES / "valid_minimal.yaml").read_text(encoding="utf-8"), encoding="utf-8")
        readable.chmod(0o644)
        result = run_cli_unprivileged("check-config", "--config.file", str(readable), work=work)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"# {readable}: valid\n")


def test_relative_apikey_file_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "emoncms.key").write_text("0123456789abcdef0123456789abcdef\n", encoding="utf-8")
    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        "devices:\n  - name: a\n    port: /dev/ttyUSB0\n"
        "emoncms:\n  url: http://127.0.0.1/emoncms\n  apikey_file: emoncms.key\n  queue_dir: /tmp/q\n",
        encoding="utf-8",
    )
    elsewhere = Path.cwd()
    os.chdir("/")
    try:
        config = load_config(config_file)
    finally:
        os.chdir(elsewhere)
    assert config.emoncms is not None
    assert config.emoncms.apikey == "0123456789abcdef0123456789abcdef"


def test_check_config_output_loads_back(tmp_path: Path) -> None:
    """What check-config prints is itself a valid configuration, with the same devices and probes."""
    printed, _ = check_config_output(fixture("valid_full"))
    printed.pop("emoncms", None)  # its key is masked on purpose
    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump(printed), encoding="utf-8")
    original = load_config(fixture("valid_full"))
    reloaded = load_config(again)
    assert reloaded.devices == original.devices
    assert reloaded.probes == original.probes
    assert reloaded.web == original.web


def test_relative_queue_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        "devices:\n  - name: a\n    port: /dev/ttyUSB0\n"
        "emoncms:\n  url: http://127.0.0.1/emoncms\n  apikey: 0123456789abcdef0123456789abcdef\n"
        "  queue_dir: queue\n",
        encoding="utf-8",
    )
    config = load_config(config_file)
    assert config.emoncms is not None
    assert config.emoncms.queue_dir == tmp_path / "queue"


def test_key_never_appears_in_its_error() -> None:
    for name in ("emoncms_key_file_with_comment", "emoncms_key_with_space", "emoncms_key_too_short",
                 "emoncms_key_not_hex"):
        result = run_main("check-config", "--config.file", fixture(name))
        assert "0123456789abcdef" not in result.stderr + result.stdout


def test_a_url_password_never_appears_in_its_error() -> None:
    names = [name for name in ERRORS if name.startswith("emoncms_url_")]
    assert len(names) >= 6
    for name in names:
        result = run_main("check-config", "--config.file", fixture(name))
        assert "hunter2" not in result.stderr + result.stdout, name


@pytest.mark.slow
def test_an_error_names_the_file_as_given_its_line_and_key_path(tmp_path: Path) -> None:
    """The issue's own example, word for word: the file name as given on the command line, then the line."""
    text = "# pvmonit-exporter\n" * 10 + "devices:\n  - name: mppt\n    port: /dev/ttyUSB0\n  - prot: /dev/ttyUSB1\n"
    (tmp_path / "config.yaml").write_text(text, encoding="utf-8")
    assert (tmp_path / "config.yaml").read_text("utf-8").splitlines()[13] == "  - prot: /dev/ttyUSB1"
    result = subprocess.run([sys.executable, "-m", "pvmonit_exporter", "check-config", "--config.file",
                             "config.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=CLI_TIMEOUT,
                            check=False)
    assert result.returncode == 2
    assert result.stderr == ("pvmonit-exporter: config.yaml:14: devices[1]: unknown key 'prot' (did you mean "
                             "'port'?)\n")


def test_anchors_and_aliases_in_ordinary_use(tmp_path: Path) -> None:
    """The expansion bound refuses billion laughs, not a label list shared between two devices."""
    path = tmp_path / "config.yaml"
    path.write_text(
        "devices:\n"
        "  - {name: mppt1, port: /dev/ttyUSB0, emoncms_fields: &solar [PPV, V, I, H20]}\n"
        "  - {name: mppt2, port: /dev/ttyUSB1, emoncms_fields: *solar}\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert [d.emoncms_fields for d in config.devices] == [("PPV", "V", "I", "H20")] * 2


# --- emoncms node names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("712 Smart", None), ("700", None), ("1", None), ("serre-été_2.b", None), ("x" * 64, None),
        ("BMV#712", "emoncms would drop '#'"), ("a/b\\c", "emoncms would drop '/' '\\\\'"),
        ("tab\there", "emoncms would drop '\\t'"), (" 712", "must not start or end with a space"),
        ("712 ", "must not start or end with a space"), ("x" * 65, "longer than 64 characters"),
    ],
)
def test_node_name_problem(name: str, problem: str | None) -> None:
    found = node_name_problem(name)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_a_self_hosted_emoncms_takes_long_node_names(tmp_path: Path) -> None:
    text = (FIXTURES / "emoncms_org_long_node.yaml").read_text(encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(text.replace("https://emoncms.org", "http://pi.local/emoncms"), encoding="utf-8")
    assert load_config(path).devices[0].emoncms_node == "Batterie du chalet"


def test_destinations_follow_the_payload(tmp_path: Path) -> None:
    """The clash check uses the forwarder's names: with `si` the device's V goes to battery_voltage_volts, so a
    probe input named V on its node no longer clashes."""
    text = (FIXTURES / "emoncms_probe_input_on_device_node.yaml").read_text(encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(text + "  payload: si\n", encoding="utf-8")
    assert load_config(path).emoncms is not None


def test_a_port_and_its_by_id_link_are_one_port(tmp_path: Path) -> None:
    port = tmp_path / "ttyUSB1"
    port.touch()
    link = tmp_path / "usb-VictronEnergy_BV_VE_Direct_cable_XYZ-if00-port0"
    link.symlink_to(port)
    path = tmp_path / "config.yaml"
    path.write_text(f"devices:\n  - name: bmv\n    port: {link}\n"
                    f"probes:\n  - name: clamp\n    type: serial\n    port: {port}\n    quantity: current\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key_path == "probes[0].port"
    assert caught.value.message.startswith(f"{port} is also devices[0].port")


# --- YAML tags -----------------------------------------------------------------------------------------

# Every tag of YAML 1.1's type repository (yaml.org/type), which PyYAML's safe loader knows or refuses.
YAML_TAGS = ("null", "bool", "int", "float", "binary", "timestamp", "omap", "pairs", "set", "str", "seq", "map",
             "merge", "value", "yaml")
# Values some tag cannot hold: words, an empty value, bad digits for each base, half a date, nested collections.
ODD_VALUES = ("maybe", "''", "notadate", "2026-13-45", "0b2", "0x", "0o9", "-", "+", "1:x", "._", "=", "[1, 2]",
              "{a: 1}", "[[]]", "{[a]: 1}", "[{a: 1}, b]", "~", "AA==", "@@@")


@pytest.mark.parametrize("tag", YAML_TAGS)
def test_every_yaml_tag_with_an_odd_value_is_one_line_naming_its_line(tag: str, tmp_path: Path) -> None:
    """`!!bool maybe` and `!!timestamp notadate` used to end in a 53-line traceback: every value a tag cannot
    hold is a ConfigError on the value's line (or, when the tag takes it, a value the schema takes or refuses)."""
    path = tmp_path / "config.yaml"
    errors: list[ConfigError] = []
    for value in ODD_VALUES:
        path.write_text(f"devices:\n  - name: mppt\n    port: /dev/ttyUSB0\nstale_timeout: !!{tag} {value}\n",
                        encoding="utf-8")
        try:
            load_config(path)
        except ConfigError as exc:  # anything else fails the test with its traceback
            errors.append(exc)
    assert errors  # every tag refuses some of these
    assert all("\n" not in str(error) for error in errors)
    assert [error.line for error in errors] == [4] * len(errors), [str(error) for error in errors]
