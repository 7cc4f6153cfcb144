"""Simulated Victron devices that write genuine VE.Direct text frames into real pseudo-terminals.

Why: the `demo` command, the tests and the benchmarks need devices that behave like real ones — checksummed
blocks once a second, the BMV's two blocks, asynchronous HEX messages between an MPPT's blocks, a port that
disappears and comes back — on a machine without hardware. The exporter reads them through the same code
path (pyserial on a tty) as a real USB cable.

Three layers, the first two pure (no I/O, no clock, no threads) so that a seed gives the same bytes every time:
- `SystemModel`: the physics of one small off-grid 24 V installation on an accelerated day.
- `Bmv702`, `BlueSolarMppt`, `PhoenixInverter`: the exact blocks each product sends, in raw protocol units;
  `iter_frames` / `frames_for` give their bytes without any PTY (benchmarks).
- `SimulatedPort` and `Simulator`: pseudo-terminals, a writer thread, a temperature file for a `file` probe and
  a current clamp on its own pseudo-terminal for a `serial` probe (PvMonit's thermometer and clamp).
"""

import errno
import fcntl
import itertools
import logging
import math
import os
import random
import select
import shutil
import struct
import tempfile
import termios
import threading
import time
import tty
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from pvmonit_exporter.config import DeviceConfig, ProbeConfig
from pvmonit_exporter.vedirect import hex as vehex
from pvmonit_exporter.vedirect.framing import Block, encode_block, encode_hex_message
from pvmonit_exporter.vedirect.history import HISTORY_DAYS, encode_day, encode_total

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


class SimulatedDevice(ABC):
    """One Victron product: the blocks it sends each second, built from the shared model, and its answers to
    HEX requests."""

    hex_firmware: int | None = None  # the ping reply (0x4159: 1.59); None: the device ignores HEX
    product_number = 0

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def blocks(self, model: SystemModel) -> list[Block]:
        """The checksummed blocks of one transmission period, in order."""

    def frame(self, model: SystemModel) -> bytes:
        """The bytes of one transmission period."""
        return b"".join(encode_block(block) for block in self.blocks(model))

    def registers(self, model: SystemModel) -> Mapping[int, bytes]:
        """The HEX registers the device answers, with their value bytes now."""
        return {}

    def missing_flag(self, register: int) -> int:
        """The flag a get of a register the device does not have is refused with."""
        return _FLAG_UNKNOWN_ID

    def set_register(self, register: int, value: bytes) -> int:
        """A set: the flags of the answer (0 when taken). Only the load output's mode is writable here."""
        return _FLAG_UNKNOWN_ID

    def answer(self, body: bytes, model: SystemModel) -> bytes | None:
        """The reply to one HEX request (`body`: without `:` and LF), as the device sends it; None when the
        device answers nothing (it speaks no HEX)."""
        if self.hex_firmware is None:
            return None
        frame = vehex.parse_frame(body)
        if frame is None:
            return encode_hex_message(vehex.Response.FRAME_ERROR, b"\xaa\xaa")
        command, payload = frame
        if command == vehex.Command.PING:
            return encode_hex_message(vehex.Response.PING, self.hex_firmware.to_bytes(2, "little"))
        if command == vehex.Command.APP_VERSION:
            return encode_hex_message(vehex.Response.DONE, self.hex_firmware.to_bytes(2, "little"))
        if command == vehex.Command.PRODUCT_ID:
            return encode_hex_message(vehex.Response.DONE, self.product_number.to_bytes(2, "little"))
        if command == vehex.Command.SET and len(payload) >= 4:
            register = int.from_bytes(payload[:2], "little")
            flags = self.set_register(register, payload[3:])
            return vehex.encode_register(vehex.Response.SET, register, flags, payload[3:] if not flags else b"")
        if command == vehex.Command.GET and len(payload) >= 3:
            register = int.from_bytes(payload[:2], "little")
            value = self.registers(model).get(register)
            if value is None:
                return vehex.encode_register(vehex.Response.GET, register, self.missing_flag(register))
            return vehex.encode_register(vehex.Response.GET, register, 0, value)
        return encode_hex_message(vehex.Response.UNKNOWN_COMMAND, bytes([command]))


