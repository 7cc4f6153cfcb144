"""The `control`, `actuators` and `rules` sections: the issue's example loads as written; each mistake the issue
lists is one line naming its key, and exit 2 from check-config."""

import re
from pathlib import Path

import pytest
import yaml

from pvmonit_exporter.config import ConfigError, effective_config, load_config, parse_config
from pvmonit_exporter.config.schema import Comparison, Condition
from tests.config import assert_one_line_error, run_cli

DEVICES = """devices:
  - name: mppt
    port: /dev/ttyUSB0
  - name: bmv
    port: /dev/ttyUSB1
  - name: shunt
    ble_address: "E1:2B:3C:4D:5E:6F"
    ble_key: 8f3a9c55d2e14b07a6c3f0e2b1d49a7c
probes:
  - name: shed
    type: file
    quantity: temperature
    path: /tmp/t
"""

# The issue's example, word for word.
EXAMPLE = DEVICES + """control:
  dry_run: false                     # default true
  interval: 10                       # seconds between evaluations
  audit_file: /var/lib/pvmonit-exporter/control.jsonl
actuators:
  - name: water_heater
    type: command                    # command | gpio | vedirect_load | mqtt (the last with the mqtt section)
    on: [/usr/local/bin/relay, "1", "on"]
    off: [/usr/local/bin/relay, "1", "off"]
    state: [/usr/local/bin/relay, "1", "state"]   # optional read-back: prints on or off
    confirm_timeout: 5               # seconds for a read-back to agree (any actuator with a read-back)
  - name: pump
    type: gpio                       # gpiozero OutputDevice on a BCM pin; active_low for common relay boards
    pin: 17
    active_low: true
  - name: lights
    type: vedirect_load              # the MPPT's load output over HEX: 0xEDAB written, 0xEDA8 read back
    device: mppt                     # refused unless the device reports a load output (0x0140 bit 0)
rules:
  - actuator: water_heater
    mode: auto                       # auto | on | off  (on/off: the user forces it)
    on_when:  {all: [{value: mppt.CS, in: [Absorption, Float]}, {value: summary.battery_soc, at_least: 0.95}]}
    off_when: {any: [{value: summary.battery_soc, below: 0.90}, {value: summary.pv_power, below: 150}]}
    on_for: 120
    off_for: 60
    min_on: 1200
    min_off: 600
    max_on_per_day: 14400
    window: ["10:00", "18:00"]       # local time; outside it the rule wants off
    max_age: 60                      # seconds: an older input makes no decision
    data_loss_after: 120             # seconds without fresh inputs before an auto actuator goes to its safe state
    max_switches_per_hour: 6
"""


def test_the_issue_example_loads() -> None:
    config = parse_config(EXAMPLE, "c.yaml")
    assert (config.control.dry_run, config.control.interval) == (False, 10.0)
    assert str(config.control.audit_file) == "/var/lib/pvmonit-exporter/control.jsonl"
    heater, pump, lights = config.actuators
    assert (heater.on, heater.off, heater.state) == (("/usr/local/bin/relay", "1", "on"),
                                                     ("/usr/local/bin/relay", "1", "off"),
                                                     ("/usr/local/bin/relay", "1", "state"))
    assert (heater.timeout, heater.confirm_timeout) == (10.0, 5.0)
    assert (pump.type, pump.pin, pump.active_low) == ("gpio", 17, True)
    assert (lights.type, lights.device) == ("vedirect_load", "mppt")
    (rule,) = config.rules
    assert rule.on_when == Condition("all", (Comparison("mppt.CS", "in", choices=("Absorption", "Float")),
                                             Comparison("summary.battery_soc", "at_least", 0.95)))
    assert rule.off_when == Condition("any", (Comparison("summary.battery_soc", "below", 0.90),
                                              Comparison("summary.pv_power", "below", 150)))
    assert (rule.on_for, rule.off_for, rule.min_on, rule.min_off) == (120, 60, 1200, 600)
    assert (rule.max_on_per_day, rule.window, rule.max_age) == (14400, ("10:00", "18:00"), 60)
    assert (rule.data_loss_after, rule.max_switches_per_hour) == (120, 6)


