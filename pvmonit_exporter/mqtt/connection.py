"""One connection to the broker: paho-mqtt's own network thread (`loop_start`), which reconnects with backoff
(`reconnect_delay_set`); a will set before connecting (`<prefix>/status` `offline`, retained), `online` once
connected; subscriptions kept across reconnections; the figures the metrics and `/api/state` show.

Nothing waits here while the broker is away: `publish` refuses at once (and the caller counts the message as
dropped); paho queues QoS 1 messages only while the connection is up and their PUBACK is pending.
"""

import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from pvmonit_exporter.config import MqttConfig
from pvmonit_exporter.mqtt.figures import ConnectionFigures

log = logging.getLogger(__name__)

# Reconnection backoff (paho doubles the delay from the first to the second bound).
RECONNECT_MIN_SECONDS = 1
RECONNECT_MAX_SECONDS = 30
ONLINE, OFFLINE = "online", "offline"

MessageHandler = Callable[[str, bytes], None]


def status_topic(config: MqttConfig) -> str:
    return f"{config.topic_prefix}/status"


def _reason_kind(reason: ReasonCode | MQTTErrorCode | int) -> str:
    text = str(reason).lower()
    if "not authori" in text or "bad user name" in text or "identifier" in text:
        return "auth"
    return "connection"


class MqttConnection:
    """`start()`, `publish()` and `subscribe()` from any thread, `stop()` once. `on_connected` callbacks run in
    paho's network thread after every (re)connection: keep them short (set a flag, wake a thread)."""

    def __init__(self, config: MqttConfig, client_id: str | None = None, *, will: bool = True) -> None:
        self.config = config
        self.figures = ConnectionFigures()
        self._lock = threading.Lock()
        self._handlers: dict[str, MessageHandler] = {}
        self._connected_callbacks: list[Callable[[], None]] = []
        self._was_connected = False
        self._will = will
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or config.client_id,
                             clean_session=True)
        client.reconnect_delay_set(RECONNECT_MIN_SECONDS, RECONNECT_MAX_SECONDS)
        if config.username is not None:
            client.username_pw_set(config.username, config.password)
        if config.tls:
            client.tls_set(ca_certs=config.ca_file, certfile=config.certfile, keyfile=config.keyfile,
                           cert_reqs=ssl.CERT_REQUIRED)
        if will:
            client.will_set(status_topic(config), OFFLINE, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client

    # --- life cycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background: the daemon starts whether the broker answers or not."""
        self._client.connect_async(self.config.host, self.config.port, keepalive=round(self.config.keepalive))
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        """Until connected (True), refused for the credentials (retrying would not help) or `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.connected and time.monotonic() < deadline and not self.snapshot().errors_total["auth"]:
            time.sleep(0.05)
        return self.connected

    def stop(self) -> None:
        """Say `offline` (a clean stop is not a crash, but the devices are no longer watched), then disconnect."""
        if self.connected and self._will:
            info = self._client.publish(status_topic(self.config), OFFLINE, qos=1, retain=True)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                info.wait_for_publish(2.0)
        self._client.disconnect()
        self._client.loop_stop()

    # --- use ---------------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    def on_connected(self, callback: Callable[[], None]) -> None:
        self._connected_callbacks.append(callback)

    def subscribe(self, topic: str, handler: MessageHandler, qos: int = 1) -> None:
        """Call `handler(topic, payload)` in paho's thread for every message on `topic` (wildcards allowed), now
        and after every reconnection. For command topics (load control's actuators) as for Home Assistant's
        birth message."""
        with self._lock:
            self._handlers[topic] = handler
        if self.connected:
            self._client.subscribe(topic, qos)

    def publish(self, topic: str, payload: str | bytes, qos: int = 0, retain: bool = False) -> \
            "paho.MQTTMessageInfo | None":
        """Hand a message to paho; None (counted as dropped) while not connected: nothing is queued for later."""
        if not self.connected:
            self.count_dropped()
            return None
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            self.count_dropped()
            return None
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._error("publish", f"publish to {topic} refused: {paho.error_string(info.rc)}")
            return None
        with self._lock:
            self.figures.published_total += 1
        return info

    def count_dropped(self, count: int = 1) -> None:
        with self._lock:
            self.figures.dropped_total += count

    def snapshot(self) -> ConnectionFigures:
        with self._lock:
            return ConnectionFigures(self.connected, self.figures.published_total, self.figures.dropped_total,
                                     dict(self.figures.errors_total), self.figures.last_error,
                                     self.figures.connected_since)

    def status_document(self) -> dict[str, Any]:
        """The broker's state for `/api/state` and the live page."""
        figures = self.snapshot()
        return {
            "url": self.config.url,
            "client_id": self._client._client_id.decode(),
            "topic_prefix": self.config.topic_prefix,
            "connected": figures.connected,
            "connected_since": figures.connected_since,
            "messages_published": figures.published_total,
            "messages_dropped": figures.dropped_total,
            "errors": dict(figures.errors_total),
            "last_error": figures.last_error,
        }

    # --- paho's callbacks (its network thread) -------------------------------------------------------------

    def _on_connect(self, client: paho.Client, userdata: object, flags: paho.ConnectFlags,
                    reason: ReasonCode, properties: object) -> None:
        if reason.is_failure:
            self._error(_reason_kind(reason), f"the broker refused the connection: {reason}")
            return
        with self._lock:
            self.figures.connected_since = time.time()
            self.figures.last_error = None
            handlers = list(self._handlers)
        log.info("MQTT: connected to %s as %s", self.config.url, client._client_id.decode())
        self._was_connected = True
        if self._will:
            client.publish(status_topic(self.config), ONLINE, qos=1, retain=True)
        for topic in handlers:
            client.subscribe(topic, 1)
        for callback in self._connected_callbacks:
            callback()

    def _on_connect_fail(self, client: paho.Client, userdata: object) -> None:
        self._error("connection", f"cannot connect to {self.config.url}")

    def _on_disconnect(self, client: paho.Client, userdata: object, flags: paho.DisconnectFlags,
                       reason: ReasonCode, properties: object) -> None:
        with self._lock:
            self.figures.connected_since = None
        if reason.is_failure:
            self._error("connection", f"connection to {self.config.url} lost ({reason}); reconnecting")

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        with self._lock:
            handlers = [h for topic, h in self._handlers.items() if paho.topic_matches_sub(topic, message.topic)]
        for handler in handlers:
            try:
                handler(message.topic, bytes(message.payload))
            except Exception:  # a handler's bug must not end paho's network thread
                log.exception("MQTT: handling a message on %s failed", message.topic)

    def error(self, kind: str, message: str) -> None:
        """Count an error of `kind` (pvmonit_mqtt_errors_total) and log it (once while it repeats): a command
        ignored, for one."""
        self._error(kind, message)

    def _error(self, kind: str, message: str) -> None:
        """Counted every time; logged once per change of state (a broker away for an hour is one line)."""
        with self._lock:
            self.figures.errors_total[kind] = self.figures.errors_total.get(kind, 0) + 1
            repeated = self.figures.last_error == message
            self.figures.last_error = message
        if not repeated:
            log.warning("MQTT: %s", message)
