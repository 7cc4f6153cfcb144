"""An `mqtt` actuator: a relay on the broker (Tasmota, Shelly, ESPHome, zigbee2mqtt…) switched by a payload on its
command topic and read back from its state topic, as Home Assistant's MQTT switch does. Safe state: off.

It is attached to the pipeline's broker connection (`attach`), again after a reload; until the connection is up
it waits, and the loop drives it to its safe state once it can. The read-back is the last payload heard on the
state topic (a retained one included): a relay that does not follow its commands disagrees, and the loop's
read-back rules make that a fault. Only the state topic can say it is on: a relay never heard from reads back
off, so one that is away (or does not report) faults once commanded on, instead of being taken at its word.
"""

import threading

from pvmonit_exporter.config.schema import ActuatorConfig
from pvmonit_exporter.control.actuators import Actuator, ActuatorError
from pvmonit_exporter.control.decide import Position
from pvmonit_exporter.mqtt.connection import MqttConnection
from pvmonit_exporter.safe_text import escape_control

# How long a command may wait for the broker's PUBACK before the switch counts as failed (retried with backoff).
ACKNOWLEDGE_SECONDS = 5.0


class MqttActuator(Actuator):
    reads_back = True  # state_topic is required

    def __init__(self, config: ActuatorConfig) -> None:
        super().__init__(config)
        self._connection: MqttConnection | None = None
        self._lock = threading.Lock()
        self._heard: bytes | None = None  # the last payload on state_topic

    def attach(self, connection: MqttConnection) -> None:
        """Use `connection` (the pipeline's) from now on, and read the state topic on it."""
        self._connection = connection
        connection.subscribe(self.config.state_topic, self._state)

    def _state(self, topic: str, payload: bytes) -> None:  # paho's thread
        with self._lock:
            self._heard = payload

    def waiting(self) -> str | None:
        if self._connection is None or not self._connection.connected:
            return "the MQTT broker"
        return None

    def set(self, position: Position) -> None:
        connection = self._connection
        if connection is None:
            raise ActuatorError("not attached to the MQTT broker")
        payload = self.config.payload_on if position == "on" else self.config.payload_off
        info = connection.publish(self.config.command_topic, payload, qos=1, retain=False)
        if info is None:
            raise ActuatorError(f"cannot publish to {self.config.command_topic}: the broker is away")
        try:
            info.wait_for_publish(ACKNOWLEDGE_SECONDS)
        except (RuntimeError, ValueError) as exc:
            raise ActuatorError(f"publishing to {self.config.command_topic} failed: {exc}") from None
        if not info.is_published():
            raise ActuatorError(f"the broker did not acknowledge {payload!r} on {self.config.command_topic} "
                                f"within {ACKNOWLEDGE_SECONDS:g} s")

    def read(self) -> bool | None:
        with self._lock:
            heard = self._heard
        if heard is None:  # not confirmed on
            return False
        text = heard.decode("utf-8", errors="replace").strip()
        if text == self.config.state_on:
            return True
        if text == self.config.state_off:
            return False
        raise ActuatorError(f"{self.config.state_topic} says {escape_control(text[:40])!r}, neither "
                            f"{self.config.state_on!r} nor {self.config.state_off!r}")
