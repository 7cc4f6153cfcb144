"""Is a decoded advert a reading, or what a wrong key makes of one? Pure: no I/O, threads or logging.

The key-check byte is the key's first byte: 1 wrong key in 256 passes it, and the usual typo (the last digit)
always does. Such a key decrypts every advert to random bits, which the layouts turn into values. So each record is
held against what its product can send: values inside the physical ranges of its family and of the product's
rating (read from its name: "SmartSolar MPPT 100/30" charges at up to 30 A), alarm and off-reason bits that exist,
fields the product does not measure left "not available", and the unused bits of the last byte set, as
Victron's specification asks. Unknown enumeration codes are not held against a record: they are shown as
"unknown (N)". A daemon also wants `KeyConfirmation`: values only after 3 adverts in a row that make sense and
agree with each other.
"""

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pvmonit_exporter.vedirect.fields import decode, format_decoded, parse_int
from pvmonit_exporter.vedirect.framing import Block

# The largest battery voltage of a Victron DC system (48 V nominal, equalising) when the product does not say.
ANY_BATTERY_VOLTS = 70.0
# A battery at its nominal voltage times this is already charging or equalising hard.
NOMINAL_HEADROOM = 1.5
# Battery monitors count consumed charge up to their largest capacity setting (9999 Ah), twice over.
MAX_CONSUMED_AH = 20_000.0
# What a battery monitor's alarms can be (text protocol AR bits 0..7); inverters use up to bit 13 (BMS lockout).
BATTERY_MONITOR_ALARMS = 0x00FF
INVERTER_ALARMS = 0x3FFF
# Off reasons known today use bits 0..9; a later firmware may add some, but within the low 16 bits.
OFF_REASON_BITS = 0xFFFF


@dataclass(frozen=True)
class Rating:
    """What a product's name tells about its limits; None where it tells nothing."""

    battery_volts: float | None = None  # nominal battery (output) voltage
    input_volts: float | None = None  # a DC/DC converter's nominal input
    amps: float | None = None  # rated charge/output current, or a shunt's rating
    volt_amperes: float | None = None  # an inverter's rated power
    ac_volts: float | None = None  # an inverter's output voltage
    outputs: int | None = None  # an AC charger's battery outputs: (1) 1, (1+1) 2, (3) 3


_RATINGS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], Rating]], ...] = (
    (re.compile(r"MPPT (?:VE\.Can |RS )?\d+/(\d+)"), lambda m: Rating(amps=float(m[1]))),
    (re.compile(r"SmartShunt (?:IP\d+ )?(\d+)A/"), lambda m: Rating(amps=float(m[1]))),
    (re.compile(r"(\d+)V (\d+)VA (\d+)V"),
     lambda m: Rating(battery_volts=float(m[1]), volt_amperes=float(m[2]), ac_volts=float(m[3]))),
    (re.compile(r"(\d+)V/(\d+)V-(\d+(?:\.\d+)?)A"),
     lambda m: Rating(input_volts=float(m[1]), battery_volts=float(m[2]), amps=float(m[3]))),
    # Blue Smart IP65/IP67 chargers have one output; the others say theirs: (1), (1+1), (3).
    (re.compile(r"Blue Smart IP6\ds? Charger (\d+)[|/](\d+)"),
     lambda m: Rating(battery_volts=float(m[1]), amps=float(m[2]), outputs=1)),
    (re.compile(r"(?:Charger|Skylla\S*|IMPULSE-II(?: L)?|Vector) (\d+)V?[|/](\d+)A?(?: \((\d)(?:\+(\d))?\))?"),
     lambda m: Rating(battery_volts=float(m[1]), amps=float(m[2]),
                      outputs=None if m[3] is None else int(m[3]) + int(m[4] or 0))),
)
# Victron's AC chargers (Blue Smart, Phoenix Smart, Skylla, IMPULSE) charge 12 V or 24 V batteries.
AC_CHARGER_NOMINAL_VOLTS = 24.0


def rating_of(product: str) -> Rating:
    """`"Phoenix Inverter 12V 800VA 230V"` → 12 V battery, 800 VA, 230 V; a name without figures → Rating()."""
    for pattern, rating in _RATINGS:
        found = pattern.search(product)
        if found is not None:
            return rating(found)
    return Rating()


def _battery_max(nominal: float | None) -> float:
    return ANY_BATTERY_VOLTS if nominal is None else nominal * NOMINAL_HEADROOM


@dataclass(frozen=True)
class Bound:
    """A label's value (in its SI unit) must lie within [low, high]."""

    label: str
    low: float
    high: float


