"""`pvmonit-exporter hex PORT ping | get REG… | history`: read a device over the HEX protocol. Read-only.

Output contract (issue 11): `get` prints `0xEDF0 battery_max_current 15.0 A` per register, or with `--json`
one object per line `{"register": "0xEDF0", "name": …, "value": 15.0, "unit": "A"}` (`"value": null` and an
`"error"` for a refused register); `history` prints one row or JSON object per day the charger holds, newest
first, in the form of `HistoryDay.as_json`. Errors are those of `read`: one line, exit status 2.
"""

import argparse
import json
import sys
from dataclasses import asdict
from typing import IO, Any

import serial

from pvmonit_exporter.config.schema import hex_timeout, is_remote, remote_port_problem
from pvmonit_exporter.errors import UserError
from pvmonit_exporter.sources.hexlink import HexLink
from pvmonit_exporter.sources.serialport import PORT_ERRORS, describe_error, open_port
from pvmonit_exporter.vedirect import hex as vehex
from pvmonit_exporter.vedirect.hex_session import PING, HexSession, Outcome, Result, get
from pvmonit_exporter.vedirect.history import HistoryDay, HistoryTotal
from pvmonit_exporter.vedirect.registers import Register, decode_value, lookup


def hex_command(args: argparse.Namespace, out: IO[str] = sys.stdout) -> int:
    action: str = args.hex_action
    registers = [_register(text) for text in args.registers] if action == "get" else []
    if is_remote(args.port) and (problem := remote_port_problem(args.port)):
        raise UserError(problem)
    try:
        port = open_port(args.port)
    except PORT_ERRORS as exc:
        raise UserError(describe_error(args.port, exc)) from None
    try:
        with port:
            link = HexLink(port, HexSession(hex_timeout(args.port)))
            if action == "ping":
                (outcome,) = link.request([PING])
                out.write(_firmware(args.port, outcome) + "\n")
            elif action == "get":
                _print_registers(args.port, link, registers, as_json=args.json, out=out)
            else:
                _print_history(args.port, link, as_json=args.json, out=out)
    except (OSError, serial.SerialException) as exc:
        raise UserError(f"{args.port}: disconnected: {exc}") from None
    return 0


def _register(text: str) -> Register:
    register = lookup(text)
    if register is None:
        raise UserError(f"{text}: not a register name or hex id (such as battery_max_current or 0xEDF0)")
    return register


def _no_answer(port: str, outcome: Outcome) -> UserError:
    return UserError(f"{port}: no answer to HEX requests after {outcome.attempts} tries "
                     "(timeout: a device without HEX, or not a VE.Direct device?)")


def _firmware(port: str, outcome: Outcome) -> str:
    if isinstance(outcome.reply, vehex.PingReply):
        return outcome.reply.firmware
    if outcome.result is Result.TIMEOUT:
        raise _no_answer(port, outcome)
    raise UserError(f"{port}: the device refused the ping ({outcome.error})")


def register_json(register: Register, outcome: Outcome) -> dict[str, Any]:
    """One register's line in the `get --json` form."""
    document: dict[str, Any] = {"register": register.hex_id, "name": register.name, "value": None,
                                "unit": register.unit}
    error = outcome.error
    if error is None and isinstance(outcome.reply, vehex.RegisterReply):
        value, error = decode_value(register, outcome.reply.data)
        document["value"] = value.as_json() if isinstance(value, HistoryDay) else (
            asdict(value) if isinstance(value, HistoryTotal) else value)
    if error is not None:
        document["error"] = error
    return document


def _print_registers(port: str, link: HexLink, registers: list[Register], *, as_json: bool, out: IO[str]) -> None:
    outcomes = link.request([get(register.id) for register in registers])
    if all(outcome.result is Result.TIMEOUT for outcome in outcomes):
        raise _no_answer(port, outcomes[0])
    for register, outcome in zip(registers, outcomes, strict=True):
        document = register_json(register, outcome)
        if as_json:
            out.write(json.dumps(document, ensure_ascii=False) + "\n")
            continue
        value = document["value"]
        if "error" in document:
            text = f"({document['error']})"
        elif value is None:
            text = "n/a"
        elif isinstance(value, dict):
            text = json.dumps(value, ensure_ascii=False)
        else:
            text = f"{value} {register.unit}".rstrip()
        out.write(f"{register.hex_id} {register.name} {text}\n")


_COLUMNS = (("days_ago", "day"), ("yield_kwh", "yield kWh"), ("consumed_kwh", "used kWh"),
            ("battery_voltage_max_v", "Vbat max"), ("battery_voltage_min_v", "Vbat min"),
            ("max_power_w", "max W"), ("max_battery_current_a", "max A"), ("max_pv_voltage_v", "max Vpv"),
            ("bulk_min", "bulk min"), ("absorption_min", "abs min"), ("float_min", "float min"),
            ("errors", "errors"), ("day_sequence", "seq"))


def _print_history(port: str, link: HexLink, *, as_json: bool, out: IO[str]) -> None:
    outcome, total, days = link.history()
    if total is None:
        if outcome.result is Result.TIMEOUT:
            raise _no_answer(port, outcome)
        raise UserError(f"{port}: the device keeps no history ({outcome.error or 'malformed record'})")
    if as_json:
        for day in days:
            out.write(json.dumps(day.as_json()) + "\n")
        return
    rows = [[_cell(day.as_json()[key]) for key, _ in _COLUMNS] for day in days]
    widths = [max(len(title), *(len(row[i]) for row in rows)) for i, (_, title) in enumerate(_COLUMNS)]
    out.write("  ".join(title.rjust(width) for (_, title), width in zip(_COLUMNS, widths, strict=True)) + "\n")
    for row in rows:
        out.write("  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) + "\n")


def _cell(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, list):
        return ",".join("n/a" if code is None else str(code) for code in value)
    return str(value)