def test_defaults_dry_run_and_the_guards() -> None:
    config = parse_config(DEVICES + "actuators:\n  - {name: a, type: gpio, pin: 4}\nrules:\n"
                          "  - {actuator: a, on_when: {value: shed, above: 30}}\n", "c.yaml")
    assert config.control.dry_run is True
    (rule,) = config.rules
    assert (rule.mode, rule.max_switches_per_hour, rule.data_loss_after, rule.off_when) == ("auto", 6, 120, None)
    assert config.actuators[0].active_low is False


def test_mode_on_and_off_survive_yaml_1_1() -> None:
    config = parse_config(DEVICES + "actuators:\n  - {name: a, type: gpio, pin: 4}\n  - {name: b, type: gpio, pin: 5}"
                          "\nrules:\n  - {actuator: a, mode: on}\n  - {actuator: b, mode: off}\n", "c.yaml")
    assert [rule.mode for rule in config.rules] == ["on", "off"]


@pytest.mark.slow
def test_check_config_prints_what_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    result = run_cli("check-config", "--config.file", str(path))
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown == effective_config(load_config(path))
    assert "pin" not in shown["actuators"][0]
    reloaded = tmp_path / "again.yaml"
    shown["devices"] = [d for d in shown["devices"] if "ble_key" not in d]  # its key is masked
    reloaded.write_text(yaml.safe_dump(shown), encoding="utf-8")
    assert load_config(reloaded).rules == load_config(path).rules


COMMAND = "  - {name: heater, type: command, on: [relay, 'on'], off: [relay, 'off']}\n"
RULE = "  - {actuator: heater, on_when: {value: summary.battery_soc, at_least: 0.95}}\n"


