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
