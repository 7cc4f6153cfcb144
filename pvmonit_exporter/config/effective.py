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
    result = cast(dict[str, Any], _plain(config))
    result.pop("source", None)
    result.pop("warnings", None)
    for probe in result["probes"]:
        for key in PROBE_KEYS_NOT_APPLICABLE[probe["type"]]:
            probe.pop(key)
    _show_emoncms(config, result)
    if config.mqtt is not None:
        shown = result["mqtt"]
        for key in ("host", "port", "tls", "password"):  # the url says them; the password is never shown
            shown.pop(key)
        result["mqtt"] = {"url": config.mqtt.url, **shown}
    _show_control(config, result)
    _show_devices(config, result)
    return result


def _plain(value: object) -> object:
    """Dataclasses, tuples, mappings and paths as plain YAML values."""
    if isinstance(value, Comparison | Condition):
        return condition_document(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def _show_emoncms(config: Config, result: dict[str, Any]) -> None:
    """Only the keys of the chosen transport, the key and the URL's credentials masked."""
    if config.emoncms is None:
        return
    if config.emoncms.via == "mqtt":
        for key in ("url", "apikey"):  # the rows go to the mqtt section's broker
            result["emoncms"].pop(key)
        return
    # An empty key: its file could not be read (a warning says why).
    result["emoncms"]["apikey"] = mask_secret(config.emoncms.apikey) if config.emoncms.apikey else None
    result["emoncms"]["url"] = mask_url(config.emoncms.url)
    result["emoncms"].pop("topic")


def _show_control(config: Config, result: dict[str, Any]) -> None:
    """The control sections only when something can switch, each actuator with its own type's keys."""
    if not config.actuators and not config.rules:  # nothing to switch: the sections mean nothing
        for key in ("control", "actuators", "rules"):
            result.pop(key)
    for actuator in result.get("actuators", []):
        for key in [key for key in actuator if key not in ("name", "type", *ACTUATOR_KEYS[actuator["type"]])]:
            actuator.pop(key)


def _show_devices(config: Config, result: dict[str, Any]) -> None:
    """A device is either a cable or a Bluetooth address: only its own keys, so the output loads back."""
    for device, shown in zip(config.devices, result["devices"], strict=True):
        for key in ("ble_address", "ble_key") if device.source == "serial" else ("port", "serial_number",
                                                                                   "hex_timeout"):
            shown.pop(key)
        if device.ble_key is not None:
            shown["ble_key"] = mask_secret(device.ble_key.hex())


def condition_document(condition: Comparison | Condition) -> dict[str, Any]:
    """A rule's condition as the file writes it: `{value: …, at_least: …}`, `{all: [...]}`."""
    if isinstance(condition, Condition):
        return {condition.combine: [condition_document(item) for item in condition.items]}
    threshold = list(condition.choices) if condition.op == "in" else condition.threshold
    return {"value": condition.value, condition.op: threshold}
