"""The installation at a glance, as PvMonit's "Divers" box showed it: the battery, the sun, the house. Pure.

One place decides which device speaks for the battery and which probes are the consumption and the room
temperature, so that the live page's summary and its 24-hour history agree.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pvmonit_exporter.state import DeviceView, ProbeView
from pvmonit_exporter.vedirect.fields import decode

# Kinds that carry a battery voltage, in order of preference: the battery monitor measures it best.
_BATTERY_SOURCES = ("bmv", "mppt", "charger")


@dataclass(frozen=True)
class Summary:
    """Values in SI units (ratio, V, W, °C); None when nothing fresh provides one."""

    battery_soc: float | None  # 0-1, from the battery monitor
    battery_voltage: float | None  # the battery monitor's, else a charger's
    battery_device: str | None  # the device both come from
    pv_power: float | None  # W, the sum over every solar charger that is up
    chargers: int  # solar chargers known (up or not): the PV gauge's end is pv_power_max × this
    consumption: float | None  # W, from the first power probe or current probe with power_voltage
    consumption_probes: int  # probes giving watts (fresh or not): the page shows a consumption gauge when any
    temperature: float | None  # °C, from the first temperature probe


def _value(view: DeviceView, label: str) -> float | None:
    raw = view.fields.get(label)
    if raw is None:
        return None
    value = decode(label, raw).value
    return value if value is not None and math.isfinite(value) else None


def _battery(devices: Sequence[DeviceView]) -> tuple[float | None, float | None, str | None]:
    for kind in _BATTERY_SOURCES:
        for view in devices:
            if view.up and view.identity.kind == kind and (volts := _value(view, "V")) is not None:
                soc = _value(view, "SOC") if kind == "bmv" else None
                return soc, volts, view.name
    return None, None, None


def _consumption(probe: ProbeView) -> float | None:
    return probe.value if probe.quantity == "power" else probe.power_watts


def summarise(devices: Sequence[DeviceView], probes: Sequence[ProbeView]) -> Summary:
    soc, volts, source = _battery(devices)
    chargers = [view for view in devices if view.identity.kind == "mppt"]
    powers = [power for view in chargers if view.up and (power := _value(view, "PPV")) is not None]
    consumption = next((watts for probe in probes if (watts := _consumption(probe)) is not None), None)
    temperature = next((p.value for p in probes if p.quantity == "temperature" and p.value is not None), None)
    return Summary(
        battery_soc=soc,
        battery_voltage=volts,
        battery_device=source,
        pv_power=sum(powers) if powers else None,
        chargers=len(chargers),
        consumption=consumption,
        consumption_probes=sum(probe.gives_watts for probe in probes),
        temperature=temperature,
    )
