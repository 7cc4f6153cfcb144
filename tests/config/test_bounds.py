"""BOUNDS: every number of the configuration has documented bounds, and the extreme values work at run time."""

import dataclasses
import re
import types
import typing
from pathlib import Path

from pvmonit_exporter.config import Config, DeviceConfig, EmoncmsConfig, MqttConfig, ProbeConfig, WebConfig
from pvmonit_exporter.config.schema import BOUNDS, SECTION_KEYS, ActuatorConfig, ControlConfig, RuleConfig
from pvmonit_exporter.sources.probes import ProbeRunner
from pvmonit_exporter.state import State
from tests.config import ROOT
from tests.helpers import wait_for

SECTIONS: dict[str, type] = {"": Config, "web": WebConfig, "devices[]": DeviceConfig, "probes[]": ProbeConfig,
                             "emoncms": EmoncmsConfig, "mqtt": MqttConfig, "control": ControlConfig,
                             "actuators[]": ActuatorConfig, "rules[]": RuleConfig}


def is_number(annotation: object) -> bool:
    """float, int, or either of them `| None`."""
    if isinstance(annotation, types.UnionType):
        return all(is_number(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    return annotation in (float, int)


def numeric_places() -> set[str]:
    places = set()
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if field.name in SECTION_KEYS[section] and is_number(hints[field.name]):
                places.add(f"{section}.{field.name}" if section else field.name)
    return places


def test_every_number_has_bounds() -> None:
    assert numeric_places() == set(BOUNDS)


def test_every_default_is_within_its_bounds() -> None:
    defaults = {"": Config(devices=()), "web": WebConfig(), "devices[]": DeviceConfig("a", "/dev/ttyUSB0"),
                "probes[]": ProbeConfig("a", "file", "temperature"),
                "emoncms": EmoncmsConfig(url="http://x", apikey="k", queue_dir=Path()),
                "mqtt": MqttConfig(host="127.0.0.1", port=1883), "control": ControlConfig(),
                "actuators[]": ActuatorConfig("a", "command"), "rules[]": RuleConfig("a")}
    for place, bounds in BOUNDS.items():
        section, _, key = place.rpartition(".")
        value = getattr(defaults[section], key)
        if value is not None:
            assert bounds.low <= value <= bounds.high, place


def test_the_configuration_reference_lists_every_bound() -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z_.\[\]]+)` \| ([^|]+?) \|$", reference, flags=re.MULTILINE))
    expected = {place: bounds.describe() + (" (whole number)" if bounds.whole else "")
                for place, bounds in BOUNDS.items()}
    assert {place: rows.get(place) for place in BOUNDS} == expected


def test_the_example_gives_every_bound() -> None:
    example = (ROOT / "config.yaml.example").read_text(encoding="utf-8")
    for place, bounds in BOUNDS.items():
        key = place.rpartition(".")[2]
        lines = [line for line in example.splitlines() if key in line]
        assert any(bounds.describe() in line for line in lines), (place, bounds.describe())


def test_a_probe_at_its_longest_interval_and_timeout_reads_and_stops(tmp_path: Path) -> None:
    """The waits use the largest values the bounds allow: Event.wait() and the deadline arithmetic must take
    them (a value past them, such as 1e20, raised OverflowError in the probe's thread)."""
    reading = tmp_path / "temp"
    reading.write_text("21.5\n", encoding="utf-8")
    config = ProbeConfig("room", "file", "temperature", path=str(reading),
                         interval=BOUNDS["probes[].interval"].high, timeout=BOUNDS["probes[].timeout"].high)
    state = State((), (config,))
    runner = ProbeRunner(config, state)
    runner.start()
    try:
        wait_for(lambda: state.probes()[0].value)
        assert runner.running  # waiting a day for the next reading, alive
    finally:
        runner.stop()
    assert not runner.running
