"""What carries a decision out. An actuator switches to a position and, where it can, reads its state back;
it knows nothing of rules. A new kind (an MQTT topic) is one more subclass and one more line in `build`.

Safe states: off for `command`, `gpio` and `mqtt`, the charger's own automatic mode for `vedirect_load`.
"""

import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable

from pvmonit_exporter.config.schema import ActuatorConfig
from pvmonit_exporter.control.decide import SAFE_STATES, Position
from pvmonit_exporter.safe_text import escape_control


class ActuatorError(Exception):
    """A switch or a read-back that failed; `str()` is one line for the log and the audit."""


class Actuator(ABC):
    reads_back = False  # whether `read` can tell

    def __init__(self, config: ActuatorConfig) -> None:
        self.config = config
        self.safe: Position = SAFE_STATES[config.type]

    @property
    def name(self) -> str:
        return self.config.name

    @abstractmethod
    def set(self, position: Position) -> None:
        """Switch; raises ActuatorError."""

    def read(self) -> bool | None:
        """Whether it is on, as read back; None when it cannot tell (now or ever). Raises ActuatorError."""
        return None

    def unusable(self) -> str | None:
        """Why it must be left alone (a charger without a load output), or None."""
        return None

    def waiting(self) -> str | None:
        """What it waits for before it can be used at all (a charger's first HEX answer), or None."""
        return None

    def close(self) -> None:  # noqa: B027 - most actuators hold nothing
        """Release what it holds (a GPIO line); called once, after its safe state."""


class CommandActuator(Actuator):
    """`on`/`off` commands, run without a shell within `timeout`; `state` prints on or off."""

    def __init__(self, config: ActuatorConfig) -> None:
        super().__init__(config)
        self.reads_back = bool(config.state)

    def set(self, position: Position) -> None:
        self._run(self.config.on if position == "on" else self.config.off)

    def read(self) -> bool | None:
        if not self.config.state:
            return None
        printed = self._run(self.config.state).strip().lower()
        words = {"on": True, "1": True, "true": True, "off": False, "0": False, "false": False}
        first = printed.split()[0] if printed.split() else ""
        if first not in words:
            raise ActuatorError(f"{self.config.state[0]} printed {escape_control(printed[:40])!r}, not on or off")
        return words[first]

    def _run(self, argv: tuple[str, ...]) -> str:
        try:
            done = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                                  timeout=self.config.timeout, stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            raise ActuatorError(f"{argv[0]}: no exit within {self.config.timeout:g} s") from None
        except OSError as exc:
            raise ActuatorError(f"{argv[0]}: {exc.strerror or exc}") from None
        if done.returncode != 0:
            said = done.stderr.strip().splitlines()[-1:] or [""]
            detail = f": {escape_control(said[0][:200])}" if said[0] else ""
            raise ActuatorError(f"{argv[0]} exited with status {done.returncode}{detail}")
        return done.stdout


Builder = Callable[[ActuatorConfig], Actuator]


def build(config: ActuatorConfig, builders: dict[str, Builder] | None = None) -> Actuator:
    """The actuator for `config`; `builders` supplies kinds that need more than their configuration (the HEX
    link of a vedirect_load, a GPIO pin factory)."""
    if builders is not None and config.type in builders:
        return builders[config.type](config)
    if config.type == "command":
        return CommandActuator(config)
    if config.type == "gpio":
        from pvmonit_exporter.control.gpio import GpioActuator  # noqa: PLC0415 - the optional [gpio] extra

        return GpioActuator(config)
    if config.type == "vedirect_load":
        from pvmonit_exporter.control.vedirect_load import VedirectLoadActuator  # noqa: PLC0415 - with its HEX link

        return VedirectLoadActuator(config)
    if config.type == "mqtt":
        from pvmonit_exporter.control.mqtt_switch import MqttActuator  # noqa: PLC0415 - paho, the optional [mqtt] extra

        return MqttActuator(config)
    raise ValueError(f"no builder for a {config.type} actuator")
