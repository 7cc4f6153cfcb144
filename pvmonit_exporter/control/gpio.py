"""A relay on a Raspberry Pi GPIO line, through gpiozero (the optional [gpio] extra).

The line is claimed once and held for the daemon's lifetime (and across reloads while its definition stays), its
initial value the safe state — off — so that a relay board never clicks on at start (gpiozero#580: an active-low
board switching on at initialisation). `close()` drives it off before releasing it: some back-ends leave an
output floating after close (gpiozero#1146), and gpiozero resets outputs only on a normal exit (#706).
"""

from typing import Any

from pvmonit_exporter.config.schema import ActuatorConfig
from pvmonit_exporter.control.actuators import Actuator, ActuatorError
from pvmonit_exporter.control.decide import Position
from pvmonit_exporter.errors import UserError


class GpioActuator(Actuator):
    reads_back = True  # gpiozero reads the line's level back from the pin

    def __init__(self, config: ActuatorConfig, pin_factory: Any = None) -> None:
        super().__init__(config)
        try:
            from gpiozero import GPIOZeroError, OutputDevice  # noqa: PLC0415 - the optional [gpio] extra
        except ImportError:
            raise UserError(f"actuator {config.name}: GPIO needs the [gpio] extra: "
                            "pip install 'pvmonit-exporter[gpio]'") from None
        self._errors: tuple[type[BaseException], ...] = (GPIOZeroError, OSError)
        try:
            self.device = OutputDevice(config.pin, active_high=not config.active_low, initial_value=False,
                                       pin_factory=pin_factory)
        except self._errors as exc:
            raise UserError(f"actuator {config.name}: cannot use GPIO {config.pin}: {exc}") from None

    def set(self, position: Position) -> None:
        try:
            if position == "on":
                self.device.on()
            else:
                self.device.off()
        except self._errors as exc:
            raise ActuatorError(f"GPIO {self.config.pin}: {exc}") from None

    def read(self) -> bool | None:
        try:
            return bool(self.device.is_active)
        except self._errors as exc:
            raise ActuatorError(f"GPIO {self.config.pin}: {exc}") from None

    def close(self) -> None:
        try:
            self.device.off()
        finally:
            self.device.close()
