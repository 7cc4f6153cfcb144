"""The MQTT connection's figures, without paho: the metrics catalogue reads the error kinds from here."""

from dataclasses import dataclass, field

# `pvmonit_mqtt_errors_total{kind}`: refused by the broker for the credentials or the client id (auth), the
# connection refused, failed (a TLS handshake included) or lost (connection), a publish paho refused (publish),
# a message on an actuator's command topic that is not a command (command).
ERROR_KINDS = ("connection", "auth", "publish", "command")


@dataclass
class ConnectionFigures:
    """What the metrics and `/api/state` show; counters only go up."""

    connected: bool = False
    published_total: int = 0
    dropped_total: int = 0
    errors_total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))
    last_error: str | None = None
    connected_since: float | None = None
