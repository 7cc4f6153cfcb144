"""The `/api/state` document: every device and probe, decoded, with units, words and ages.

The live page reads it; so can any script. Its shape is documented in docs/api-state.md.
"""

import math
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from pvmonit_exporter import __version__
from pvmonit_exporter.charts import SERIES, SLOT_SECONDS, ChartRecorder
from pvmonit_exporter.config import WebConfig
from pvmonit_exporter.state import DeviceView, ProbeView, State
from pvmonit_exporter.summary import Summary, summarise
from pvmonit_exporter.vedirect.fields import FIELDS, decode

# The forwarder's or the MQTT connection's figures, as plain JSON types.
ForwarderStatus = Callable[[], Mapping[str, Any] | None]
ControlStatus = Callable[[], Mapping[str, Any]]

_PROBE_UNITS = {"temperature": "°C", "current": "A", "power": "W"}


def _number(value: float | None) -> float | str | None:
    """JSON has no infinity: TTG's "infinite" travels as the string "inf"."""
    if value is not None and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def device_document(view: DeviceView) -> dict[str, Any]:
    fields: dict[str, dict[str, Any]] = {}
    for label, raw in view.fields.items():
        item = decode(label, raw)
        spec = FIELDS.get(label)
        fields[label] = {
            "raw": raw,
            "value": _number(item.value),
            "unit": item.unit,
            "text": item.text,
            "flags": list(item.flags),
            "description": spec.description if spec else None,
            "known": item.known,
        }
    identity = view.identity
    stats = view.stats
    document = {
        "name": view.name,
        "source": view.source,
        "up": view.up,
        "kind": identity.kind,
        "product_id": identity.product_id or None,
        "product": identity.product or None,
        "serial_number": identity.serial_number or None,
        "firmware": identity.firmware or None,
        "port": view.port,
        "connected": view.connected,
        "error": view.error,
        "last_block_timestamp": view.last_block_time,
        "age_seconds": None if view.age_seconds is None else round(view.age_seconds, 3),
        "stale_timeout_seconds": view.stale_timeout,
        "fields": fields,
        "counters": {
            "blocks": stats.blocks_valid,
            "checksum_errors": stats.checksum_errors,
            "malformed_blocks": stats.malformed_blocks,
            "hex_valid": stats.hex_valid,
            "hex_invalid": stats.hex_invalid,
            "bytes_received": stats.bytes_received,
            "bytes_discarded": stats.bytes_discarded,
        },
    }
    if view.history:  # a solar charger's days read over HEX, newest first, in the `hex history --json` form
        document["history"] = [day.as_json() for day in view.history]
    return document


def probe_document(view: ProbeView) -> dict[str, Any]:
    return {
        "name": view.name,
        "quantity": view.quantity,
        "up": view.up,
        "value": view.value,
        "unit": _PROBE_UNITS.get(view.quantity, ""),
        "power_watts": view.power_watts,
        "last_reading_timestamp": view.last_reading_time,
        "age_seconds": None if view.age_seconds is None else round(view.age_seconds, 3),
        "error": view.error,
        "readings": view.readings_total,
        "errors": dict(view.errors_total),
    }


def summary_document(summary: Summary) -> dict[str, Any]:
    return {f.name: getattr(summary, f.name) for f in fields(summary)}


# Decimals kept per series (SOC ratio, volts, watts, watts): finer than a 64-pixel chart can show.
_HISTORY_DIGITS = (3, 2, 0, 0)


def _rounded(value: float | None, digits: int) -> float | int | None:
    if value is None:
        return None
    return round(value, digits) if digits else round(value)


def history_document(history: ChartRecorder | None) -> dict[str, Any]:
    """Compact, since the page reads it every 2 s: one row per 5-minute point, values rounded to what a small
    chart can show."""
    points = [] if history is None else history.points()
    return {
        "interval_seconds": SLOT_SECONDS if history is None else history.slot_seconds,
        "columns": ["time", *SERIES],
        "points": [[int(point.time), *(_rounded(v, digits) for v, digits in zip(point.values, _HISTORY_DIGITS,
                                                                                strict=True))]
                   for point in points],
    }


def state_document(state: State, web: WebConfig, forwarder: ForwarderStatus | None = None,
                   history: ChartRecorder | None = None, *, control: ControlStatus | None = None,
                   mqtt: ForwarderStatus | None = None) -> dict[str, Any]:
    now = state.now()
    devices, probes = state.devices(), state.probes()
    return {
        "version": __version__,
        "time": now,
        "summary": summary_document(summarise(devices, probes)),
        "devices": [device_document(view) for view in devices],
        "probes": [probe_document(view) for view in probes],
        "forwarder": None if forwarder is None else forwarder(),
        "control": None if control is None else control(),
        "mqtt": None if mqtt is None else mqtt(),
        "history": history_document(history),
        "page": {name: getattr(web, name) for name in PAGE_SETTINGS},
    }


# The `web` settings the page draws with (every one but the listen address).
PAGE_SETTINGS = tuple(f.name for f in fields(WebConfig) if f.name != "listen_address")