def _bounds(record: str, rating: Rating) -> tuple[Bound, ...]:
    volts = _battery_max(rating.battery_volts)
    amps = rating.amps
    if record == "solar_charger":
        charge = math.inf if amps is None else amps * 1.25
        power = (250.0 if amps is None else amps) * 1.3 * volts  # PV power above the output: conversion losses
        return (Bound("V", 0, volts), Bound("I", -51.0, charge),  # negative: the load output's up to 51 A
                Bound("PPV", 0, power), Bound("H20", 0, power * 86_400))
    if record in ("battery_monitor", "smart_battery_sense"):
        shunt = math.inf if amps is None else amps * 2
        return (Bound("V", 0, volts), Bound("VS", -1.0, volts), Bound("T", -40.0, 100.0),
                Bound("I", -shunt, shunt), Bound("CE", -MAX_CONSUMED_AH * 3600, 0), Bound("SOC", 0, 1))
    if record == "inverter":
        power = math.inf if rating.volt_amperes is None else rating.volt_amperes * 2  # surge
        ac_volts = 290.0 if rating.ac_volts is None else rating.ac_volts * 1.25
        ac_amps = math.inf if rating.volt_amperes is None or rating.ac_volts is None else (
            2 * rating.volt_amperes / rating.ac_volts)
        return (Bound("V", 0, volts), Bound("AC_OUT_S", 0, power), Bound("AC_OUT_V", 0, ac_volts),
                Bound("AC_OUT_I", 0, ac_amps))
    if record == "dcdc_converter":
        return Bound("V", 0, volts), Bound("DC_IN_V", 0, _battery_max(rating.input_volts))
    if record == "ac_charger":
        charge = math.inf if amps is None else amps * 1.25
        volts = _battery_max(rating.battery_volts or AC_CHARGER_NOMINAL_VOLTS)
        return tuple(b for n in ("", "2", "3") for b in (Bound(f"V{n}", 0, volts), Bound(f"I{n}", 0, charge)))
    return ()


# Labels that a product does not measure: they must be "not available" (absent from the block).
_NOT_MEASURED: Mapping[str, tuple[str, ...]] = {
    "smart_battery_sense": ("TTG", "I", "CE", "SOC", "VS", "VM"),
}


def _shown(label: str, raw: str) -> str:
    return f"{label} {format_decoded(decode(label, raw))}"


def implausible(record: str, block: Block, rating: Rating, *, spare_bits_set: bool = True) -> tuple[str, ...]:
    """The values of `block` (text-protocol labels, raw) that `record` from a product rated `rating` cannot send,
    as `V 120.14 V`; empty when the record makes sense."""
    not_measured = [label for label in _NOT_MEASURED.get(record, ()) if label in block]
    found = [f"{_shown(label, block[label])} (not measured by this product)" for label in not_measured]
    for bound in _bounds(record, rating):
        if bound.label in not_measured:
            continue
        raw = block.get(bound.label)
        value = None if raw is None else decode(bound.label, raw).value
        if value is not None and not bound.low <= value <= bound.high:
            found.append(_shown(bound.label, raw or ""))
    if "VM" in block and "V" in block and parse_int(block["VM"]) is not None:
        midpoint, battery = decode("VM", block["VM"]).value, decode("V", block["V"]).value
        if midpoint is not None and battery is not None and midpoint > battery + 1:
            found.append(f"{_shown('VM', block['VM'])} above {_shown('V', block['V'])}")
    allowed = {"battery_monitor": BATTERY_MONITOR_ALARMS, "smart_battery_sense": BATTERY_MONITOR_ALARMS,
               "inverter": INVERTER_ALARMS}.get(record)
    found += _stray_bits("AR", block, allowed, 10)
    found += _stray_bits("OR", block, OFF_REASON_BITS if record == "dcdc_converter" else None, 16)
    if rating.outputs is not None:
        found += [f"{_shown(label, block[label])} (this charger has {rating.outputs} output"
                  f"{'s' if rating.outputs > 1 else ''})"
                  for n in range(rating.outputs + 1, 4) for label in (f"V{n}", f"I{n}") if label in block]
    if not found:  # values each in range may still contradict each other
        found += _physics(record, block, rating)
    if not spare_bits_set:
        found.append("unused bits clear")
    return tuple(found)


def _si(block: Block, label: str) -> float | None:
    raw = block.get(label)
    return None if raw is None else decode(label, raw).value


def _physics(record: str, block: Block, rating: Rating) -> list[str]:
    """Values that contradict each other."""
    if record == "solar_charger":
        # A solar charger gives the battery and its load output no more than its panels give it.
        volts, amps, panels = _si(block, "V"), _si(block, "I"), _si(block, "PPV")
        if volts is not None and amps is not None and panels is not None:
            output = volts * (amps + (_si(block, "IL") or 0.0))
            if output > 1.1 * panels + volts * 0.2 + 20:
                return [f"{_shown('V', block['V'])} × {_shown('I', block['I'])} out of {_shown('PPV', block['PPV'])}"]
    if record == "inverter":
        # Apparent power is voltage times current (the current to 0.1 A).
        power, volts, amps = _si(block, "AC_OUT_S"), _si(block, "AC_OUT_V"), _si(block, "AC_OUT_I")
        if power is not None and volts is not None and amps is not None:
            product = volts * amps
            if abs(power - product) > 0.2 * max(power, product) + volts * 0.1 + 20:
                return [f"{_shown('AC_OUT_S', block['AC_OUT_S'])} ≠ {_shown('AC_OUT_V', block['AC_OUT_V'])} × "
                        f"{_shown('AC_OUT_I', block['AC_OUT_I'])}"]
    if record == "ac_charger" and rating.amps is not None:
        # The rating is the charger's total, shared by its outputs.
        total = sum(_si(block, label) or 0.0 for label in ("I", "I2", "I3"))
        if total > rating.amps * 1.25:
            return [f"{total:g} A from outputs rated {rating.amps:g} A in all"]
    return []


