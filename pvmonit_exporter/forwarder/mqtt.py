"""emoncms over MQTT (`emoncms: via: mqtt`): the queue's rows to `<topic>/<node>` on the broker, beside the HTTP
client and with its interface (`send`, `abort`, `close`, `scrub`), so that the flush loop is the same.

Each row is one JSON object of its inputs plus `"time"` (the row's own time), published with QoS 1: emoncms's
MQTT input (`emoncms/emoncms` `scripts/services/emoncms_mqtt/emoncms_mqtt.php`) takes `emon/<node>` with
`{"key": value, …, "time": unix}`. `send` answers `Ok` only once the broker acknowledged every row (PUBACK):
only then does the flush loop delete them from the queue. While the broker is away it answers at once with a
connection error, and the rows stay queued as they do while emoncms is down.
"""

import json
import threading
import time
from collections.abc import Sequence

from pvmonit_exporter.config import EmoncmsConfig, MqttConfig
from pvmonit_exporter.forwarder.emoncms import scrub
from pvmonit_exporter.forwarder.outcome import Ok, Outcome, TransientError
from pvmonit_exporter.forwarder.snapshot import Row
from pvmonit_exporter.mqtt.connection import MqttConnection

# A standalone client (`queue --flush`) waits this long for the broker before saying it is away.
CONNECT_WAIT_SECONDS = 10.0


def row_topic(topic: str, row: Row) -> str:
    return f"{topic}/{row.node}"


def row_payload(row: Row) -> str:
    """`{"V": 12.5, …, "time": 1700000000}`: the inputs, then the time emoncms stores them at."""
    return json.dumps({**row.values, "time": row.time}, separators=(",", ":"), ensure_ascii=False)


class EmoncmsMqttClient:
    """Publishes rows on `connection` (the daemon's, shared with the publisher), or on its own connection when
    made by `standalone` (`queue --flush`, beside a running daemon)."""

    def __init__(self, connection: MqttConnection, config: EmoncmsConfig, *, owned: bool = False) -> None:
        self._connection = connection
        self._topic = config.topic
        self._password = connection.config.password or ""
        # An mqtt url holds no credentials (the loader refuses them): it is shown as it is, with the topic.
        self.shown_url = config.url
        self._timeout = config.timeout
        self._aborted = threading.Event()
        self._owned = owned
        if owned:
            connection.start()
            connection.wait_connected(CONNECT_WAIT_SECONDS)

    @classmethod
    def standalone(cls, mqtt: MqttConfig, config: EmoncmsConfig) -> "EmoncmsMqttClient":
        # Its own client id: the broker would disconnect the daemon's connection if both used the same one. No
        # will: this connection's going says nothing about the devices.
        return cls(MqttConnection(mqtt, f"{mqtt.client_id}-queue", will=False), config, owned=True)

    def scrub(self, text: str) -> str:
        """`text` without any trace of the broker's password (see `emoncms.scrub`)."""
        return scrub(text, self._password)

    def send(self, rows: Sequence[Row], sentat: int) -> Outcome:
        """Publish `rows` in order, QoS 1; `Ok` once every one is acknowledged. `sentat` is HTTP's (emoncms
        corrects for our clock's skew there); over MQTT each row carries its own time."""
        if not self._connection.connected:
            return TransientError("connection", f"the MQTT broker {self._connection.config.url} is not connected")
        pending = []
        for row in rows:
            info = self._connection.publish(row_topic(self._topic, row), row_payload(row), qos=1)
            if info is None:
                return TransientError("connection", "the connection to the MQTT broker was lost while sending")
            pending.append(info)
        deadline = time.monotonic() + self._timeout
        for info in pending:
            while not info.is_published():
                if self._aborted.is_set() or time.monotonic() > deadline or not self._connection.connected:
                    return TransientError("timeout" if self._connection.connected else "connection",
                                          f"the MQTT broker did not acknowledge {len(rows)} rows within "
                                          f"{self._timeout:g} s")
                info.wait_for_publish(0.1)
        return Ok()

    def abort(self) -> None:
        self._aborted.set()

    def close(self) -> None:
        if self._owned:
            self._connection.stop()
