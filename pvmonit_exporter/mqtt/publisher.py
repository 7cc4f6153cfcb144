"""The publisher: reads the state (as `/metrics` and the page do) and publishes, per device, its availability
when it changes, its state every `interval` (changed or not: Home Assistant expires an entity not refreshed
within `exp_aft`), and its Home Assistant discovery when it is first identified, when it gains a value and after
every (re)connection or Home Assistant restart.

One thread, woken every second or by paho's thread; what to send is decided by `homeassistant` (pure). While the
broker is away nothing is queued: live values would be stale when they arrive (counted as dropped).
"""

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

from pvmonit_exporter.config import DeviceConfig, MqttConfig, ProbeConfig
from pvmonit_exporter.config.mqtt_ids import device_identifier, object_id
from pvmonit_exporter.mqtt.connection import MqttConnection
from pvmonit_exporter.mqtt.homeassistant import (
    PROBE_UNITS,
    CounterGuard,
    DeviceInfo,
    StateValue,
    Topics,
    actuator_discovery,
    actuator_object_id_source,
    actuator_state_payload,
    device_discovery,
    exporter_discovery,
    mode_command,
    probe_discovery,
    state_payload,
    switch_command,
)
from pvmonit_exporter.state import DeviceView, ProbeView, State
from pvmonit_exporter.vedirect.fields import metric_values
from pvmonit_exporter.vedirect.registers import register_values

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
# After Home Assistant says `online`, discovery goes out after a random delay up to this (its recommendation:
# many publishers answering at once would flood it), then every state.
BIRTH_DELAY_MAX_SECONDS = 5.0
STOP_WAIT_SECONDS = 5.0


def device_state(view: DeviceView) -> dict[str, StateValue]:
    """A device's values keyed and scaled as `ble decode --json` gives `values` (the metric names without
    `vedirect_`, SI units), with the HEX registers' values as `/metrics` has them."""
    values: dict[str, StateValue] = dict(metric_values(view.fields))
    values.update(register_values(view.identity.kind, view.registers))
    return values


@dataclass
class _Device:
    """What has been published for one device."""

    config: DeviceConfig
    guard: CounterGuard = field(default_factory=CounterGuard)
    available: bool | None = None  # as last published
    object_id: str | None = None  # once identified
    discovered: tuple[object, ...] | None = None  # what the last discovery said (identity, metrics, extras)
    metrics: dict[str, None] = field(default_factory=dict)  # every value seen, in order: entities never vanish
    next_state: float = 0.0


@dataclass
class _Probe:
    config: ProbeConfig
    available: bool | None = None
    discovered: bool = False
    next_state: float = 0.0


class Control(Protocol):
    """What the publisher needs of load control (`control.loop.Controller`)."""

    def status(self) -> dict[str, Any]: ...

    def set_mode(self, name: str, mode: Literal["auto", "on", "off"], source: str) -> bool: ...


@dataclass
class _Actuator:
    name: str
    kind: str
    discovered: bool = False
    said: str | None = None  # the last state payload
    next_state: float = 0.0


