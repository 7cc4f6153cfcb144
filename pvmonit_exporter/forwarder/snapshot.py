"""State views → emoncms rows. Pure: no clock, no I/O; the caller passes the time and the views.

A row is what `input/bulk` takes: `[unix_time, "node", {"input": value, ...}]`. Two payloads:

* `pvmonit` (default): what PvMonit 0.2 sent, so existing emoncms inputs and feeds keep filling — node = the
  device's `emoncms_node` (PvMonit's node name) or its name, input names = raw VE.Direct labels, raw integer
  values (mV, mA, ‰, 0.01 kWh), ON/OFF as 1/0, hex text as its number; a current probe with `power_voltage` is
  PvMonit's clamp: its input carries watts (`conso`), and only watts.
* `si`: input names are the metric names of `vedirect.fields` (`battery_voltage_volts`) and values are SI;
  enumerations and bitmasks are sent as their numeric code, an infinite TTG is left out. A clamp's input
  carries watts too, and its amperes go to `<input>_current`.

Text fields (PID, SER#, FW…) are never sent: emoncms would store them as 0. A missing, unavailable (`---`) or
unparsable value is left out rather than sent as null or 0 — emoncms stores null as 0 in a fixed-interval feed.
A device with no fresh data gives no row at all.
"""

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pvmonit_exporter.config import DeviceConfig, EmoncmsConfig, ProbeConfig
from pvmonit_exporter.config.emoncms_names import device_node, emoncms_name, label_input, probe_inputs
from pvmonit_exporter.state import DeviceView, ProbeView
from pvmonit_exporter.vedirect.fields import FIELDS, Kind, decode, parse_int, parse_number

Value = int | float


@dataclass(frozen=True)
class Row:
    """One bulk row: the values of one node at one time (whole unix seconds, as emoncms stores them)."""

    time: int
    node: str
    values: Mapping[str, Value]

    def to_json(self) -> list[object]:
        return [self.time, self.node, dict(self.values)]


def encode_row(row: Row) -> str:
    """Compact JSON text of a row, as queued and as sent (no ASCII escapes: emoncms strips backslashes)."""
    return json.dumps(row.to_json(), separators=(",", ":"), ensure_ascii=False)


def decode_row(text: str) -> Row:
    """The inverse of `encode_row`; ValueError when `text` is not a row (a damaged queue entry)."""
    data = json.loads(text)
    if not (isinstance(data, list) and len(data) == 3 and isinstance(data[1], str)
            and isinstance(data[2], dict) and isinstance(data[0], int | float)
            and not isinstance(data[0], bool)):
        raise ValueError("not a [time, node, {name: value}] row")
    values = data[2]
    if not all(isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
               for k, v in values.items()):
        raise ValueError("row values must be numbers")
    return Row(int(data[0]), data[1], values)


def _integer(raw: str) -> int | None:
    """A decimal integer, or a hex one written `0x…` (an unknown label's value); as strict as the metrics."""
    return parse_int(raw, 16) if raw[:2].lower() == "0x" else parse_int(raw)


def raw_value(label: str, raw: str) -> Value | None:
    """The number PvMonit sent for `raw` (unscaled), or None when there is nothing numeric to send.

    Parsed exactly as `vedirect.fields.decode` parses it for the metrics (`parse_number`: no `1_000`, no
    surrounding spaces, a fraction only where the field allows one: a Bluetooth `T` of `22.5`), so emoncms
    never gets a value the metrics reject, nor loses one they keep."""
    spec = FIELDS.get(label)
    if spec is None:
        return _integer(raw)
    if spec.kind is Kind.TEXT:
        return None
    if spec.kind is Kind.ON_OFF:
        return {"ON": 1, "OFF": 0}.get(raw.strip().upper())
    return parse_number(spec, raw)


def si_value(label: str, raw: str) -> tuple[str, float] | None:
    """(metric name, SI value) for the `si` payload; None for text, unknown labels, `---` and infinity."""
    spec = FIELDS.get(label)
    if spec is None or spec.kind is Kind.TEXT or spec.metric is None:
        return None
    value = decode(label, raw).value
    if value is None or not math.isfinite(value):
        return None
    return spec.metric, value


class SnapshotBuilder:
    """Turns one moment's device and probe views into rows, following the forwarder's configuration."""

    def __init__(
        self,
        config: EmoncmsConfig,
        devices: Sequence[DeviceConfig],
        probes: Sequence[ProbeConfig],
    ) -> None:
        self._payload = config.payload
        self._kind_fields = config.fields
        self._device_fields = {d.name: d.emoncms_fields for d in devices}
        self._device_nodes = {d.name: device_node(d.name, d.emoncms_node) for d in devices}
        self._probes = {p.name: p for p in probes}
        self._probe_node = emoncms_name(config.probe_node)

    def labels_for(self, view: DeviceView) -> tuple[str, ...]:
        """The device's own `emoncms_fields`, else the list for its kind (PvMonit's defaults)."""
        own = self._device_fields.get(view.name)
        if own is not None:
            return own
        return tuple(self._kind_fields.get(view.identity.kind, ()))

    def device_values(self, view: DeviceView) -> dict[str, Value]:
        values: dict[str, Value] = {}
        for label in self.labels_for(view):
            raw = view.fields.get(label)
            name = label_input(label, self._payload)
            if raw is None or name is None:
                continue
            if self._payload == "si":
                named = si_value(label, raw)
                if named is not None:
                    values[name] = named[1]
            else:
                number = raw_value(label, raw)
                if number is not None:
                    values[name] = number
        return values

    def probe_values(self, views: Sequence[ProbeView]) -> dict[str, Value]:
        """Calibrated probe values under `emoncms_input` (default: the probe's name). A current probe with
        `power_voltage` sends watts there instead, as PvMonit's `conso` did (amperes × 230); with the `si`
        payload its amperes also go to `<input>_current`."""
        values: dict[str, Value] = {}
        for view in views:
            config = self._probes.get(view.name)
            if config is None or view.value is None or not math.isfinite(view.value):
                continue
            inputs = probe_inputs(config.name, config.emoncms_input, config.power_voltage, self._payload)
            if view.power_watts is None:
                values[inputs[0]] = view.value
                continue
            if not math.isfinite(view.power_watts):
                continue
            values[inputs[0]] = view.power_watts
            if len(inputs) > 1:
                values[inputs[1]] = view.value
        return values

    def node_of(self, view: DeviceView) -> str:
        """The device's emoncms node: its `emoncms_node` (PvMonit's name for it, `712 Smart`), else its name."""
        return self._device_nodes.get(view.name) or device_node(view.name, None)

    def rows(self, time: int, devices: Sequence[DeviceView], probes: Sequence[ProbeView]) -> list[Row]:
        """One row per device with fresh values, then one for the probes; empty rows are left out."""
        rows: list[Row] = []
        for view in devices:
            if not view.up:
                continue
            values = self.device_values(view)
            if values:
                rows.append(Row(time, self.node_of(view), values))
        probe_values = self.probe_values(probes)
        if probe_values:
            rows.append(Row(time, self._probe_node, probe_values))
        return rows
