"""The demo's day: the physics of one small off-grid 24 V installation on an accelerated day
(sun, panels, chargers, battery, inverter and loads), pure: no I/O, no clock, no threads.
"""

import logging
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pvmonit_exporter.vedirect.history import HISTORY_DAYS

log = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400
DEFAULT_DAY_SECONDS = 600.0  # one simulated day lasts ten real minutes: a demo shows a whole day quickly
DEFAULT_START_HOUR = 9.0  # morning, so a demo shows PV power at once
DEFAULT_PERIOD = 1.0  # real devices send every second (doc 3.22)
PROBE_NAME = "shed_temperature"
CLAMP_NAME = "house_consumption"
PROBE_INTERVAL = 5.0
CLAMP_VOLTAGE = 230.0  # PvMonit's amperes → watts factor
CLAMP_CEILING_WATTS = 1500.0  # PvMonit's default $CONSO_PLAFOND

# CS codes (reference §5a) the model goes through.
CS_OFF, CS_BULK, CS_ABSORPTION, CS_FLOAT, CS_INVERTING = 0, 3, 4, 5, 9

# A 200 Ah 24 V AGM bank.
_CAPACITY_AH = 200.0
_INITIAL_SOC = 0.6
_OCV_EMPTY, _OCV_SPAN = 23.4, 2.2  # open-circuit volts at 0 % and the rise to 100 %
_R_BASE = 0.03  # Ω
# Charge acceptance falls as the bank fills: the charging resistance grows like soc / (1 - soc). With it the
# bank reaches absorption voltage near 93 % at 20 A and its absorption current tails off near 100 %.
_R_FILL = 0.012
_ABSORPTION_V, _FLOAT_V = 28.8, 27.6
_TAIL_CURRENT = 0.02 * _CAPACITY_AH  # absorption ends when the bank accepts less than 2 % of C
_REBULK_SOC = 0.9
_CHARGE_EFFICIENCY = 0.95
_CYCLE_DEPTH_AH = -0.35 * _CAPACITY_AH  # BMV: a charge cycle is a discharge below 65 % then a full charge
_LOW_SOC_ALARM = 0.3
_INVERTER_OFF_SOC, _INVERTER_ON_SOC = 0.1, 0.2  # low-battery shutdown and restart, with hysteresis
_LOW_VOLTAGE_WARNING = 23.2

# The MPPT and its array: two 60-cell panels in series.
_CONVERTER_EFFICIENCY = 0.97
_CHARGER_MAX_A = 30.0
_PANEL_VMP, _PANEL_VOC = 62.0, 76.0
_PANEL_TEMP_COEFF = -0.004  # per °C above 25 °C
_MIN_PV_WATTS = 2.0  # below this an MPPT stays off
_SUNRISE_H, _SUNSET_H = 6.0, 20.0

# The 250 VA Phoenix inverter and its loads.
_INVERTER_VA = 250.0
_INVERTER_EFFICIENCY = 0.88
_POWER_FACTOR = 0.9
_INVERTER_IDLE_W = 6.0
_AC_VOLTS = 230.0

_HEX_ASYNC = 0xA
_REG_DEVICE_STATE = 0x0201  # value: the CS code, 1 byte
_REG_CHARGER_TEMPERATURE = 0xEDDB  # value: 0.01 °C, signed 16 bits
# After a valid HEX frame a real device stops its text blocks for a few seconds (vedirect-hex.md §4).
DEFAULT_TEXT_PAUSE = 2.0
_FLAG_UNKNOWN_ID, _FLAG_PARAMETER_ERROR = 0x01, 0x04
_CAPABILITY_LOAD, _CAPABILITY_HISTORY = 1 << 0, 1 << 2
# The load output's mode register and its values (Victron's register header): 0 off, 1 automatic, 4 on; the
# others are other automatic algorithms.
_REG_LOAD_CONTROL = 0xEDAB
_LOAD_OFF, _LOAD_AUTOMATIC, _LOAD_ON = 0, 1, 4
_LOAD_MODES = frozenset(range(7))


def _ocv(soc: float) -> float:
    return _OCV_EMPTY + _OCV_SPAN * soc


def _charge_resistance(soc: float) -> float:
    return _R_BASE + _R_FILL * soc / (1.01 - soc)