class Publisher:
    """Everything one configuration publishes. `previous`: what the configuration before a reload announced
    (object id → device name); those no longer configured get an empty retained discovery message (Home
    Assistant removes them) once every device had the time to be identified."""

    def __init__(self, config: MqttConfig, state: State, devices: Sequence[DeviceConfig],
                 probes: Sequence[ProbeConfig], connection: MqttConnection,
                 previous: Mapping[str, str] | None = None, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, control: Control | None = None) -> None:
        """`control`: load control, whose actuators are published (and, with Home Assistant, switched from it)."""
        self.config = config
        self.topics = Topics(config.topic_prefix, config.discovery_prefix)
        self._state = state
        self._connection = connection
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - a delay, not a secret
        self._devices = {d.name: _Device(d) for d in devices}
        self._probes = {p.name: _Probe(p) for p in probes}
        self._control = control
        cards = control.status()["actuators"] if control is not None else []
        self._actuators = {card["name"]: _Actuator(card["name"], card["type"]) for card in cards}
        self._exporter = DeviceInfo(object_id(f"exporter_{config.client_id}"), f"pvmonit-exporter {config.client_id}")
        self._lock = threading.Lock()  # guards _announced and _retire
        self._announced: dict[str, str] = {}  # object id → device or probe name
        self._previous = dict(previous or {})
        configured = {d.name for d in devices} | {p.name for p in probes} | set(self._actuators)
        stale = max([d.stale_timeout for d in devices] + [0.0])
        self._retire_at = clock() + stale + 2 * config.interval
        self._retire = {oid: name for oid, name in self._previous.items() if name not in configured}
        self._republish = threading.Event()  # set by paho's thread after a (re)connection
        self._birth_due: float | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._owners: dict[str, str] = {}  # object id → device name, to refuse a second device with the same one

    # --- life cycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._connection.on_connected(self._connected)
        if self.config.homeassistant:
            self._connection.subscribe(self.topics.birth, self._home_assistant_status)
            for name in self._actuators:  # Home Assistant's switch and select: the only ways in
                self._connection.subscribe(self.topics.actuator_switch(name), self._command(name, switch_command))
                self._connection.subscribe(self.topics.actuator_mode(name), self._command(name, mode_command))
        if self._connection.connected:
            self._connected()
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_SECONDS)

    def announced(self) -> dict[str, str]:
        """Object id → name of every device and probe announced (with those from before a reload not yet
        retired): what a reload hands to the next publisher."""
        with self._lock:
            return {**self._retire, **self._announced}

    # --- paho's thread -------------------------------------------------------------------------------------

    def _connected(self) -> None:
        self._republish.set()
        self._wake.set()

    def _home_assistant_status(self, topic: str, payload: bytes) -> None:
        if payload.strip() == b"online":
            self._birth_due = self._clock() + self._rng.uniform(0, BIRTH_DELAY_MAX_SECONDS)
            self._wake.set()

    def _command(self, name: str, parse: Callable[[bytes], str | None]) -> Callable[[str, bytes], None]:
        """A handler for one of `name`'s command topics: a valid payload sets its mode (the controller audits
        it); anything else is ignored, counted and logged."""
        def handle(topic: str, payload: bytes) -> None:
            mode = parse(payload)
            if self._control is None or mode is None:
                shown = payload[:40].decode("utf-8", errors="replace")
                self._connection.error("command", f"ignored {shown!r} on {topic}: not a command for {name}")
                return
            self._control.set_mode(name, cast(Literal["auto", "on", "off"], mode), "Home Assistant")
            self._wake.set()  # its new mode out at once

        return handle

    # --- the publisher's thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.publish_once()
            except Exception:  # a bug must not end the publishing
                log.exception("MQTT: publishing failed")
            self._wake.wait(TICK_SECONDS)
            self._wake.clear()

    def publish_once(self) -> None:
        """One round: what is due now."""
        now = self._clock()
        if not self._connection.connected:
            self._forget_published()
            self._drop_due_states(now)
            return
        again = self._start_over(now)
        views, probe_views = self._state.devices(), self._state.probes()
        if again:  # every discovery first, then every state: Home Assistant sets entities up first
            self._publish_views(views, probe_views, now, force_state=False, states=False)
        self._publish_views(views, probe_views, now, force_state=again)
        self._publish_actuators(now, force=again)
        if self._retire and now >= self._retire_at:
            self._retire_previous()

    def _start_over(self, now: float) -> bool:
        """Whether everything goes out again this round: after a (re)connection, or once Home Assistant's birth
        delay is over (then its discovery only: availability stands). The exporter's own discovery goes first."""
        everything = self._republish.is_set()
        if everything:
            self._republish.clear()
        birth = self._birth_due is not None and now >= self._birth_due
        if birth:
            self._birth_due = None
        if everything or birth:
            self._forget_published(availability=not birth)
            if self.config.homeassistant:
                self._publish_json(self.topics.discovery(self._exporter.object_id),
                                   exporter_discovery(self.topics, self._exporter))
        return everything or birth

    def _publish_views(self, views: Sequence[DeviceView], probe_views: Sequence[ProbeView], now: float, *,
                       force_state: bool, states: bool = True) -> None:
        """Every device's, then every probe's, discovery and (with `states`) state, as they are due."""
        for view in views:
            self._device(self._devices[view.name], view, now, force_state=force_state, states=states)
        for probe_view in probe_views:
            self._probe(self._probes[probe_view.name], probe_view, now, force_state=force_state, states=states)

    def _forget_published(self, availability: bool = True) -> None:
        """After a reconnection everything goes out again; after Home Assistant's birth, its discovery."""
        for device in self._devices.values():
            device.discovered = None
            if availability:
                device.available = None
        for probe in self._probes.values():
            probe.discovered = False
            if availability:
                probe.available = None
        for actuator in self._actuators.values():
            actuator.discovered = False

    def _drop_due_states(self, now: float) -> None:
        """Live values due while the broker is away are not kept for later: counted as dropped (those of devices
        and probes that are up: a device that is down has no state to send)."""
        items: list[_Device | _Probe] = [self._devices[view.name] for view in self._state.devices() if view.up]
        items += [self._probes[view.name] for view in self._state.probes() if view.up]
        due = [item for item in items if now >= item.next_state]
        for item in due:
            item.next_state = now + self.config.interval
        if due:
            self._connection.count_dropped(len(due))

    def _device(self, device: _Device, view: DeviceView, now: float, *, force_state: bool,
                states: bool = True) -> None:
        name = device.config.name
        identity = view.identity
        if view.up and identity.product:
            found = object_id(device_identifier(identity.serial_number, device.config.ble_address, name))
            owner = self._owners.setdefault(found, name)
            if owner != name:
                if device.object_id != found:
                    log.error("MQTT: %s and %s are the same device to Home Assistant (object id %s): %s is not "
                              "published", owner, name, found, name)
                    device.object_id = found
                return
            if device.object_id not in (None, found):
                self._remove(device.object_id)  # another device on this port: the old one's entities go
                self._owners.pop(device.object_id, None)
                device.guard, device.metrics = CounterGuard(), {}
            device.object_id = found
        if device.object_id is None:
            return  # not identified yet: nothing to announce its values under
        values = device.guard.apply(device_state(view)) if view.up else {}
        device.metrics.update(dict.fromkeys(values))
        if self.config.homeassistant:
            self._discover_device(device, view)
        if not states:
            return
        if device.available != view.up and self._publish(self.topics.availability(name),
                                                          "online" if view.up else "offline", 1, True):
            device.available = view.up
            force_state = force_state or view.up
        if view.up and (force_state or now >= device.next_state):
            device.next_state = now + self.config.interval
            self._publish(self.topics.state(name), state_payload(view.last_block_time, values), 0, False)

    def _discover_device(self, device: _Device, view: DeviceView) -> None:
        if device.object_id is None:
            return
        identity = view.identity
        said = (device.object_id, identity.product, identity.product_id, identity.serial_number, identity.firmware,
                tuple(device.metrics))
        if device.discovered == said:
            return
        info = DeviceInfo(device.object_id, device.config.name, identity.product, identity.serial_number,
                          identity.firmware, self._exporter.object_id, identity.product_id)
        message = device_discovery(self.topics, info, device.config.name, device.metrics, self.config.interval)
        if self._publish_json(self.topics.discovery(device.object_id), message):
            device.discovered = said
            with self._lock:
                self._announced[device.object_id] = device.config.name
                self._retire.pop(device.object_id, None)

    def _probe(self, probe: _Probe, view: ProbeView, now: float, *, force_state: bool, states: bool = True) -> None:
        name = probe.config.name
        probe_id = object_id(name)
        if self.config.homeassistant and not probe.discovered:
            info = DeviceInfo(probe_id, name, via_device=self._exporter.object_id)
            message = probe_discovery(self.topics, info, name, view.quantity, max(self.config.interval,
                                                                                  probe.config.interval))
            if self._publish_json(self.topics.discovery(probe_id), message):
                probe.discovered = True
                with self._lock:
                    self._announced[probe_id] = name
                    self._retire.pop(probe_id, None)
        if not states:
            return
        if probe.available != view.up and self._publish(self.topics.availability(name),
                                                          "online" if view.up else "offline", 1, True):
            probe.available = view.up
            force_state = force_state or view.up
        if view.up and view.value is not None and (force_state or now >= probe.next_state):
            probe.next_state = now + self.config.interval
            payload = {"time": view.last_reading_time, "value": view.value, "unit": PROBE_UNITS[view.quantity]}
            self._publish(self.topics.state(name), json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
                          0, False)

    def _publish_actuators(self, now: float, *, force: bool) -> None:
        """Each actuator's discovery (once per connection or Home Assistant start), then its state when it
        changes and every `interval`."""
        if self._control is None or not self._actuators:
            return
        for card in self._control.status()["actuators"]:
            actuator = self._actuators.get(card["name"])
            if actuator is None:
                continue
            if self.config.homeassistant and not actuator.discovered:
                found = object_id(actuator_object_id_source(actuator.name))
                info = DeviceInfo(found, actuator.name, via_device=self._exporter.object_id)
                if self._publish_json(self.topics.discovery(found),
                                      actuator_discovery(self.topics, info, actuator.name, actuator.kind)):
                    actuator.discovered = True
                    with self._lock:
                        self._announced[found] = actuator.name
                        self._retire.pop(found, None)
            payload = actuator_state_payload(card)
            if force or payload != actuator.said or now >= actuator.next_state:
                actuator.next_state = now + self.config.interval
                if self._publish(self.topics.actuator_state(actuator.name), payload, 0, False):
                    actuator.said = payload

    def _retire_previous(self) -> None:
        with self._lock:
            retire, self._retire = dict(self._retire), {}
        for found, name in retire.items():
            log.info("MQTT: %s is no longer configured: removing it from Home Assistant (%s)", name, found)
            self._remove(found)

    def _remove(self, found: str) -> None:
        """An empty retained discovery message: Home Assistant removes the device and its entities."""
        self._publish(self.topics.discovery(found), "", 1, True)
        with self._lock:
            self._announced.pop(found, None)

    def _publish_json(self, topic: str, message: Mapping[str, object]) -> bool:
        return self._publish(topic, json.dumps(message, ensure_ascii=False, separators=(",", ":")), 1, True)

    def _publish(self, topic: str, payload: str, qos: int, retain: bool) -> bool:
        return self._connection.publish(topic, payload, qos, retain) is not None