def _un(value: float, size: int) -> bytes:
    return max(0, round(value)).to_bytes(size, "little")


def _sn(value: float, size: int) -> bytes:
    return round(value).to_bytes(size, "little", signed=True)


def _product_id(number: int) -> bytes:
    """Register 0x0100 as recorded from real devices (go-victron's tests: SmartSolar `00 56 A0 FF`): an un8
    identifier 0, the product id little-endian, then a byte of flags."""
    return b"\x00" + number.to_bytes(2, "little") + b"\xff"


class Bmv702(SimulatedDevice):
    """BMV-702 battery monitor: a main block then a history block, like the genuine recording bvm702.dump."""

    pid = "0x204"
    firmware = "0308"
    hex_firmware = 0x4308
    product_number = 0x0204

    def registers(self, model: SystemModel) -> Mapping[int, bytes]:
        return {
            0x0100: _product_id(self.product_number),
            0x0140: _un(0, 4),  # no history in HEX: the BMV sends H1…H18 as text
            0x1000: _un(_CAPACITY_AH, 2),
            0xED8D: _sn(model.battery_voltage * 100, 2),
            0xED8F: _sn(model.battery_current * 10, 2),
            0xED7D: _sn(model.aux_voltage * 100, 2),
            0x0FFF: _un(model.soc * 10000, 2),
        }

    def blocks(self, model: SystemModel) -> list[Block]:
        h = model.history
        current = model.battery_current
        charging = current >= 0
        time_to_go = -1 if charging else round(max(0.0, model.soc - 0.5) * _CAPACITY_AH / -current * 60)
        alarm = model.soc < _LOW_SOC_ALARM
        main = {
            "PID": self.pid,
            "V": _milli(model.battery_voltage),
            "VS": _milli(model.aux_voltage),
            "I": _milli(current),
            "P": str(round(model.battery_power)),
            "CE": _milli(model.consumed_ah),
            "SOC": str(round(model.soc * 1000)),
            "TTG": str(time_to_go),  # to the 50 % discharge floor; -1 while not discharging (doc 3.22 fn7)
            "Alarm": _on_off(alarm),
            "Relay": "OFF",
            "AR": "4" if alarm else "0",  # bit 4: low SOC
            "BMV": "702",
            "FW": self.firmware,
        }
        history = {  # BMV-700 column of Table I: no H13/H14 (those are BMV-600 only)
            "H1": _milli(h.deepest_discharge),
            "H2": _milli(h.last_discharge),
            "H3": _milli(h.average_discharge),
            "H4": str(h.charge_cycles),
            "H5": str(h.full_discharges),
            "H6": _milli(h.cumulative_drawn),
            "H7": _milli(h.min_voltage),
            "H8": _milli(h.max_voltage),
            "H9": str(int(h.seconds_since_full)),
            "H10": str(h.synchronisations),
            "H11": str(h.low_voltage_alarms),
            "H12": str(h.high_voltage_alarms),
            "H15": _milli(h.min_aux_voltage),
            "H16": _milli(h.max_aux_voltage),
            "H17": _hundredths(h.discharged_energy),
            "H18": _hundredths(h.charged_energy),
        }
        return [main, history]