def _acceptance(volts: float, soc: float) -> float:
    """The current the bank takes when held at `volts`."""
    return (volts - _ocv(soc)) / _charge_resistance(soc)


@dataclass
class PvCharger:
    """One MPPT with its array: what it harvests now and the daily history it reports (H19–H23, HSDS)."""

    peak_watts: float
    power: float = 0.0  # W taken from the panels
    panel_voltage: float = 0.0  # V
    output_current: float = 0.0  # A on the battery side (battery and load output together)
    limited: bool = False  # the battery, not the sun, sets the power
    yield_total: float = 2_415.37  # kWh; a system that has run for a while
    yield_today: float = 0.0
    max_power_today: float = 0.0
    yield_yesterday: float = 2.11
    max_power_yesterday: float = 0.0
    day_sequence: int = 30  # the charger has been running for a month: 30 past days in its history
    # Today's figures for the HEX history record, and the past days' records (yesterday first).
    battery_max: float = 0.0
    battery_min: float = 0.0
    max_current: float = 0.0
    max_pv_voltage: float = 0.0
    consumed_today: float = 0.0  # kWh through the load output
    minutes: dict[int, float] = field(default_factory=dict)  # CS code → minutes in it today
    past_days: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.max_power_yesterday = round(0.71 * self.peak_watts)
        self.past_days = [self._made_up_day(days_ago) for days_ago in range(1, HISTORY_DAYS)]

    def _made_up_day(self, days_ago: int) -> dict[str, Any]:
        """A plausible past day (the month before the simulation began); yesterday matches H22 and H23."""
        weather = 0.55 + 0.4 * math.sin(days_ago * 1.7) ** 2
        yield_kwh = 2.11 if days_ago == 1 else round(self.peak_watts * 6.0 * weather / 1000, 2)
        power = self.max_power_yesterday if days_ago == 1 else round(self.peak_watts * (0.5 + 0.45 * weather))
        return {
            "yield_kwh": yield_kwh, "consumed_kwh": round(0.35 * 24 * 24.5 / 1000 * 0.6, 2),
            "battery_voltage_max_v": round(28.2 + 0.6 * weather, 2),
            "battery_voltage_min_v": round(24.3 + 0.4 * weather, 2),
            "max_power_w": power, "max_battery_current_a": round(power / 26.5, 1),
            "max_pv_voltage_v": round(_PANEL_VOC * 0.97, 2), "bulk_min": round(180 + 200 * (1 - weather)),
            "absorption_min": round(90 * weather), "float_min": round(240 * weather), "errors": [0, 0, 0, 0],
            "day_sequence": self.day_sequence - days_ago, "error_database": 0,
        }

    def today(self, battery_voltage: float) -> dict[str, Any]:
        """Today's history record so far, in the fields of `history.encode_day`."""
        return {
            "yield_kwh": round(self.yield_today, 2), "consumed_kwh": round(self.consumed_today, 2),
            "battery_voltage_max_v": round(self.battery_max or battery_voltage, 2),
            "battery_voltage_min_v": round(self.battery_min or battery_voltage, 2),
            "max_power_w": round(self.max_power_today), "max_battery_current_a": round(self.max_current, 1),
            "max_pv_voltage_v": round(self.max_pv_voltage, 2), "bulk_min": round(self.minutes.get(CS_BULK, 0)),
            "absorption_min": round(self.minutes.get(CS_ABSORPTION, 0)),
            "float_min": round(self.minutes.get(CS_FLOAT, 0)), "errors": [0, 0, 0, 0],
            "day_sequence": self.day_sequence, "error_database": 0,
        }

    def new_day(self, battery_voltage: float) -> None:
        """The charger's day ends: today's counters move to yesterday's and today's record into the history,
        as the charger does."""
        self.past_days = [self.today(battery_voltage), *self.past_days][: HISTORY_DAYS - 1]
        self.yield_yesterday, self.yield_today = self.yield_today, 0.0
        self.max_power_yesterday, self.max_power_today = self.max_power_today, 0.0
        self.consumed_today = self.max_current = self.max_pv_voltage = 0.0
        self.battery_max = self.battery_min = 0.0
        self.minutes = {}
        self.day_sequence = (self.day_sequence + 1) % 65535

    def track(self, battery_voltage: float, charge_state: int, load_current: float, hours: float) -> None:
        """Today's extremes and times, once per model step."""
        self.battery_max = max(self.battery_max or battery_voltage, battery_voltage)
        self.battery_min = min(self.battery_min or battery_voltage, battery_voltage)
        self.max_current = max(self.max_current, self.output_current)
        self.max_pv_voltage = max(self.max_pv_voltage, self.panel_voltage)
        self.minutes[charge_state] = self.minutes.get(charge_state, 0.0) + hours * 60
        self.consumed_today += load_current * battery_voltage * hours / 1000