@pytest.mark.parametrize(
    ("actuators", "rules", "message"),
    [
        # an unknown device, label, probe or actuator
        (COMMAND, "  - {actuator: heater, on_when: {value: mpt.CS, in: [Float]}}\n",
         "rules[0].on_when.value: unknown device 'mpt' (did you mean 'mppt'?)"),
        (COMMAND, "  - {actuator: heater, on_when: {all: [{value: bmv.SCO, at_least: 0.9}]}}\n",
         "rules[0].on_when.all[0].value: unknown label 'SCO' (did you mean 'SOC'?)"),
        (COMMAND, "  - {actuator: heater, on_when: {value: shde, above: 30}}\n",
         "rules[0].on_when.value: unknown probe 'shde' (did you mean 'shed'?)"),
        (COMMAND, "  - {actuator: heater, on_when: {value: summary.soc, above: 0.9}}\n",
         "rules[0].on_when.value: unknown summary value 'soc'"),
        (COMMAND, "  - {actuator: heatr, on_when: {value: shed, above: 30}}\n",
         "rules[0].actuator: unknown actuator 'heatr' (did you mean 'heater'?)"),
        # a second rule for one actuator
        (COMMAND, RULE + RULE, "rules[1].actuator: 'heater' already has a rule (rules[0])"),
        # an empty window
        (COMMAND, "  - {actuator: heater, window: ['10:00', '10:00'], on_when: {value: shed, above: 30}}\n",
         "rules[0].window: is empty"),
        (COMMAND, "  - {actuator: heater, window: ['10:00', '25:00'], on_when: {value: shed, above: 30}}\n",
         "rules[0].window: must be"),
        # thresholds that let on_when and off_when hold at once
        (COMMAND, "  - {actuator: heater, on_when: {value: summary.battery_soc, at_least: 0.95},"
                  " off_when: {value: summary.battery_soc, below: 0.96}}\n",
         "rules[0].off_when: summary.battery_soc < 0.96 and on_when's >= 0.95 can hold at once"),
        (COMMAND, "  - {actuator: heater, on_when: {value: summary.battery_soc, at_least: 0.95},"
                  " off_when: {value: summary.battery_soc, at_most: 0.95}}\n",
         "rules[0].off_when: summary.battery_soc <= 0.95 and on_when's >= 0.95"),
        (COMMAND, "  - {actuator: heater, on_when: {value: mppt.CS, in: [Float]},"
                  " off_when: {any: [{value: mppt.CS, in: [Bulk, Float]}]}}\n",
         "rules[0].off_when: mppt.CS in [Bulk, Float] and on_when's in [Float]"),
        # mqtt needs the mqtt section
        ("  - {name: heater, type: mqtt}\n", "", "actuators[0].type: mqtt actuators need the mqtt: section"),
        # keys and values
        ("  - {name: heater, type: gpio, pin: 40}\n", "", "actuators[0].pin: must be a whole number from 0 to 27"),
        ("  - {name: heater, type: gpio, pin: 4, on: [x]}\n", "", "actuators[0].on: does not apply to a gpio"),
        ("  - {name: heater, type: command, on: [x]}\n", "", "actuators[0].off: missing required key"),
        ("  - {name: l, type: vedirect_load, device: shunt}\n", "", "actuators[0].device: 'shunt' is a Bluetooth"),
        ("  - {name: l, type: vedirect_load, device: mpt}\n", "", "actuators[0].device: unknown device 'mpt'"),
        ("  - {name: a, type: vedirect_load, device: mppt}\n  - {name: b, type: vedirect_load, device: mppt}\n", "",
         "actuators[1].device: mppt's load output is already actuators[0]"),
        ("  - {name: a, type: gpio, pin: 4}\n  - {name: b, type: gpio, pin: 4}\n", "",
         "actuators[1].pin: GPIO 4 is already actuators[0]"),
        (COMMAND, "  - {actuator: heater, on_when: {value: shed, above: 30, below: 40}}\n",
         "rules[0].on_when: needs exactly one comparison"),
        (COMMAND, "  - {actuator: heater, on_when: {value: shed, atleast: 30}}\n",
         "rules[0].on_when: unknown key 'atleast' (did you mean 'at_least'?)"),
        (COMMAND, "  - {actuator: heater}\n", "rules[0].on_when: missing required key for mode auto"),
        (COMMAND, "  - {actuator: heater, mode: sometimes}\n", "rules[0].mode: must be one of auto, on, off"),
        (COMMAND, "  - {actuator: heater, max_switches_per_hour: 0, on_when: {value: shed, above: 30}}\n",
         "rules[0].max_switches_per_hour: must be a whole number from 1 to 3,600"),
        (COMMAND, "  - {actuator: heater, on_when: {value: mppt.SER#, in: [x]}}\n",
         "rules[0].on_when.value: 'SER#' is text"),
    ],
)
def test_each_mistake_is_one_line_naming_its_key(actuators: str, rules: str, message: str) -> None:
    text = DEVICES + "actuators:\n" + actuators + ("rules:\n" + rules if rules else "")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml")
    # Each actuator and rule is one line here: the error names the line of the one it is about.
    section, index = re.match(r"(actuators|rules)\[(\d+)\]", message).groups()  # type: ignore[union-attr]
    first = DEVICES.count("\n") + 2 + (actuators.count("\n") + 1 if section == "rules" else 0)
    assert str(caught.value).startswith(f"c.yaml:{first + int(index)}: {message}"), str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.slow
def test_check_config_refuses_with_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(DEVICES + "actuators:\n" + COMMAND + "rules:\n" + RULE + RULE, encoding="utf-8")
    assert_one_line_error(run_cli("check-config", "--config.file", str(path)),
                          f"{path}:18: rules[1].actuator: 'heater' already has a rule")


