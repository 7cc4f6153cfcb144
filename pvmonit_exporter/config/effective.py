"""The effective configuration `check-config` prints: every default filled in, secrets masked."""

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, cast

from pvmonit_exporter.config.schema import ACTUATOR_KEYS, PROBE_KEYS_NOT_APPLICABLE, Comparison, Condition, Config
from pvmonit_exporter.safe_text import mask_url


def mask_secret(secret: str) -> str:
    """What `check-config` shows of a key: enough to recognise it, not to use it."""
    return "****" + secret[-4:] if len(secret) >= 12 else "****"


def effective_config(config: Config) -> dict[str, Any]:
    """The configuration with every default filled in and secrets masked, ready to print as YAML."""

    def plain(value: object) -> object:
        if isinstance(value, Comparison | Condition):
            return condition_document(value)
        if is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, Path):
            return str(value)
        return value

    result = cast(dict[str, Any], plain(config))
    result.pop("source", None)
    result.pop("warnings", None)
    for probe in result["probes"]:
        for key in PROBE_KEYS_NOT_APPLICABLE[probe["type"]]:
            probe.pop(key)
    if config.emoncms is not None and config.emoncms.via == "mqtt":
        for key in ("url", "apikey"):  # the rows go to the mqtt section's broker
            result["emoncms"].pop(key)
    elif config.emoncms is not None:
        # An empty key: its file could not be read (a warning says why).
        result["emoncms"]["apikey"] = mask_secret(config.emoncms.apikey) if config.emoncms.apikey else None
        result["emoncms"]["url"] = mask_url(config.emoncms.url)
        result["emoncms"].pop("topic")
    if config.mqtt is not None:
        shown = result["mqtt"]
        for key in ("host", "port", "tls", "password"):  # the url says them; the password is never shown
            shown.pop(key)
        result["mqtt"] = {"url": config.mqtt.url, **shown}
    if not config.actuators and not config.rules:  # nothing to switch: the sections mean nothing
        for key in ("control", "actuators", "rules"):
            result.pop(key)
    for actuator in result.get("actuators", []):
        for key in [key for key in actuator if key not in ("name", "type", *ACTUATOR_KEYS[actuator["type"]])]:
            actuator.pop(key)
    for device, shown in zip(config.devices, result["devices"], strict=True):
        # A device is either a cable or a Bluetooth address: only its own keys, so the output loads back.
        for key in ("ble_address", "ble_key") if device.source == "serial" else ("port", "serial_number",
                                                                                   "hex_timeout"):
            shown.pop(key)
        if device.ble_key is not None:
            shown["ble_key"] = mask_secret(device.ble_key.hex())
    return result


def condition_document(condition: Comparison | Condition) -> dict[str, Any]:
    """A rule's condition as the file writes it: `{value: …, at_least: …}`, `{all: [...]}`."""
    if isinstance(condition, Condition):
        return {condition.combine: [condition_document(item) for item in condition.items]}
    threshold = list(condition.choices) if condition.op == "in" else condition.threshold
    return {"value": condition.value, condition.op: threshold}