@dataclass
class BatteryHistory:
    """What a BMV keeps (H1–H18): charges in Ah (negative when drawn), voltages in V, energies in kWh."""

    deepest_discharge: float = -96.4
    last_discharge: float = -41.2
    average_discharge: float = -38.7
    charge_cycles: int = 112
    full_discharges: int = 0
    cumulative_drawn: float = -8_420.6
    min_voltage: float = 22.91
    max_voltage: float = 29.08
    seconds_since_full: float = 61_200.0
    synchronisations: int = 241
    low_voltage_alarms: int = 0
    high_voltage_alarms: int = 0
    min_aux_voltage: float = 12.18
    max_aux_voltage: float = 14.05
    discharged_energy: float = 205.37
    charged_energy: float = 231.84
    discharge_in_progress: float = -40.0  # deepest since the last synchronisation

    def synchronise(self) -> None:
        """The bank is full: close the discharge in progress, as the BMV does on synchronisation."""
        self.last_discharge = self.discharge_in_progress
        self.synchronisations += 1
        if self.discharge_in_progress <= _CYCLE_DEPTH_AH:
            self.charge_cycles += 1
        self.average_discharge += (self.discharge_in_progress - self.average_discharge) / self.synchronisations
        self.discharge_in_progress = 0.0
        self.seconds_since_full = 0.0


