"""The user's documents stay true: the metrics reference and the catalogue say the same thing, the /api/state
reference names every key the endpoint sends, the README stays a short path (at most 600 lines), and every
relative link in README.md and docs/*.md leads to a file, and to a heading where it names one."""

import re
from pathlib import Path

from pvmonit_exporter.collector.catalogue import ALL_METRICS

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
METRICS = ROOT / "docs" / "metrics.md"
API_STATE = ROOT / "docs" / "api-state.md"
_ROW = re.compile(r"^\| `(?P<name>[a-z0-9_:]+)` \| (?P<type>gauge|counter) \| (?P<labels>[^|]*) \| (?P<help>.*) \|$")


def _table() -> dict[str, tuple[str, tuple[str, ...], str]]:
    rows = {}
    for line in METRICS.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            labels = tuple(re.findall(r"`([a-z_]+)`", match["labels"]))
            rows[match["name"]] = (match["type"], labels, match["help"].replace("\\|", "|"))
    return rows


def test_every_metric_is_documented_exactly() -> None:
    table = _table()
    code = {doc.name: (doc.type, doc.labels, doc.help) for doc in ALL_METRICS}
    assert sorted(set(code) - set(table)) == [], "metrics missing from docs/metrics.md"
    assert sorted(set(table) - set(code)) == [], "docs/metrics.md documents metrics the code does not produce"
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
    return API_STATE.read_text(encoding="utf-8")


def test_api_state_keys_are_documented() -> None:
    """Every key /api/state sends for a device, a probe and the forwarder is named in docs/api-state.md."""
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


def test_the_readme_is_a_short_path() -> None:
    """Reference material goes to docs/: the README is what a new user reads from top to bottom."""
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= 600, f"README.md has {lines} lines: move reference material to docs/"


_FENCE = re.compile(r"^```.*?^```", flags=re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6} (.+)$", flags=re.MULTILINE)


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a file's headings: the heading's text without markup, lower case, every character
    but letters, digits, `_`, `-` and spaces dropped, spaces made `-`; a repeated heading gets `-1`, `-2`…"""
    anchors: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", markdown)):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        anchor, repeat = slug, 0
        while anchor in anchors:
            repeat += 1
            anchor = f"{slug}-{repeat}"
        anchors.add(anchor)
    return anchors


def broken_links(document: Path) -> list[str]:
    """The relative links of one document (outside code) that lead to no file, or to no heading of it."""
    text = document.read_text(encoding="utf-8")
    broken = []
    for target in _LINK.findall(_CODE_SPAN.sub("", _FENCE.sub("", text))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto: … : not ours to check offline
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in heading_anchors(linked.read_text(encoding="utf-8")):
            broken.append(f"{target}: no such heading in {linked.relative_to(ROOT)}")
    return broken


def test_the_anchors_are_githubs() -> None:
    """Spot checks of the slug rule on headings this project has."""
    assert heading_anchors("## The /api/state JSON\n## Trying a port with `read`\n# Home Assistant (MQTT)\n"
                           "## A\n## A\n") == {"the-apistate-json", "trying-a-port-with-read", "home-assistant-mqtt",
                                              "a", "a-1"}


def test_every_relative_link_leads_somewhere() -> None:
    documents = [README, ROOT / "ARCHITECTURE.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(documents) > 5  # the docs are where this test looks for them
    broken = {str(document.relative_to(ROOT)): broken_links(document) for document in documents}
    assert {name: links for name, links in broken.items() if links} == {}


def _leaf_commands() -> dict[tuple[str, ...], set[str]]:
    """Every command line the parser takes, as its words (`("hex", "get")`), with its long options."""
    import argparse

    from pvmonit_exporter.commands.parsers import build_parser

    leaves: dict[tuple[str, ...], set[str]] = {}

    def walk(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        groups = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
        if not groups:
            leaves[words] = {option for action in parser._actions for option in action.option_strings
                             if option.startswith("--") and option not in ("--help", "--log.level", "--version")}
        for group in groups:
            for name, child in group.choices.items():
                walk(child, (*words, name))

    walk(build_parser(), ())
    return leaves


def test_every_command_and_option_is_in_the_commands_reference() -> None:
    """docs/commands.md's table has a row for every command line, naming each of its options."""
    rows = re.findall(r"^\| `pvmonit-exporter ([^`]+)` \|", (ROOT / "docs" / "commands.md").read_text(encoding="utf-8"),
                      flags=re.MULTILINE)
    usages = [(tuple(word for word in row.split() if re.fullmatch(r"[a-z][a-z-]*", word)), row) for row in rows]
    missing = []
    for words, options in _leaf_commands().items():
        documented = " ".join(row for row_words, row in usages if row_words[: len(words)] == words)
        if not documented:
            missing.append(" ".join(words))
        missing += [f"{' '.join(words)} {option}" for option in sorted(options) if option not in documented]
    assert missing == []
