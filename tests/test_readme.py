"""The README's metrics table and the code's catalogue must say the same thing."""

import re
from pathlib import Path

from pvmonit_exporter.collector.catalogue import ALL_METRICS

README = Path(__file__).parents[1] / "README.md"
_ROW = re.compile(r"^\| `(?P<name>[a-z0-9_:]+)` \| (?P<type>gauge|counter) \| (?P<labels>[^|]*) \| (?P<help>.*) \|$")


def _table() -> dict[str, tuple[str, tuple[str, ...], str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Metrics reference", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = _ROW.match(line)
        if match:
            labels = tuple(re.findall(r"`([a-z_]+)`", match["labels"]))
            rows[match["name"]] = (match["type"], labels, match["help"].replace("\\|", "|"))
    return rows


def test_every_metric_is_documented_exactly() -> None:
    table = _table()
    code = {doc.name: (doc.type, doc.labels, doc.help) for doc in ALL_METRICS}
    assert sorted(set(code) - set(table)) == [], "metrics missing from the README table"
    assert sorted(set(table) - set(code)) == [], "README documents metrics the code does not produce"
    for name, row in code.items():
        assert table[name] == row, name


def test_contract_names_are_there() -> None:
    names = {doc.name for doc in ALL_METRICS}
    contract = {
        "vedirect_up", "vedirect_device_info", "vedirect_battery_voltage_volts", "vedirect_battery_current_amperes",
        "vedirect_panel_voltage_volts", "vedirect_panel_power_watts", "vedirect_state_of_charge_ratio",
        "vedirect_charge_state", "vedirect_last_block_timestamp_seconds", "vedirect_blocks_total",
        "vedirect_checksum_errors_total", "pvmonit_temperature_celsius", "pvmonit_current_amperes",
        "pvmonit_power_watts", "pvmonit_probe_up",
    }
    assert contract <= names


def _api_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text.split("## The /api/state JSON", 1)[1].split("\n## ", 1)[0]


def test_api_state_keys_are_documented() -> None:
    """Every key /api/state sends for a device, a probe and the forwarder is named in the README section."""
    from dataclasses import fields

    from pvmonit_exporter.config import DeviceConfig, ProbeConfig, WebConfig
    from pvmonit_exporter.forwarder.stats import ForwarderStatus
    from pvmonit_exporter.state import State
    from pvmonit_exporter.vedirect.framing import DecoderStats
    from pvmonit_exporter.web.api import state_document
    from tests.vedirect_samples import MPPT

    state = State([DeviceConfig("mppt", "/dev/x")], [ProbeConfig("t", "file", "temperature", path="/x")])
    state.record_blocks("mppt", [MPPT], DecoderStats())
    state.record_probe("t", 20.0)
    document = state_document(state, WebConfig())
    device, probe = document["devices"][0], document["probes"][0]
    documented = set(re.findall(r"`([a-z_]+)`", _api_section()))
    keys = (set(document) | set(device) | set(device["counters"]) | set(device["fields"]["V"]) | set(probe)
            | set(document["page"]) | {f.name for f in fields(ForwarderStatus)} | set(document["summary"])
            | set(document["history"]) | set(document["history"]["columns"]))
    assert sorted(keys - documented) == []


def test_api_state_control_keys_are_documented() -> None:
    from pvmonit_exporter.config import parse_config
    from pvmonit_exporter.control.loop import Controller
    from pvmonit_exporter.state import State

    config = parse_config("probes: [{name: t, type: file, quantity: temperature, path: /x}]\n"
                          "actuators: [{name: a, type: command, on: [/bin/true], off: [/bin/true]}]\n", "c.yaml")
    status = Controller(config, State((), config.probes)).status()
    documented = set(re.findall(r"`([a-z_]+)`", _api_section()))
    assert sorted((set(status) | set(status["actuators"][0])) - documented) == []
