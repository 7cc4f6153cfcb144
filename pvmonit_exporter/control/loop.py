"""The control loop: every `interval`, read the inputs and the actuators' states, decide (`decide`, pure), switch,
audit. Thin: every choice is the decision's; this carries it out and says what happened.

At start every actuator is driven to its safe state before any rule runs, and at stop again; in a dry run nothing
is ever switched. A reload hands the actuators whose definition did not change to the next controller, in the
state they are in.
"""

import datetime
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

from pvmonit_exporter.config.schema import ActuatorConfig, Config, RuleConfig
from pvmonit_exporter.control.actuators import Actuator, ActuatorError, Builder, build
from pvmonit_exporter.control.decide import (
    VETOES,
    Decision,
    Entry,
    Memory,
    Now,
    Position,
    Veto,
    Why,
    confirm,
    evaluate_all,
    faulted,
    inputs_of,
    moved,
    started,
)
from pvmonit_exporter.control.inputs import gather
from pvmonit_exporter.control.vedirect_load import VedirectLoadActuator
from pvmonit_exporter.control.words import Unit, guard_text, reason, units, why_text
from pvmonit_exporter.forwarder.policy import backoff_delay
from pvmonit_exporter.sources.load_link import LoadLink
from pvmonit_exporter.state import State

if TYPE_CHECKING:
    from pvmonit_exporter.control.mqtt_switch import MqttActuator

log = logging.getLogger(__name__)

# A failed switch is tried again after 1 s, then 2, 4… up to a minute.
RETRY_INITIAL, RETRY_MAX = 1.0, 60.0


def local_time(wall: float) -> datetime.datetime:
    """`wall` (Unix seconds) on the local wall clock (naive), as the window and the day's budget read it."""
    return datetime.datetime.fromtimestamp(wall)


def audit_line(wall: float, actuator: str, before: Position, to: Position | None, decision: Decision | None,
               rule: RuleConfig | None, text: str, *, dry_run: bool, why: Why | None = None,
               veto: Veto | None = None, error: str | None = None) -> dict[str, Any]:
    """One line of the audit file (and of `control replay`)."""
    line: dict[str, Any] = {
        "time": datetime.datetime.fromtimestamp(wall).astimezone().isoformat(timespec="seconds"),
        "actuator": actuator,
        "from": before,
        "to": to,
        "rule": {
            "why": why or (decision.why if decision is not None else None),
            "mode": rule.mode if rule is not None else None,
            "text": text,
            "conditions": [check.as_json() for check in decision.checks] if decision is not None else [],
        },
        "veto": veto if veto is not None else (decision.veto if decision is not None else None),
        "dry_run": dry_run,
    }
    if error is not None:
        line["error"] = error
    return line


class AuditFile:
    """Appends JSON lines; a file that cannot be written costs one log line, never the loop."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._failed = False

    def write(self, line: Mapping[str, Any]) -> None:
        if self.path is None:
            return
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
            self._file.flush()
            self._failed = False
        except OSError as exc:
            if not self._failed:
                log.error("control: cannot write the audit file %s: %s", self.path, exc.strerror or exc)  # noqa: TRY400
            self._failed = True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class Slot:
    """One actuator and everything the loop knows of it."""

    actuator: Actuator
    rule: RuleConfig | None
    memory: Memory
    reason: str  # why it is where it is, in words
    decision: Decision | None = None
    read_back: bool | None = None
    failures: int = 0  # switches that failed in a row
    retry_at: float = 0.0  # monotonic
    error: str | None = None  # the last failure, in words
    switches_total: int = 0
    vetoes_total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VETOES, 0))
    unusable_logged: bool = False
    needs_safe: bool = False  # waited at start: driven to its safe state once it can be


@dataclass(frozen=True)
class Handover:
    """What a reload passes on: each actuator's configuration, the actuator itself and its memory."""

    slots: dict[str, tuple[ActuatorConfig, Slot]]