class SystemModel:
    """The physics of one installation, shared by all its devices: sun, clouds, loads, one battery.

    Pure and deterministic: `step` advances by a real-time duration, sped up so that a whole day lasts
    `day_seconds`; randomness comes from a `random.Random(seed)`. Attributes hold SI-ish floats (V, A, W, °C);
    the devices turn them into protocol units.
    """

    def __init__(
        self,
        chargers: Mapping[str, float],
        *,
        seed: int = 0,
        day_seconds: float = DEFAULT_DAY_SECONDS,
        start_hour: float = DEFAULT_START_HOUR,
    ) -> None:
        """`chargers`: MPPT name → array peak watts; the first one's load output feeds the DC loads."""
        if day_seconds <= 0:
            raise ValueError("day_seconds must be positive")
        self.speed = SECONDS_PER_DAY / day_seconds
        self.clock = start_hour * 3600.0  # simulated seconds since midnight of day 0
        self.chargers = {name: PvCharger(watts) for name, watts in chargers.items()}
        self.load_charger = next(iter(self.chargers), None)
        self.history = BatteryHistory()
        self._rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not cryptography
        self.cloud = 0.85  # fraction of clear-sky sunlight reaching the panels
        self._temperature_drift = 0.0
        self.temperature = self._ambient() + 1.0  # battery / shed temperature, °C
        self.soc = _INITIAL_SOC
        self.charge_state = CS_OFF
        self.inverter_on = True
        self.ac_voltage = _AC_VOLTS
        self.ac_load = 0.0  # VA
        self.inverter_current = 0.0  # A drawn from the battery
        self.dc_load_current = 0.0  # A through the first MPPT's load output
        self.battery_current = 0.0  # A, positive when charging
        self.battery_voltage = _ocv(self.soc)
        self.aux_voltage = 12.6  # the starter battery watched by the BMV's second input
        self.step(0.0)

    @property
    def hour(self) -> float:
        """Simulated time of day, 0 ≤ hour < 24."""
        return self.clock % SECONDS_PER_DAY / 3600.0

    @property
    def day(self) -> int:
        return int(self.clock // SECONDS_PER_DAY)

    @property
    def sun(self) -> float:
        """Clear-sky irradiance as a fraction of the noon peak."""
        return max(0.0, math.sin(math.pi * (self.hour - _SUNRISE_H) / (_SUNSET_H - _SUNRISE_H)))

    @property
    def consumed_ah(self) -> float:
        """Charge drawn since full, ≤ 0, as the BMV's CE."""
        return -(1.0 - self.soc) * _CAPACITY_AH

    @property
    def battery_power(self) -> float:
        return self.battery_voltage * self.battery_current

    @property
    def house_current(self) -> float:
        """What a clamp on the inverter's output cable reads, in amperes: the house's AC consumption."""
        return self.ac_load / _AC_VOLTS

    def step(self, real_seconds: float) -> None:
        """Advance by `real_seconds` of real time (× speed of simulated time)."""
        seconds = real_seconds * self.speed
        hours = seconds / 3600.0
        day_before = self.day
        self.clock += seconds
        for _ in range(self.day - day_before):
            for charger in self.chargers.values():
                charger.new_day(self.battery_voltage)
        self._weather(hours)
        self._loads()
        self._charge(hours)
        self._record(seconds, hours)

    def _drift(self, value: float, mean: float, per_hour: float, spread: float, hours: float) -> float:
        """One exact step of a mean-reverting random walk (Ornstein–Uhlenbeck) with stationary std `spread`:
        values wander plausibly and the step size does not change their statistics."""
        decay = math.exp(-per_hour * hours)
        return mean + (value - mean) * decay + spread * math.sqrt(1 - decay * decay) * self._rng.gauss(0, 1)

    def _ambient(self) -> float:
        return 17.0 + 6.0 * math.sin(2 * math.pi * (self.hour - 9.0) / 24)  # warmest at 15:00

    def _weather(self, hours: float) -> None:
        self.cloud = min(1.0, max(0.15, self._drift(self.cloud, 0.8, 1.5, 0.2, hours)))
        self._temperature_drift = self._drift(self._temperature_drift, 0.0, 0.5, 1.5, hours)
        lag = 1 - math.exp(-hours / 2.0)  # the shed and the battery follow the air within hours
        self.temperature += (self._ambient() + self._temperature_drift - self.temperature) * lag
        self.aux_voltage = 12.62 + 0.12 * self.sun + self._rng.gauss(0, 0.004)

    def _loads(self) -> None:
        hour = self.hour
        if self.soc < _INVERTER_OFF_SOC:
            self.inverter_on = False
        elif self.soc > _INVERTER_ON_SOC:
            self.inverter_on = True
        fridge = 70.0 if self.clock % 2700 < 1100 else 0.0  # the compressor runs ~40 % of the time
        evening = 90.0 if 18 <= hour < 23 else 0.0
        breakfast = 40.0 if 7 <= hour < 8 else 0.0
        load = 20.0 + fridge + evening + breakfast + self._rng.gauss(0, 6)
        self.ac_load = min(_INVERTER_VA - 10, max(5.0, load)) if self.inverter_on else 0.0
        self.ac_voltage = _AC_VOLTS + self._rng.gauss(0, 0.3) if self.inverter_on else 0.0
        dc_watts = self.ac_load * _POWER_FACTOR / _INVERTER_EFFICIENCY + _INVERTER_IDLE_W
        self.inverter_current = dc_watts / self.battery_voltage if self.inverter_on else 0.0
        self.dc_load_current = 0.35 + (0.6 if 19 <= hour < 23 else 0.0)  # router, then lights

    def _charge(self, hours: float) -> None:
        volts = self.battery_voltage
        load_watts = (self.dc_load_current + self.inverter_current) * volts
        available = {
            name: min(c.peak_watts * self.sun * self.cloud * _CONVERTER_EFFICIENCY, _CHARGER_MAX_A * volts)
            for name, c in self.chargers.items()
        }
        total = sum(available.values())
        if total < _MIN_PV_WATTS:
            self.charge_state = CS_OFF
        elif self.charge_state == CS_OFF or (self.charge_state == CS_FLOAT and self.soc < _REBULK_SOC):
            self.charge_state = CS_BULK
        delivered, current, voltage = self._settle(total, load_watts)
        if self.charge_state == CS_BULK and (voltage >= _ABSORPTION_V or self.soc >= 0.98):
            self.charge_state = CS_ABSORPTION
            delivered, current, voltage = self._settle(total, load_watts)
        if self.charge_state == CS_ABSORPTION and _acceptance(_ABSORPTION_V, self.soc) < _TAIL_CURRENT:
            self.charge_state = CS_FLOAT
            self.history.synchronise()
            self.soc = 1.0
            delivered, current, voltage = self._settle(total, load_watts)
        self.battery_current, self.battery_voltage = current, voltage
        gain = current * _CHARGE_EFFICIENCY if current > 0 else current
        self.soc = min(1.0, max(0.0, self.soc + gain * hours / _CAPACITY_AH))
        for name, charger in self.chargers.items():
            share = delivered * available[name] / total if total > 0 else 0.0
            charger.limited = delivered < total - 0.5
            charger.power = share / _CONVERTER_EFFICIENCY
            charger.output_current = share / volts
            charger.panel_voltage = self._panel_voltage(share, available[name])
            charger.yield_today += charger.power * hours / 1000
            charger.yield_total += charger.power * hours / 1000
            charger.max_power_today = max(charger.max_power_today, charger.power)
            load = self.dc_load_current if name == self.load_charger else 0.0
            charger.track(self.battery_voltage, self.charge_state, load, hours)

    def _settle(self, available: float, load_watts: float) -> tuple[float, float, float]:
        """Watts the chargers deliver, battery current and voltage for the present charge state."""
        volts = self.battery_voltage
        ocv = _ocv(self.soc)
        if self.charge_state in (CS_ABSORPTION, CS_FLOAT):
            target = _ABSORPTION_V if self.charge_state == CS_ABSORPTION else _FLOAT_V
            accepted = max(0.0, _acceptance(target, self.soc))
            delivered = min(available, accepted * volts + load_watts)
        else:
            delivered = available if self.charge_state == CS_BULK else 0.0
        current = (delivered - load_watts) / volts
        resistance = _charge_resistance(self.soc) if current > 0 else _R_BASE
        return delivered, current, min(_ABSORPTION_V, ocv + current * resistance)

    def _panel_voltage(self, delivered: float, available: float) -> float:
        """Near the maximum power point while tracking, towards open circuit as the charger throttles."""
        if self.sun <= 0:
            return 0.01
        cell = self.temperature + 25.0 * self.sun
        factor = 1 + _PANEL_TEMP_COEFF * (cell - 25.0)
        voc = _PANEL_VOC * factor * min(1.0, 0.85 + 0.15 * self.sun)
        if available <= 0:
            return voc
        vmp = _PANEL_VMP * factor + self._rng.gauss(0, 0.2)
        return vmp + (voc - vmp) * (1 - delivered / available)

    def _record(self, seconds: float, hours: float) -> None:
        history, current, volts = self.history, self.battery_current, self.battery_voltage
        history.discharge_in_progress = min(history.discharge_in_progress, self.consumed_ah)
        history.deepest_discharge = min(history.deepest_discharge, self.consumed_ah)
        if current < 0:
            history.cumulative_drawn += current * hours
            history.discharged_energy -= current * volts * hours / 1000
        else:
            history.charged_energy += current * volts * hours / 1000
        history.min_voltage = min(history.min_voltage, volts)
        history.max_voltage = max(history.max_voltage, volts)
        history.min_aux_voltage = min(history.min_aux_voltage, self.aux_voltage)
        history.max_aux_voltage = max(history.max_aux_voltage, self.aux_voltage)
        history.seconds_since_full += seconds


def _milli(value: float) -> str:
    return str(round(value * 1000))


def _hundredths(kwh: float) -> str:
    """Energy counters in 0.01 kWh; truncated so that they never run ahead of the energy."""
    return str(int(kwh * 100))


def _on_off(on: bool) -> str:
    return "ON" if on else "OFF"


def clamp_line(model: SystemModel) -> bytes:
    """One line of a serial clamp meter in the Aviosys 8870's style (`00.43A`), with a second decimal: at
    230 V the first decimal alone would move the demo's consumption in 23 W steps."""
    return f"{model.house_current:05.2f}A\r\n".encode("ascii")
