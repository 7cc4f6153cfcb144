"""`control replay`: a day of inputs from a CSV through the rules, on a simulated clock, printing each decision as
the audit file's JSON line — to try rules before letting them switch anything (PvMonit's rule editor had a
simulation for the same reason).

The CSV: a `time` column (Unix seconds or ISO 8601; without an offset, local time), then one column per value,
named as the rules name them (`bmv.SOC`, `mppt.CS`, `summary.pv_power`, a probe). An empty cell is no new
reading: the previous one grows older, as a silent device's would, and is gone after the device's stale timeout
(a probe's: two missed intervals), as in the daemon. The rules are evaluated every
`control.interval` from the first row to the last, like the daemon; every switch is taken as done.
"""

import csv
import datetime
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pvmonit_exporter.config.schema import Config
from pvmonit_exporter.control.decide import SAFE_STATES, Entry, Now, Reading, evaluate_all, inputs_of, started
from pvmonit_exporter.control.loop import audit_line, local_time
from pvmonit_exporter.control.words import reason, units
from pvmonit_exporter.errors import UserError
from pvmonit_exporter.state import probe_max_age

# A CSV is a few days of readings at most; anything bigger is the wrong file, and is not read into memory whole.
MAX_ROWS = 1_000_000


@dataclass(frozen=True)
class Row:
    time: float
    values: dict[str, float | str]


def parse_time(text: str) -> float:
    """Unix seconds, or ISO 8601 (local time when it gives no offset); ValueError otherwise."""
    try:
        number = float(text)
    except ValueError:
        moment = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        return moment.timestamp()
    if not math.isfinite(number):
        raise ValueError(text)
    return number


def _value(text: str) -> float | str:
    try:
        number = float(text)
    except ValueError:
        return text.strip()
    return number if math.isfinite(number) else text.strip()


def read_rows(path: str, wanted: list[str]) -> tuple[list[Row], list[str]]:
    """The rows of `path`, and the columns no rule reads (ignored). UserError when the file cannot be used."""
    try:
        with Path(path).open(encoding="utf-8", newline="") as file:
            reader = csv.DictReader(file)
            columns = reader.fieldnames or []
            if "time" not in columns:
                raise UserError(f"{path}: no `time` column in the first line (found: {', '.join(columns) or 'none'})")
            used = [c for c in columns if c in wanted]
            if not used:
                raise UserError(f"{path}: no column is a value the rules read ({', '.join(wanted) or 'none'})")
            rows: list[Row] = []
            for number, record in enumerate(reader, start=2):
                if len(rows) >= MAX_ROWS:
                    raise UserError(f"{path}: more than {MAX_ROWS:,} rows")
                stamp = record.get("time") or ""
                try:
                    when = parse_time(stamp)
                except ValueError:
                    raise UserError(f"{path}: line {number}: time {stamp!r:.40} is neither Unix seconds nor ISO "
                                    "8601") from None
                if rows and when < rows[-1].time:
                    raise UserError(f"{path}: line {number}: time goes back ({stamp})")
                rows.append(Row(when, {c: _value(record[c]) for c in used if record.get(c) not in (None, "")}))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: cannot read it as CSV: {exc}") from None
    if not rows:
        raise UserError(f"{path}: no rows after the header")
    return rows, [c for c in columns if c != "time" and c not in wanted]


def _lifetimes(config: Config) -> dict[str, float]:
    """How long the daemon shows a reading before it is gone (not merely old): a device's stale timeout, a
    probe's two missed intervals. A summary value lives as long as the CSV repeats it."""
    lifetimes = {probe.name: probe_max_age(probe) for probe in config.probes}
    for device in config.devices:
        for rule in config.rules:
            for name in inputs_of(rule):
                if name.rpartition(".")[0] == device.name:
                    lifetimes[name] = device.stale_timeout
    return lifetimes


def replay(config: Config, rows: list[Row]) -> Iterator[dict[str, Any]]:
    """The audit lines the rules give on `rows`, in order."""
    lifetimes = _lifetimes(config)
    rules = {rule.actuator: rule for rule in config.rules}
    shown = units(config.probes)
    start = rows[0].time
    memories = {a.name: started(SAFE_STATES[a.type], Now(start, start)) for a in config.actuators}
    latest: dict[str, tuple[float | str, float]] = {}
    index, now = 0, start
    while now <= rows[-1].time:
        while index < len(rows) and rows[index].time <= now:
            latest.update({name: (value, rows[index].time) for name, value in rows[index].values.items()})
            index += 1
        readings = {name: Reading(value, now - when) for name, (value, when) in latest.items()
                    if now - when <= lifetimes.get(name, math.inf)}
        entries = [Entry(a.name, rules.get(a.name), SAFE_STATES[a.type], memories[a.name]) for a in config.actuators]
        # The simulated clock is both the wall clock and the one durations are measured on.
        result = evaluate_all(entries, readings, Now(now, now), local_time(now), dry_run=config.control.dry_run)
        switches = []  # as in the daemon, a switch is audited once carried out: after the evaluation's vetoes
        for entry in entries:
            decision = result.decisions[entry.name]
            rule = rules.get(entry.name)
            if decision.target is not None or (decision.notable and decision.veto is not None):
                line = audit_line(now, entry.name, entry.memory.position, decision.target or decision.wanted,
                                  decision, rule, reason(decision, rule, shown), dry_run=config.control.dry_run)
                if decision.target is not None and not config.control.dry_run:
                    switches.append(line)
                else:
                    yield line
        yield from switches
        memories = dict(result.memories)
        now += config.control.interval


def replay_command(config: Config, inputs: str, out: IO[str], err: IO[str]) -> int:
    wanted = list(dict.fromkeys(name for rule in config.rules for name in inputs_of(rule)))
    rows, ignored = read_rows(inputs, wanted)
    if ignored:
        err.write(f"pvmonit-exporter: {inputs}: columns no rule reads, ignored: {', '.join(ignored)}\n")
    for line in replay(config, rows):
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return 0