def _stray_bits(label: str, block: Block, allowed: int | None, base: int) -> list[str]:
    raw = block.get(label)
    if raw is None or allowed is None:
        return []
    value = parse_int(raw, base)
    if value is None or value & ~allowed == 0:
        return []
    return [f"{label} {raw} (bits this product does not have)"]


# --- from one advert to the next ------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """How far a label's value (SI unit) can move between two adverts `seconds` apart, at most."""

    label: str
    change: Callable[[float, float, float], bool]  # (before, after, seconds) → possible


def _voltage(before: float, after: float, _: float) -> bool:
    # A battery under a sudden load or charge moves by a few volts, never to another nominal voltage.
    return abs(after - before) <= 0.3 * max(abs(before), abs(after)) + 1.0


STEPS: tuple[Step, ...] = (
    *(Step(label, _voltage) for label in ("V", "V2", "V3", "DC_IN_V")),
    # State of charge: a few % at most, but a synchronisation sets 100 % at once.
    Step("SOC", lambda before, after, _: abs(after - before) <= 0.05 or after == 1.0),
    Step("T", lambda before, after, seconds: abs(after - before) <= 5.0 + seconds / 60),
    # Consumed charge: at most the 22-bit current's 2097 A for the time between, or reset to 0 on synchronisation.
    Step("CE", lambda before, after, seconds: after == 0 or abs(after - before) <= 3600 + 2097 * seconds),
    # Yield today only grows (at most at 100 kW), or starts again at 0 on a new day.
    Step("H20", lambda before, after, seconds: after == 0 or 0 <= after - before <= 36_000 + 100_000 * seconds),
)


def jumps(before: Block, after: Block, seconds: float) -> tuple[str, ...]:
    """The values that moved further between two adverts `seconds` apart than the thing they measure can."""
    found: list[str] = []
    for step in STEPS:
        old, new = before.get(step.label), after.get(step.label)
        if old is None or new is None:
            continue
        old_value, new_value = decode(step.label, old).value, decode(step.label, new).value
        if old_value is None or new_value is None or step.change(old_value, new_value, max(seconds, 0.0)):
            continue
        found.append(f"{step.label} {format_decoded(decode(step.label, old))} → "
                     f"{format_decoded(decode(step.label, new))}")
    return tuple(found)


class KeyConfirmation:
    """Whether a device's adverts can be shown: only after `NEEDED` adverts in a row, each new (another nonce:
    the same advert repeated proves nothing), each making sense and agreeing with the one before. With a wrong
    key that passes the key check, one advert in about 10⁵ makes sense by chance; three in a row that also agree,
    never in practice. Once confirmed, the key stays confirmed: the device's own odd advert is dropped, and a
    real jump shown.
    """

    NEEDED = 3

    def __init__(self) -> None:
        self.confirmed = False
        self.doubt = f"the key looks wrong until {self.NEEDED} adverts in a row make sense (none yet)"
        self.suspicious = False  # the doubt is nonsense or a jump, not only adverts still to count
        self._streak = 0
        self._last: tuple[int, Block, float] | None = None

    def nonsense(self, values: tuple[str, ...]) -> None:
        """An advert whose values make no sense (`implausible`)."""
        if self.confirmed:
            return
        self._streak, self._last, self.suspicious = 0, None, True
        self.doubt = f"the key looks wrong: an advert's values make no sense ({', '.join(values)})"

    def sensible(self, nonce: int, block: Block, time: float) -> bool:
        """A plausible advert heard at `time`; True when its values can be shown."""
        if self.confirmed:
            return True
        last = self._last
        if last is not None and last[0] == nonce:
            return False  # the same advert again: no new evidence
        moved = () if last is None else jumps(last[1], block, time - last[2])
        self._last = (nonce, block, time)
        self.suspicious = bool(moved)
        if moved:
            self._streak = 1
            self.doubt = f"the key looks wrong: values jumped between two adverts ({', '.join(moved)})"
            return False
        self._streak += 1
        if self._streak >= self.NEEDED:
            self.confirmed = True
            return True
        self.doubt = (f"the key looks wrong until {self.NEEDED} adverts in a row make sense "
                      f"({self._streak} so far)")
        return False