class Controller:
    """The loop for one configuration. `start()`, then `stop()` (to the safe state) or `handover()` (a reload).

    `clock` says what time it is (the window, the day, the audit); `ticker` measures durations (every guard, the
    retry backoff), so that a wall clock set by NTP never cuts a guard short or holds it. A test that passes its
    own `clock` drives both, unless it also passes a `ticker` (as `State` does)."""

    def __init__(self, config: Config, state: State, previous: Handover | None = None,
                 builders: Mapping[str, Builder] | None = None, clock: Callable[[], float] = time.time,
                 ticker: Callable[[], float] | None = None) -> None:
        self.config, self.state, self.clock = config, state, clock
        self.ticker = ticker or (time.monotonic if clock is time.time else clock)
        self.settings = config.control
        self.dry_run = config.control.dry_run
        self.audit = AuditFile(config.control.audit_file)
        self.units: dict[str, Unit] = units(config.probes)
        rules = {rule.actuator: rule for rule in config.rules}
        self.rules = rules  # as configured: a mode set from Home Assistant changes a slot's rule, not these
        self.wanted_inputs = list(dict.fromkeys(name for rule in config.rules for name in inputs_of(rule)))
        self._lock = threading.Lock()
        # The previous configuration's actuators are taken out of the handover as they are used or retired, so
        # that a pipeline built again from it (the new one failed) finds only what is still open.
        kept = previous.slots if previous is not None else {}
        now = self.now()
        self.slots: dict[str, Slot] = {}
        self.fresh: list[str] = []  # actuators to drive to their safe state at start
        self.retiring: list[Slot] = []  # changed or gone, but out of reach: to their safe state once reachable
        for actuator_config in config.actuators:
            name = actuator_config.name
            old = kept.pop(name, None)
            if old is not None and old[0] == actuator_config:
                # The same definition: it keeps its state; a fault is forgiven (the configuration was reloaded).
                old[1].rule = rules.get(name)
                old[1].memory = replace(old[1].memory, fault=False, disagreements=0)
                self.slots[name] = old[1]
                continue
            if old is not None:  # changed: the old one goes safe and lets go (its GPIO line) before the new one
                self._retire(old[1])
            actuator = build(actuator_config, dict(builders or {}))
            self.slots[name] = Slot(actuator, rules.get(name), started(actuator.safe, now), "safe state at start")
            self.fresh.append(name)
        for name in list(kept):  # no longer configured
            self._retire(kept.pop(name)[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="control", daemon=True)

    def now(self) -> Now:
        return Now(self.clock(), self.ticker())

    # --- life ------------------------------------------------------------------------------------------

    def _retire(self, slot: Slot) -> None:
        why = slot.actuator.waiting()
        queued = any(other is slot for other in self.retiring)
        if why is not None:
            if not queued:  # an mqtt actuator at a reload: the old connection is closed, the new one not yet up
                log.warning("control: %s is no longer configured as it was, and cannot be reached now (%s): it "
                            "goes to its safe state once it can", slot.actuator.name, why)
                self.retiring.append(slot)
            return
        self.retiring = [other for other in self.retiring if other is not slot]
        self._to_safe(slot, "stop")
        slot.actuator.close()

    def start(self) -> None:
        for name in self.fresh:
            self._to_safe(self.slots[name], "start")
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def _join(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def stop(self) -> None:
        """The end: every actuator to its safe state, then released."""
        self._join()
        for slot in [*self.retiring, *self.slots.values()]:
            self._to_safe(slot, "stop")
            slot.actuator.close()
        self.retiring.clear()
        self.audit.close()

    def handover(self) -> Handover:
        """A reload: the loop stops, the actuators stay as they are, for the next controller."""
        self._join()
        self.audit.close()
        # Those still retiring go on retiring under a key no configured name can be (names have no spaces).
        retiring = {f"{slot.actuator.name} (retiring {index})": (slot.actuator.config, slot)
                    for index, slot in enumerate(self.retiring)}
        return Handover({**retiring, **{name: (slot.actuator.config, slot) for name, slot in self.slots.items()}})

    def _to_safe(self, slot: Slot, why: Why) -> None:
        """Drive to the safe state now (start, stop): not in a dry run, where nothing is switched."""
        now = self.now()
        actuator = slot.actuator
        if actuator.waiting() is not None:
            slot.needs_safe = why == "start"  # it cannot be reached yet: at the first evaluation it can
            return
        before = slot.memory.position
        text = why_text(why, (), slot.rule, self.units)
        error = None
        if not self.dry_run and actuator.unusable() is None:
            try:
                actuator.set(actuator.safe)
            except ActuatorError as exc:
                error = str(exc)
                log.error("control: %s: cannot reach its safe state (%s): %s", actuator.name, why, error)  # noqa: TRY400
        slot.memory = moved(slot.memory, actuator.safe, now)
        slot.reason = text
        if why == "stop" or error is not None:
            self.audit.write(audit_line(now.wall, actuator.name, before, actuator.safe, None, slot.rule, text,
                                        dry_run=self.dry_run, why=why, error=error))

    def _run(self) -> None:
        while not self._stop.wait(self.settings.interval):
            try:
                self.evaluate()
            except Exception:  # the loop must never die: one log line, and the next evaluation
                log.exception("control: unexpected error in an evaluation")

    # --- one evaluation --------------------------------------------------------------------------------

    def evaluate(self) -> None:
        for slot in [slot for slot in self.retiring if slot.actuator.waiting() is None]:
            self._retire(slot)
        now = self.now()
        readings = gather(self.state.devices(), self.state.probes(), self.wanted_inputs)
        for slot in self.slots.values():
            self._read_back(slot, now)
        usable = {name: slot for name, slot in self.slots.items() if self._usable(slot)}
        entries = [Entry(name, slot.rule, slot.actuator.safe, slot.memory) for name, slot in usable.items()]
        result = evaluate_all(entries, readings, now, local_time(now.wall), dry_run=self.dry_run)
        commands = dict(result.commands)
        switch: tuple[Slot, Decision, Position] | None = None
        with self._lock:
            for name, slot in usable.items():
                decision = result.decisions[name]
                before = slot.memory.position
                slot.decision, slot.memory = decision, result.memories[name]
                if decision.target is not None and name in commands:
                    switch = (slot, decision, before)  # carried out below, without holding up /api/state
                elif decision.target is not None:  # a dry run
                    self._switched(slot, decision, before, now)
                elif decision.notable and decision.veto is not None:
                    slot.vetoes_total[decision.veto] += 1
                    self.audit.write(audit_line(now.wall, name, before, decision.wanted, decision, slot.rule,
                                                reason(decision, slot.rule, self.units), dry_run=self.dry_run))
        if switch is not None:
            self._switch(*switch, now)

    def _usable(self, slot: Slot) -> bool:
        if slot.actuator.waiting() is not None:
            return False
        if slot.needs_safe:  # reachable now: its safe state first, rules from the next evaluation
            slot.needs_safe = False
            self._to_safe(slot, "start")
            return False
        why = slot.actuator.unusable()
        if why is not None and not slot.unusable_logged:
            slot.unusable_logged = True
            log.error("control: %s is left in its safe state: %s", slot.actuator.name, why)
        slot.error = why if why is not None else slot.error
        return why is None

    def _switch(self, slot: Slot, decision: Decision, before: Position, now: Now) -> None:
        assert decision.target is not None  # noqa: S101 - only called for a switch
        if now.monotonic < slot.retry_at:
            with self._lock:
                slot.memory = decision.memory  # not yet: the switch is tried again after the backoff
            return
        try:
            slot.actuator.set(decision.target)
        except ActuatorError as exc:
            with self._lock:
                slot.failures += 1
                slot.retry_at = now.monotonic + backoff_delay(slot.failures, RETRY_INITIAL, RETRY_MAX, 1.0)
                slot.error = str(exc)
                slot.memory = decision.memory  # it did not move
            log.warning("control: %s: switching %s failed: %s", slot.actuator.name, decision.target, exc)
            self.audit.write(audit_line(now.wall, slot.actuator.name, before, decision.target, decision, slot.rule,
                                        reason(decision, slot.rule, self.units), dry_run=False, error=str(exc)))
            return
        with self._lock:
            slot.failures, slot.retry_at, slot.error = 0, 0.0, None
            slot.read_back = None  # read before the switch: not known again until the next read
            self._switched(slot, decision, before, now)

    def _switched(self, slot: Slot, decision: Decision, before: Position, now: Now) -> None:
        text = reason(decision, slot.rule, self.units)
        slot.reason, slot.switches_total = text, slot.switches_total + 1
        dry = " (dry run: nothing switched)" if self.dry_run else ""
        log.info("control: %s %s (was %s): %s%s", slot.actuator.name, decision.target, before, text, dry)
        self.audit.write(audit_line(now.wall, slot.actuator.name, before, decision.target, decision, slot.rule, text,
                                    dry_run=self.dry_run))

    def _read_back(self, slot: Slot, now: Now) -> None:
        """Read the actuator's state, and take a fault (or its end) from it. Not in a dry run: the actuator is
        not where the decision pretends."""
        actuator = slot.actuator
        if not actuator.reads_back or actuator.waiting() is not None or actuator.unusable() is not None:
            return
        try:
            slot.read_back = slot.actuator.read()
        except ActuatorError as exc:
            slot.read_back = None
            if slot.error != str(exc):
                log.warning("control: %s: reading its state failed: %s", slot.actuator.name, exc)
            slot.error = str(exc)
            return
        if self.dry_run:
            return
        memory, event = confirm(slot.memory, slot.read_back, now, actuator.config.confirm_timeout)
        if event == "fault":
            self._fault(slot, now)
            return
        with self._lock:
            slot.memory = memory
            if event == "cleared":
                log.info("control: %s agrees with its state again: the fault is over", actuator.name)
                slot.reason = "fault over: the read-back agrees"

    def _fault(self, slot: Slot, now: Now) -> None:
        """Two read-backs disagreed: the safe state, one log line, one audit line."""
        actuator = slot.actuator
        before = slot.memory.position
        shown = "on" if slot.read_back else "off"
        log.error("control: %s: fault: it reads back %s, not %s, twice after %g s; put in its safe state (%s) "
                  "and not switched until it agrees or the configuration is reloaded",
                  actuator.name, shown, before, actuator.config.confirm_timeout, actuator.safe)
        with self._lock:  # what readers see is the fault and the safe state at once, before the write is done
            slot.memory = faulted(slot.memory, actuator.safe, now)
            slot.reason = f"fault: reads back {shown}, not {before}"
            slot.vetoes_total["fault"] += 1
        error = None
        try:
            actuator.set(actuator.safe)
        except ActuatorError as exc:
            error = str(exc)
        self.audit.write(audit_line(now.wall, actuator.name, before, actuator.safe, None, slot.rule, slot.reason,
                                    dry_run=False, why="fault", veto="fault", error=error))

    def set_mode(self, name: str, mode: Literal["auto", "on", "off"], source: str) -> bool:
        """The user's mode for actuator `name`, set from elsewhere than the file (`source`, in words: "Home
        Assistant"), until the next reload; audited. False for an unknown actuator. Taken at the next
        evaluation. Without a rule, `auto` is no rule (its safe state)."""
        slot = self.slots.get(name)
        if slot is None:
            return False
        configured = self.rules.get(name)
        rule = None if mode == "auto" and configured is None else replace(configured or RuleConfig(name), mode=mode)
        now = self.now()
        with self._lock:
            before = slot.rule.mode if slot.rule is not None else "auto"
            slot.rule = rule
            position = slot.memory.position
        if before == mode:
            return True
        text = f"mode set from {source}: {before} → {mode}"
        log.info("control: %s: %s", name, text)
        wanted: Position | None = None if mode == "auto" else mode
        self.audit.write(audit_line(now.wall, name, position, wanted, None, rule, text, dry_run=self.dry_run,
                                    why="mode"))
        return True

    def mqtt_actuators(self) -> "list[MqttActuator]":
        """The actuators on the MQTT broker, for the pipeline to attach to its connection."""
        from pvmonit_exporter.control.mqtt_switch import MqttActuator  # noqa: PLC0415 - paho, the [mqtt] extra

        # Those retiring first: one that shares its state topic with its successor leaves the topic to it.
        slots = [*self.retiring, *self.slots.values()]
        return [slot.actuator for slot in slots if isinstance(slot.actuator, MqttActuator)]

    def load_links(self) -> dict[str, LoadLink]:
        """Each charger's link to its load output, for its serial reader to carry."""
        return {slot.actuator.config.device: slot.actuator.link for slot in self.slots.values()
                if isinstance(slot.actuator, VedirectLoadActuator)}

    # --- what readers see ------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The `control` section of /api/state; the metrics read it too."""
        with self._lock:
            return {
                "dry_run": self.dry_run,
                "interval_seconds": self.settings.interval,
                "actuators": [self._slot_document(name, slot) for name, slot in self.slots.items()],
            }

    def _slot_document(self, name: str, slot: Slot) -> dict[str, Any]:
        decision = slot.decision
        memory = slot.memory
        position = memory.position
        commanded_on = position == "on" and not self.dry_run
        return {
            "name": name,
            "type": slot.actuator.config.type,
            "mode": slot.rule.mode if slot.rule is not None else None,
            "position": position,
            "on": slot.read_back if slot.read_back is not None else commanded_on,
            "read_back": slot.read_back,
            "wanted": memory.wanted,
            "since": memory.since,
            "reason": slot.reason,
            "veto": decision.veto if decision is not None else None,
            "guard": guard_text(decision.veto, decision.guard_left) if decision is not None else None,
            "fault": memory.fault,
            "error": slot.error,
            "switches": slot.switches_total,
            "vetoes": dict(slot.vetoes_total),
            "dry_run": self.dry_run,
        }
