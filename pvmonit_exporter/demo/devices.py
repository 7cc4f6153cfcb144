"""The demo's products: the exact blocks a BMV-702, a BlueSolar MPPT and a Phoenix inverter
send, and the HEX answers, in raw protocol units, read off the day's model. Pure: a seed gives the same bytes.
"""

import itertools
import struct
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence

from pvmonit_exporter.demo.day import (
    _ABSORPTION_V,
    _AC_VOLTS,
    _CAPABILITY_HISTORY,
    _CAPABILITY_LOAD,
    _CAPACITY_AH,
    _CHARGER_MAX_A,
    _FLAG_PARAMETER_ERROR,
    _FLAG_UNKNOWN_ID,
    _FLOAT_V,
    _HEX_ASYNC,
    _LOAD_AUTOMATIC,
    _LOAD_MODES,
    _LOAD_OFF,
    _LOAD_ON,
    _LOW_SOC_ALARM,
    _LOW_VOLTAGE_WARNING,
    _REG_CHARGER_TEMPERATURE,
    _REG_DEVICE_STATE,
    _REG_LOAD_CONTROL,
    CS_INVERTING,
    CS_OFF,
    DEFAULT_DAY_SECONDS,
    DEFAULT_PERIOD,
    DEFAULT_START_HOUR,
    SystemModel,
    _hundredths,
    _milli,
    _on_off,
)
from pvmonit_exporter.vedirect import hex as vehex
from pvmonit_exporter.vedirect.framing import Block, encode_block, encode_hex_message
from pvmonit_exporter.vedirect.history import HISTORY_DAYS, encode_day, encode_total


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
