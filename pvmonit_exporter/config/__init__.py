"""The configuration file: `schema` (what the settings are), `loader` (YAML → validated settings), `checks` (one-line
errors naming the key path) and `effective` (what `check-config` prints). Everything is importable from here."""

from pvmonit_exporter.config.checks import ConfigError, parse_listen_address
from pvmonit_exporter.config.effective import effective_config, mask_secret
from pvmonit_exporter.config.loader import load_config, parse_config, parse_mqtt_url
from pvmonit_exporter.config.schema import (
    DEFAULT_AUTO_PORT_PATTERNS,
    DEFAULT_EMONCMS_FIELDS,
    DEFAULT_LISTEN_ADDRESS,
    DEFAULT_PORT,
    DEFAULT_STALE_TIMEOUT,
    PAYLOADS,
    PROBE_QUANTITIES,
    PROBE_TYPES,
    Config,
    DeviceConfig,
    EmoncmsConfig,
    MqttConfig,
    ProbeConfig,
    WebConfig,
)

__all__ = [
    "DEFAULT_AUTO_PORT_PATTERNS",
    "DEFAULT_EMONCMS_FIELDS",
    "DEFAULT_LISTEN_ADDRESS",
    "DEFAULT_PORT",
    "DEFAULT_STALE_TIMEOUT",
    "PAYLOADS",
    "PROBE_QUANTITIES",
    "PROBE_TYPES",
    "Config",
    "ConfigError",
    "DeviceConfig",
    "EmoncmsConfig",
    "MqttConfig",
    "ProbeConfig",
    "WebConfig",
    "effective_config",
    "load_config",
    "mask_secret",
    "parse_config",
    "parse_listen_address",
    "parse_mqtt_url",
]
