"""A rule's inputs, read from the same state as /api/state and the live page: `summary.<key>` (the summary),
`<device>.<LABEL>` (a field's value in SI units; an enumeration by its text) and `<probe>` (its value), each with
its age. Pure: it reads views, not the state itself."""

from collections.abc import Collection, Sequence

from pvmonit_exporter.config.schema import SUMMARY_INPUTS
from pvmonit_exporter.control.decide import Reading
from pvmonit_exporter.state import DeviceView, ProbeView
from pvmonit_exporter.summary import summarise
from pvmonit_exporter.vedirect.fields import FIELDS, Kind, decode


def _device_reading(view: DeviceView, label: str) -> Reading | None:
    raw = view.fields.get(label) if view.up else None
    if raw is None or view.age_seconds is None:
        return None
    item = decode(label, raw)
    spec = FIELDS.get(label)
    if spec is not None and spec.kind is Kind.ENUM:
        return None if item.text is None else Reading(item.text, view.age_seconds)
    return None if item.value is None else Reading(item.value, view.age_seconds, item.text)


def _summary_ages(devices: Sequence[DeviceView], probes: Sequence[ProbeView],
                  battery_device: str | None) -> dict[str, float | None]:
    """How old each summary value is: the age of what it comes from (the oldest, for a sum)."""
    ages = {view.name: view.age_seconds for view in devices}
    chargers = [view.age_seconds for view in devices
                if view.up and view.identity.kind == "mppt" and "PPV" in view.fields and view.age_seconds is not None]
    consumption = next((p.age_seconds for p in probes
                        if (p.value if p.quantity == "power" else p.power_watts) is not None), None)
    temperature = next((p.age_seconds for p in probes if p.quantity == "temperature" and p.value is not None), None)
    battery = ages.get(battery_device) if battery_device is not None else None
    return {"battery_soc": battery, "battery_voltage": battery, "pv_power": max(chargers) if chargers else None,
            "consumption": consumption, "temperature": temperature}


def gather(devices: Sequence[DeviceView], probes: Sequence[ProbeView], wanted: Collection[str]) -> dict[str, Reading]:
    """The `wanted` values that are known now; a value missing from the result has no fresh reading."""
    readings: dict[str, Reading] = {}
    summary = summarise(devices, probes)
    ages = _summary_ages(devices, probes, summary.battery_device)
    by_device = {view.name: view for view in devices}
    by_probe = {probe.name: probe for probe in probes}
    for name in wanted:
        reading: Reading | None = None
        if name.startswith("summary.") and name.removeprefix("summary.") in SUMMARY_INPUTS:
            key = name.removeprefix("summary.")
            value, age = getattr(summary, key), ages[key]
            reading = None if value is None or age is None else Reading(float(value), age)
        elif name in by_probe:
            probe = by_probe[name]
            if probe.up and probe.value is not None and probe.age_seconds is not None:
                reading = Reading(probe.value, probe.age_seconds)
        else:
            device, _, label = name.rpartition(".")
            if device in by_device:
                reading = _device_reading(by_device[device], label)
        if reading is not None:
            readings[name] = reading
    return readings
