"""GPIO actuators on gpiozero's own mock pin factory (gpiozero.pins.mock.MockFactory: the library's model of a
Pi's pins, which its own test suite uses; this machine has no GPIO), and the reload that keeps an actuator as it
is while its definition stays."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from pvmonit_exporter.config import parse_config
from pvmonit_exporter.control.gpio import GpioActuator
from pvmonit_exporter.control.loop import Controller
from pvmonit_exporter.state import State

NOW = 1_782_036_000.0


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    factory = MockFactory()
    previous = Device.pin_factory
    Device.pin_factory = factory
    yield factory
    Device.pin_factory = previous
    factory.reset()


def config(tmp_path: Path, heater_word: str = "off", pump_mode: str = "on") -> str:
    return f"""
probes:
  - {{name: tank, type: file, quantity: temperature, path: /nonexistent}}
control:
  dry_run: false
actuators:
  - {{name: pump, type: gpio, pin: 17, active_low: true}}
  - {{name: heater, type: command, on: [/bin/sh, -c, "echo on >> {tmp_path}/heater"],
     off: [/bin/sh, -c, "echo {heater_word} >> {tmp_path}/heater"]}}
rules:
  - {{actuator: pump, mode: {pump_mode}}}
"""


# The mock's history starts with the unclaimed pin (an input, reading low); the levels after it are driven.
@pytest.mark.parametrize(("active_low", "on_level", "off_level", "history"),
                         [(True, False, True, [False, True, False, True]), (False, True, False, [False, True, False])])
def test_the_line_starts_at_the_safe_level_and_switches(pins: MockFactory, active_low: bool, on_level: bool,
                                                        off_level: bool, history: list[bool]) -> None:
    """An active-low relay board must never see its line low at start (gpiozero#580)."""
    actuator = GpioActuator(parse_config(f"probes: [{{name: t, type: file, quantity: temperature, path: /x}}]\n"
                                         f"actuators: [{{name: pump, type: gpio, pin: 17, active_low: "
                                         f"{str(active_low).lower()}}}]\n", "c.yaml").actuators[0])
    pin = pins.pin(17)
    assert pin.state == off_level
    assert actuator.read() is False
    actuator.set("on")
    assert (pin.state, actuator.read()) == (on_level, True)
    actuator.set("off")
    actuator.close()
    assert [s.state for s in pin.states] == history  # never the on level before it was asked for


def test_close_drives_the_line_off_before_releasing_it(pins: MockFactory) -> None:
    actuator = GpioActuator(parse_config("probes: [{name: t, type: file, quantity: temperature, path: /x}]\n"
                                         "actuators: [{name: pump, type: gpio, pin: 17, active_low: true}]\n",
                                         "c.yaml").actuators[0])
    actuator.set("on")
    actuator.close()
    assert [s.state for s in pins.pin(17).states] == [False, True, False, True]


@pytest.mark.slow
def test_a_reload_keeps_an_unchanged_actuator_as_it_is(pins: MockFactory, tmp_path: Path) -> None:
    """The pump (forced on) keeps its line and its state across the reload; the heater, whose definition
    changed, goes to its safe state with its old definition and starts again with the new one."""
    first = parse_config(config(tmp_path), "c.yaml")
    state = State((), first.probes, clock=lambda: NOW)
    controller = Controller(first, state, clock=lambda: NOW)
    controller.start()
    controller.request_stop()
    controller.evaluate()
    pin = pins.pin(17)
    assert pin.state is False  # on, active low
    pump = controller.slots["pump"].actuator
    handover = controller.handover()

    second = parse_config(config(tmp_path, heater_word="off-again"), "c.yaml")
    again = Controller(second, state, handover, clock=lambda: NOW + 10)
    assert again.slots["pump"].actuator is pump
    assert again.slots["pump"].memory.position == "on"
    again.start()
    again.request_stop()
    again.evaluate()
    assert [s.state for s in pin.states] == [False, True, False]  # off at start, on: never released since
    assert (tmp_path / "heater").read_text().split() == ["off", "off", "off-again"]  # start, retired, new start
    again.stop()
    assert [s.state for s in pin.states] == [False, True, False, True]


def test_a_pin_already_in_use_is_one_line(pins: MockFactory) -> None:
    from pvmonit_exporter.errors import UserError

    first = parse_config("probes: [{name: t, type: file, quantity: temperature, path: /x}]\n"
                         "actuators: [{name: pump, type: gpio, pin: 17}]\n", "c.yaml").actuators[0]
    held = GpioActuator(first)
    with pytest.raises(UserError, match="actuator pump: cannot use GPIO 17: "):
        GpioActuator(first)
    held.close()


@pytest.mark.slow
def test_a_reload_that_changes_a_gpio_actuator_releases_its_line_first(pins: MockFactory, tmp_path: Path) -> None:
    """Same pin, now active high: the old device lets the line go before the new one claims it."""
    first = parse_config(config(tmp_path), "c.yaml")
    state = State((), first.probes, clock=lambda: NOW)
    controller = Controller(first, state, clock=lambda: NOW)
    controller.start()
    controller.request_stop()
    controller.evaluate()
    handover = controller.handover()
    second = parse_config(config(tmp_path).replace("active_low: true", "active_low: false"), "c.yaml")
    again = Controller(second, state, handover, clock=lambda: NOW + 10)
    again.start()
    again.request_stop()
    again.evaluate()
    assert pins.pin(17).state is True  # forced on, now active high
    assert handover.slots == {}  # everything was used or retired
    again.stop()