MQTT = "mqtt:\n  url: mqtt://127.0.0.1:1883\n"
RELAY = "  - {name: pump, type: mqtt, command_topic: cmnd/pump/POWER, state_topic: stat/pump/POWER}\n"


def test_an_mqtt_actuator_loads_with_the_mqtt_section_and_home_assistants_defaults() -> None:
    config = parse_config(DEVICES + MQTT + "actuators:\n" + RELAY
                          + '  - {name: heater, type: mqtt, command_topic: "z2m/Water Heater/set", '
                            'state_topic: "z2m/Water Heater", payload_on: "1", payload_off: 0, state_on: "on", '
                            'state_off: "off", confirm_timeout: 2}\n', "c.yaml")
    pump, heater = config.actuators
    assert (pump.type, pump.command_topic, pump.state_topic) == ("mqtt", "cmnd/pump/POWER", "stat/pump/POWER")
    assert (pump.payload_on, pump.payload_off, pump.state_on, pump.state_off) == ("ON", "OFF", "ON", "OFF")
    assert (heater.command_topic, heater.payload_on, heater.payload_off, heater.state_on, heater.state_off,
            heater.confirm_timeout) == ("z2m/Water Heater/set", "1", "0", "on", "off", 2.0)
    shown = effective_config(config)["actuators"][0]
    assert set(shown) == {"name", "type", "command_topic", "state_topic", "payload_on", "payload_off", "state_on",
                          "state_off", "confirm_timeout"}


@pytest.mark.parametrize(
    ("actuators", "message"),
    [
        ("  - {name: pump, type: mqtt, command_topic: cmnd/pump/POWER}\n",
         "actuators[0].state_topic: missing required key for a mqtt actuator"),
        ("  - {name: pump, type: mqtt, state_topic: stat/pump/POWER}\n",
         "actuators[0].command_topic: missing required key"),
        ("  - {name: pump, type: mqtt, command_topic: cmnd/+/POWER, state_topic: stat/pump/POWER}\n",
         "actuators[0].command_topic: 'cmnd/+/POWER' must be one topic: no wildcard"),
        ("  - {name: pump, type: mqtt, command_topic: cmnd/pump/POWER, state_topic: 'stat/#'}\n",
         "actuators[0].state_topic: 'stat/#' must be one topic: no wildcard"),
        ("  - {name: pump, type: mqtt, command_topic: c, state_topic: s, payload_on: ON}\n",
         "actuators[0].payload_on: must be quoted (YAML reads ON"),
        ("  - {name: pump, type: mqtt, command_topic: c, state_topic: s, state_on: x, state_off: x}\n",
         "actuators[0].state_off: is the same as state_on"),
        ("  - {name: pump, type: mqtt, command_topic: c, state_topic: c}\n",
         "actuators[0].state_topic: is the command_topic"),
        ("  - {name: pump, type: mqtt, command_topic: c, state_topic: s, pin: 4}\n",
         "actuators[0].pin: does not apply to a mqtt actuator"),
        ("  - {name: pump, type: command, on: [x], off: [y], command_topic: c}\n",
         "actuators[0].command_topic: does not apply to a command actuator"),
        (RELAY + "  - {name: pool, type: mqtt, command_topic: cmnd/pool/POWER, state_topic: stat/pump/POWER}\n",
         "actuators[1].state_topic: 'stat/pump/POWER' is already a topic of actuators[0]"),
    ],
)
def test_each_mqtt_actuator_mistake_is_one_line_naming_its_key(actuators: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(DEVICES + MQTT + "actuators:\n" + actuators, "c.yaml")
    index = int(re.match(r"actuators\[(\d+)\]", message).group(1))  # type: ignore[union-attr]
    first = (DEVICES + MQTT).count("\n") + 2
    assert str(caught.value).startswith(f"c.yaml:{first + index}: {message}"), str(caught.value)
    assert "\n" not in str(caught.value)
