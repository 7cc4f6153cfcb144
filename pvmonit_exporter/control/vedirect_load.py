"""A solar charger's load output, over HEX through the charger's own reader: 0xEDAB written (0 off, 4 on,
1 automatic — the safe state), 0xEDA8 read back. Another table in the wild numbers the modes differently, so the
read-back decides: a disagreement is a fault, and the fault puts the charger back in automatic."""

import time

from pvmonit_exporter.config.schema import ActuatorConfig
from pvmonit_exporter.control.actuators import Actuator, ActuatorError
from pvmonit_exporter.control.decide import Position
from pvmonit_exporter.sources.load_link import LoadLink
from pvmonit_exporter.vedirect.registers import LOAD_MODES

# A write waits this long for the charger's answer (the reader may be in the middle of a history read).
WRITE_TIMEOUT = 10.0
# Every read-back pauses the charger's text blocks for a few seconds: often just after a switch, rarely after.
STEADY_READ_EVERY = 60.0
CONFIRM_READS = 4  # read every confirm_timeout this many times after a switch


class VedirectLoadActuator(Actuator):
    reads_back = True

    def __init__(self, config: ActuatorConfig) -> None:
        super().__init__(config)
        self.link = LoadLink()
        self._seen = 0  # the read-backs already taken in
        self._asked_at: float | None = None
        self._switched_at = time.monotonic()

    def waiting(self) -> str | None:
        if self.link.load_output is None:
            return f"waiting for {self.config.device} to answer over HEX"
        return None

    def unusable(self) -> str | None:
        if self.link.load_output is False:
            return f"{self.config.device} reports no load output (register 0x0140, bit 0)"
        return None

    def set(self, position: Position) -> None:
        mode = LOAD_MODES[position]
        result = self.link.write_mode(mode, WRITE_TIMEOUT)
        self._switched_at = time.monotonic()
        if not result.ok:
            raise ActuatorError(f"{self.config.device}: setting 0xEDAB to {mode} failed: {result.error}")

    def read(self) -> bool | None:
        now = time.monotonic()
        confirm = self.config.confirm_timeout
        every = confirm if now - self._switched_at < CONFIRM_READS * confirm else STEADY_READ_EVERY
        if self._asked_at is None or now - self._asked_at >= every:
            self._asked_at = now
            self.link.ask_state()
        state, self._seen = self.link.state_since(self._seen)
        return {0: False, 1: True}.get(state) if state is not None else None