class BlueSolarMppt(SimulatedDevice):
    """BlueSolar MPPT 100/30 rev2: one block of 18 fields (the protocol's maximum, so no OR), and every
    `hex_every` periods an asynchronous HEX message after it, as real MPPTs send."""

    pid = "0xA04A"
    firmware = "159"
    hex_firmware = 0x4159
    product_number = 0xA04A

    def __init__(self, name: str, serial: str, pv_peak_watts: float, hex_every: int = 30, *,
                 follows_load_control: bool = True) -> None:
        """`follows_load_control=False`: a charger that acknowledges a set of its load output's mode (0xEDAB)
        but whose load output state (0xEDA8) does not change — the write that does not stick."""
        super().__init__(name)
        self.serial = serial
        self.pv_peak_watts = pv_peak_watts
        self.hex_every = hex_every
        self._periods = 0
        self.follows_load_control = follows_load_control
        self.load_mode = _LOAD_AUTOMATIC
        self.load_writes: list[int] = []  # every mode written to 0xEDAB, in order

    def set_register(self, register: int, value: bytes) -> int:
        if register != _REG_LOAD_CONTROL:
            return _FLAG_UNKNOWN_ID
        if len(value) != 1 or value[0] not in _LOAD_MODES:
            return _FLAG_PARAMETER_ERROR
        self.load_writes.append(value[0])
        self.load_mode = value[0]
        return 0

    def load_on(self, model: SystemModel) -> bool:
        """The load output now: forced by 0xEDAB (4 on, 0 off) or, in automatic, on for the charger that feeds
        the DC loads; a charger that does not follow its load control stays in automatic."""
        automatic = model.load_charger == self.name
        if not self.follows_load_control:
            return automatic
        return {_LOAD_OFF: False, _LOAD_ON: True}.get(self.load_mode, automatic)

    def blocks(self, model: SystemModel) -> list[Block]:
        c = model.chargers[self.name]
        has_load = model.load_charger == self.name
        load_current = model.dc_load_current if has_load else 0.0
        state = model.charge_state
        return [
            {
                "PID": self.pid,
                "FW": self.firmware,
                "SER#": self.serial,
                "V": _milli(model.battery_voltage),
                "I": _milli(c.output_current - load_current),  # battery current since fw 1.15
                "VPV": _milli(c.panel_voltage),
                "PPV": str(round(c.power)),
                "CS": str(state),
                "MPPT": "0" if state == CS_OFF else "1" if c.limited else "2",
                "ERR": "0",
                "LOAD": _on_off(self.load_on(model)),
                "IL": _milli(load_current),
                "H19": _hundredths(c.yield_total),
                "H20": _hundredths(c.yield_today),
                "H21": str(round(c.max_power_today)),
                "H22": _hundredths(c.yield_yesterday),
                "H23": str(round(c.max_power_yesterday)),
                "HSDS": str(c.day_sequence),
            }
        ]

    def frame(self, model: SystemModel) -> bytes:
        data = super().frame(model)
        self._periods += 1
        if self._periods % self.hex_every == 0:
            data += self._async_message(model, self._periods // self.hex_every)
        return data

    def _async_message(self, model: SystemModel, count: int) -> bytes:
        """`:A` + register (little-endian) + flags + value: the device state and the charger's temperature
        in turn."""
        if count % 2:
            register, value = _REG_DEVICE_STATE, bytes([model.charge_state])
        else:
            register, value = _REG_CHARGER_TEMPERATURE, struct.pack("<h", round(self._inside(model) * 100))
        return encode_hex_message(_HEX_ASYNC, struct.pack("<HB", register, 0) + value)

    def _inside(self, model: SystemModel) -> float:
        """The charger's internal temperature: the shed's, warmed by the power it converts."""
        return model.temperature + 3.0 + 0.02 * model.chargers[self.name].power

    def registers(self, model: SystemModel) -> Mapping[int, bytes]:
        """Identity, live values, settings and the 31-day history, consistent with the text blocks."""
        c = model.chargers[self.name]
        volts = model.battery_voltage
        days = [c.today(volts), *c.past_days]
        max_pv = max(float(day["max_pv_voltage_v"]) for day in days)
        max_battery = max(float(day["battery_voltage_max_v"]) for day in days)
        has_load = model.load_charger == self.name
        return {
            0x0100: _product_id(self.product_number),
            0x0102: b"\x00" + _un(0x0159FF, 3),  # an un8 identifier, then the un24 version (ve_regs.h)
            0x010A: self.serial.encode("ascii") + b"\x00",
            0x010B: b"BlueSolar MPPT 100/30 rev2\x00",
            0x0140: _un(_CAPABILITY_LOAD | _CAPABILITY_HISTORY, 4),
            0x0200: bytes([1]),
            0x0201: bytes([model.charge_state]),
            0xEDBB: _un(c.panel_voltage * 100, 2),
            0xEDBD: _un(c.power / c.panel_voltage * 10 if c.panel_voltage > 1 else 0, 2),
            0xEDBC: _un(c.power * 100, 4),
            0xEDD5: _un(volts * 100, 2),
            0xEDD7: _sn(c.output_current * 10, 2),
            0xEDD3: _un(int(c.yield_today * 100), 2),
            0xEDD1: _un(int(c.yield_yesterday * 100), 2),
            0xEDD2: _un(c.max_power_today, 2),
            0xEDD0: _un(c.max_power_yesterday, 2),
            0xEDDC: _un(int(c.yield_total * 100), 4),
            0xEDDD: _un(int(c.yield_total * 100), 4),  # never reset on this simulated charger
            0xEDDA: bytes([0]),
            0xEDDB: _sn(self._inside(model) * 100, 2),
            0xEDEC: b"\xff\xff",  # no battery temperature sensor: not available
            0xEDF0: _un(_CHARGER_MAX_A * 10, 2),
            0xEDF1: bytes([0xFF]),  # user defined
            0xEDF7: _un(_ABSORPTION_V * 100, 2),
            0xEDF6: _un(_FLOAT_V * 100, 2),
            0xEDF4: _un(32.4 * 100, 2),
            0xEDF2: _sn(-32.4 * 100, 2),
            0xEDEF: bytes([24]),
            0xEDA8: bytes([1 if self.load_on(model) else 0]),
            0xEDAB: bytes([self.load_mode]),
            0xEDAD: _un(model.dc_load_current * 10 if has_load else 0, 2),
            0x2031: _un(model.hour * 60, 2),
            0x104F: encode_total(c.yield_total, c.yield_total, max_pv, max_battery, len(c.past_days)),
            **{0x1050 + days_ago: encode_day(day) for days_ago, day in enumerate(days)},
        }

    def missing_flag(self, register: int) -> int:
        """A history day the charger does not hold yet is refused with a flag, not an error of the link."""
        return _FLAG_PARAMETER_ERROR if 0x1050 <= register < 0x1050 + HISTORY_DAYS else _FLAG_UNKNOWN_ID


class PhoenixInverter(SimulatedDevice):
    """Phoenix Inverter 24V 250VA 230V."""

    pid = "0xA202"
    firmware = "114"

    def __init__(self, name: str, serial: str) -> None:
        super().__init__(name)
        self.serial = serial

    def blocks(self, model: SystemModel) -> list[Block]:
        on = model.inverter_on
        volts = model.battery_voltage - model.inverter_current * 0.005  # cable drop
        return [
            {
                "PID": self.pid,
                "FW": self.firmware,
                "SER#": self.serial,
                "MODE": "2",  # inverter on
                "CS": str(CS_INVERTING if on else CS_OFF),
                "AR": "0" if on else "1",  # off for low battery voltage
                "WARN": "1" if volts < _LOW_VOLTAGE_WARNING else "0",
                "V": _milli(volts),
                "AC_OUT_V": str(round(model.ac_voltage * 100)),
                "AC_OUT_I": str(round(model.ac_load / _AC_VOLTS * 10)),
                "AC_OUT_S": str(round(model.ac_load)),
            }
        ]


def demo_devices(mppt_count: int = 1) -> tuple[SimulatedDevice, ...]:
    """Fresh devices `bmv`, `mppt` (`mppt2`, … when `mppt_count` > 1) and `inverter`.

    Devices count their periods (for the HEX messages), so each simulation needs its own.
    """
    mppts = [
        BlueSolarMppt(
            "mppt" if i == 0 else f"mppt{i + 1}",
            serial="HQ1328Y6TF6" if i == 0 else f"HQ1331{i:05d}",  # LLYYWWSSSSS; the first is doc 3.22's
            pv_peak_watts=600.0 if i == 0 else 400.0,
        )
        for i in range(mppt_count)
    ]
    return (Bmv702("bmv"), *mppts, PhoenixInverter("inverter", serial="HQ1709VRT3K"))


def model_for(
    devices: Sequence[SimulatedDevice],
    *,
    seed: int = 0,
    day_seconds: float = DEFAULT_DAY_SECONDS,
    start_hour: float = DEFAULT_START_HOUR,
) -> SystemModel:
    """The installation behind `devices`: one PV array per MPPT."""
    names = [d.name for d in devices]
    if len(set(names)) != len(names):
        raise ValueError(f"device names must be unique: {names}")
    chargers = {d.name: d.pv_peak_watts for d in devices if isinstance(d, BlueSolarMppt)}
    return SystemModel(chargers, seed=seed, day_seconds=day_seconds, start_hour=start_hour)


def iter_frames(
    devices: Sequence[SimulatedDevice] | None = None,
    *,
    seed: int = 0,
    day_seconds: float = DEFAULT_DAY_SECONDS,
    start_hour: float = DEFAULT_START_HOUR,
    period: float = DEFAULT_PERIOD,
) -> Iterator[dict[str, bytes]]:
    """Endless: for each transmission period, device name → the bytes it sends. No PTY, no clock."""
    devices = demo_devices() if devices is None else devices
    model = model_for(devices, seed=seed, day_seconds=day_seconds, start_hour=start_hour)
    while True:
        yield {device.name: device.frame(model) for device in devices}
        model.step(period)


def frames_for(
    seconds: int,
    devices: Sequence[SimulatedDevice] | None = None,
    *,
    seed: int = 0,
    day_seconds: float = DEFAULT_DAY_SECONDS,
    start_hour: float = DEFAULT_START_HOUR,
) -> dict[str, bytes]:
    """Each device's byte stream over `seconds` one-second periods, for benchmarks."""
    streams: dict[str, bytearray] = {}
    periods = iter_frames(devices, seed=seed, day_seconds=day_seconds, start_hour=start_hour)
    for frames in itertools.islice(periods, seconds):
        for name, data in frames.items():
            streams.setdefault(name, bytearray()).extend(data)
    return {name: bytes(data) for name, data in streams.items()}


# A reader that keeps up holds far less than this in the tty's input queue; more means nobody reads.
_BACKLOG_LIMIT = 2048


class SimulatedPort:
    """A pseudo-terminal standing in for one VE.Direct USB cable.

    The slave is put into raw mode at once (the default line discipline would turn CR into LF before the
    exporter opens the port) and kept open by us, so the master never sees EIO when a reader closes. The
    master is non-blocking: like a real device, a writer never waits; a frame is dropped whole when nobody
    reads, so a reader always finds whole frames. With `link`, a symlink (like
    /dev/serial/by-id/…) follows the device across `unplug()` / `replug()`.
    """

    def __init__(self, link: str | Path | None = None) -> None:
        self.link = Path(link) if link is not None else None
        self.path = ""  # the slave's /dev/pts/N; "" while unplugged
        self.frames_dropped = 0
        self._lock = threading.Lock()
        self._master = self._slave = -1
        self.replug()

    @property
    def plugged(self) -> bool:
        return self._master >= 0

    def write(self, frame: bytes) -> bool:
        """Send one frame; False when it was dropped (nobody reads, or unplugged)."""
        with self._lock:
            if not self.plugged:
                return False
            if self._backlog() <= _BACKLOG_LIMIT and self._send(frame):
                return True
            self.frames_dropped += 1
            return False

    def fileno(self) -> int:
        """The master's descriptor, for select(); -1 while unplugged."""
        return self._master

    def read(self) -> bytes:
        """What the reader wrote to the device (HEX requests), without waiting; b"" when nothing."""
        with self._lock:
            if not self.plugged:
                return b""
            try:
                return os.read(self._master, 4096)
            except (BlockingIOError, OSError):
                return b""

    def unplug(self) -> None:
        """Close the PTY (a reader's next read fails) and remove the symlink."""
        with self._lock:
            self._close()

    def replug(self) -> None:
        """A new PTY, the symlink pointing at it (unplugging first if needed)."""
        with self._lock:
            self._close()
            master, slave = os.openpty()
            try:
                tty.setraw(slave)
                fcntl.fcntl(master, fcntl.F_SETFL, fcntl.fcntl(master, fcntl.F_GETFL) | os.O_NONBLOCK)
                path = os.ttyname(slave)
                if self.link is not None:
                    _point_link(self.link, path)
            except BaseException:
                os.close(master)
                os.close(slave)
                raise
            self._master, self._slave, self.path = master, slave, path

    def _send(self, frame: bytes) -> bool:
        """Write the whole frame or nothing. When the tty is full, what it holds is flushed with the fragment
        just written: bytes nobody read are lost, as on a real cable, but no reader ever gets a cut frame."""
        try:
            written = os.write(self._master, frame)
        except BlockingIOError:
            written = 0
        if written < len(frame):
            termios.tcflush(self._slave, termios.TCIFLUSH)
            return False
        return True

    def _backlog(self) -> int:
        """Bytes written but not yet read, as queued on the slave."""
        count: int = struct.unpack("i", fcntl.ioctl(self._slave, termios.FIONREAD, b"\0" * 4))[0]
        return count

    def _close(self) -> None:
        if self.plugged:
            os.close(self._master)
            os.close(self._slave)
            self._master = self._slave = -1
            self.path = ""
        if self.link is not None:
            self.link.unlink(missing_ok=True)


def _point_link(link: Path, target: str) -> None:
    """Create or re-point `link` atomically: a reader never sees it missing or half made."""
    link.parent.mkdir(parents=True, exist_ok=True)
    temporary = link.with_name(link.name + ".new")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    temporary.replace(link)


def _cable_serial(name: str) -> str:
    """A stable, cable-like serial (`VE` + 6 characters) so each device gets its own by-id name."""
    digits = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    value = zlib.crc32(name.encode())
    return "VE" + "".join(digits[value // len(digits) ** i % len(digits)] for i in range(6))


class Simulator:
    """The simulated installation: the model, its devices on PTYs, a writer thread, a temperature file and a
    current clamp.

    Every `period` the thread advances the model by `period` and writes each device's frame, the shed
    temperature (the model's battery temperature, `21.37\\n`) and a clamp line on the clamp's own PTY (the
    house's consumption, `00.43A`). `stop()` joins the thread and closes every file descriptor; use it as a
    context manager.
    """

    def __init__(
        self,
        devices: Sequence[SimulatedDevice] | None = None,
        *,
        seed: int = 0,
        day_seconds: float = DEFAULT_DAY_SECONDS,
        start_hour: float = DEFAULT_START_HOUR,
        period: float = DEFAULT_PERIOD,
        link_dir: str | Path | None = None,
        probe_dir: str | Path | None = None,
        text_pause: float = DEFAULT_TEXT_PAUSE,
    ) -> None:
        """`link_dir`: make a by-id-like symlink per device there; `probe_dir`: where the temperature file
        goes (default: a temporary directory, removed by `stop()`); `text_pause`: how long a device keeps
        its text blocks back after a HEX request, as real ones do."""
        if period <= 0:
            raise ValueError("period must be positive")
        self.devices = tuple(demo_devices() if devices is None else devices)
        self.model = model_for(self.devices, seed=seed, day_seconds=day_seconds, start_hour=start_hour)
        self.period = period
        self._link_dir = Path(link_dir) if link_dir is not None else None
        self._probe_dir = Path(probe_dir) if probe_dir is not None else None
        self._own_probe_dir: Path | None = None
        self._ports: dict[str, SimulatedPort] = {}
        self._clamp: SimulatedPort | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False  # the last period's write failed (logged once)
        self.text_pause = text_pause
        self._requests: dict[str, bytearray] = {}  # partial HEX requests per device
        self._quiet_until: dict[str, float] = {}  # monotonic time before which a device sends no text

    @property
    def ports(self) -> dict[str, str]:
        """Device name → the path to configure: the symlink when there is one, else the tty."""
        return {name: str(port.link or port.path) for name, port in self._ports.items()}

    def port(self, name: str) -> SimulatedPort:
        return self._ports[name]

    @property
    def clamp_path(self) -> str:
        """The clamp meter's serial port."""
        if self._clamp is None:
            raise RuntimeError("the simulator is not started")
        return self._clamp.path

    @property
    def probe_path(self) -> Path:
        directory = self._probe_dir or self._own_probe_dir
        if directory is None:
            raise RuntimeError("the simulator is not started")
        return directory / PROBE_NAME

    def exporter_config(self) -> tuple[tuple[DeviceConfig, ...], tuple[ProbeConfig, ...]]:
        """The devices and the probes that read this simulator, for the demo's configuration: configured as a
        PvMonit user migrates them (inputs `temp` and `conso`, the clamp in watts with PvMonit's ceiling)."""
        devices = tuple(DeviceConfig(name=name, port=path) for name, path in self.ports.items())
        thermometer = ProbeConfig(
            name=PROBE_NAME, type="file", quantity="temperature", interval=PROBE_INTERVAL, path=str(self.probe_path),
            emoncms_input="temp",
        )
        clamp = ProbeConfig(
            name=CLAMP_NAME, type="serial", quantity="current", interval=PROBE_INTERVAL, port=self.clamp_path,
            power_voltage=CLAMP_VOLTAGE, power_max=CLAMP_CEILING_WATTS, emoncms_input="conso",
        )
        return devices, (thermometer, clamp)

    def start(self) -> None:
        """Open the ports, write the first frames and the temperature file, then start the thread."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already started")
        try:
            if self._probe_dir is None:
                self._own_probe_dir = Path(tempfile.mkdtemp(prefix="pvmonit-simulator-"))
            for device in self.devices:
                link = None
                if self._link_dir is not None:
                    by_id = f"usb-VictronEnergy_BV_VE_Direct_cable_{_cable_serial(device.name)}-if00-port0"
                    link = self._link_dir / by_id
                self._ports[device.name] = SimulatedPort(link)
            self._clamp = SimulatedPort()
            self._emit()
        except BaseException:
            self._release()
            raise
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pvmonit-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, close every PTY, remove the symlinks and the temperature file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._release()

    def __enter__(self) -> "Simulator":
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        deadline = time.monotonic()
        while True:
            deadline += self.period
            if self._serve_until(deadline):
                return
            now = time.monotonic()
            if now - deadline > self.period:  # fell behind (machine suspended, overloaded): do not burst
                deadline = now
            self.model.step(self.period)
            try:
                self._emit()
            except Exception as exc:  # noqa: BLE001 - the writer outlives a failed write (a vanished or full /tmp)
                if not self._failing:
                    log.error("simulator: cannot write (%s); trying again every period", exc)  # noqa: TRY400 - one line
                self._failing = True
            else:
                if self._failing:
                    log.info("simulator: writing again")
                self._failing = False

    def _serve_until(self, deadline: float) -> bool:
        """Answer HEX requests as they come until `deadline`; True when asked to stop."""
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ports = [port for port in self._ports.values() if port.plugged]
            try:
                # A short timeout: stop() and a port unplugged meanwhile are noticed quickly.
                readable, _, _ = select.select(ports, [], [], min(remaining, 0.05))
            except (OSError, ValueError) as exc:
                if isinstance(exc, OSError) and exc.errno != errno.EBADF:
                    raise
                continue  # a port was unplugged after it was listed (closed: EBADF, or its fileno is -1)
            for device in self.devices:
                if self._ports[device.name] in readable:
                    self._answer(device, self._ports[device.name].read())
        return True

    def _answer(self, device: SimulatedDevice, data: bytes) -> None:
        pending = self._requests.setdefault(device.name, bytearray())
        pending += data
        while (end := pending.find(b"\n")) >= 0:
            line, pending[:] = bytes(pending[:end]), pending[end + 1 :]
            start = line.rfind(b":")
            if start < 0:
                continue
            reply = device.answer(line[start + 1 :].strip(), self.model)
            if reply is not None:
                self._quiet_until[device.name] = time.monotonic() + self.text_pause
                self._ports[device.name].write(reply)
        del pending[:-64]  # a request is a few bytes: never keep more than a line's worth of noise

    def _emit(self) -> None:
        now = time.monotonic()
        for device in self.devices:
            if self._quiet_until.get(device.name, 0.0) > now:
                continue  # in HEX mode: no text until the requests stop
            self._ports[device.name].write(device.frame(self.model))
        if self._clamp is not None:
            self._clamp.write(clamp_line(self.model))
        path = self.probe_path
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(f"{self.model.temperature:.2f}\n", encoding="ascii")
        temporary.replace(path)  # a probe never reads a half-written file

    def _release(self) -> None:
        for port in self._ports.values():
            port.unplug()
        self._ports.clear()
        if self._clamp is not None:
            self._clamp.unplug()
            self._clamp = None
        if self._own_probe_dir is not None:
            shutil.rmtree(self._own_probe_dir, ignore_errors=True)
            self._own_probe_dir = None
        elif self._probe_dir is not None:
            self.probe_path.unlink(missing_ok=True)
