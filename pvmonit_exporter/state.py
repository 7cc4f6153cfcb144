"""What the process knows now: one record per device and per probe, thread-safe, with timestamps.

Sources (serial readers, probes) write; metrics, the web API and the forwarder read consistent copies
(`DeviceView`, `ProbeView`). The state knows nothing of Prometheus or emoncms. Staleness is decided here,
once, so that every reader agrees: a device with no valid block within its stale timeout is down and shows
no values.
"""

import datetime
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from pvmonit_exporter.config import DeviceConfig, ProbeConfig
from pvmonit_exporter.vedirect.device import DeviceReadings, Identity
from pvmonit_exporter.vedirect.framing import Block, DecoderStats
from pvmonit_exporter.vedirect.hex import RegisterReply
from pvmonit_exporter.vedirect.hex_session import Outcome, Result
from pvmonit_exporter.vedirect.history import DayAnchor, HistoryDay, anchor_today

Clock = Callable[[], float]

# After a HEX request a device may hold its text blocks back for a few seconds (vedirect-hex.md §4): while
# its replies keep coming, that silence is excused this much longer than the stale timeout.
HEX_TEXT_PAUSE = 10.0
# A register value read over HEX (settings every 10 minutes) is current for this long.
REGISTER_MAX_AGE = 1800.0


@dataclass(frozen=True)
class DeviceView:
    """A consistent copy of one device's state at `now`."""

    name: str
    source: str  # "serial" (VE.Direct) or "ble" (Instant Readout adverts)
    port: str | None  # the port in use (resolved from `auto`), None while not found
    connected: bool
    error: str | None  # why the port is not readable, in words
    up: bool
    last_block_time: float | None
    age_seconds: float | None
    identity: Identity
    fields: Mapping[str, str]  # fresh raw values; empty when the device is down
    stats: DecoderStats
    stale_timeout: float
    registers: Mapping[int, bytes] = field(default_factory=dict)  # current HEX register values
    hex_requests: Mapping[str, int] = field(default_factory=dict)  # HEX requests by result
    history: tuple[HistoryDay, ...] = ()  # the charger's days, newest first
    history_dates: tuple[datetime.date | None, ...] = ()  # the calendar date of each (None: no sequence number)


@dataclass(frozen=True)
class ProbeView:
    """A consistent copy of one probe's state at `now`. `value` is calibrated, in the quantity's SI unit."""

    name: str
    quantity: str
    up: bool
    value: float | None
    power_watts: float | None
    gives_watts: bool  # a power probe, or a current probe with power_voltage: fresh or not, it is a consumption
    last_reading_time: float | None
    age_seconds: float | None
    error: str | None
    readings_total: int
    errors_total: Mapping[str, int]


@dataclass
class _Device:
    config: DeviceConfig
    readings: DeviceReadings = field(default_factory=DeviceReadings)  # timed by the ticker
    last_block_time: float | None = None  # wall clock, for display
    stats: DecoderStats = field(default_factory=DecoderStats)
    port: str | None = None
    connected: bool = False
    error: str | None = None
    hex_requests: dict[str, int] = field(default_factory=lambda: {result.value: 0 for result in Result})
    last_hex_reply: float | None = None  # ticker
    link_closed: bool = False  # the link closed after the last block: what came before it is no longer current
    history: tuple[HistoryDay, ...] = ()
    day_anchor: DayAnchor | None = None  # a day sequence number and its calendar date


@dataclass
class _Probe:
    config: ProbeConfig
    value: float | None = None
    last_reading_time: float | None = None  # wall clock, for display
    last_reading_tick: float | None = None  # ticker, for ages
    error: str | None = None
    readings_total: int = 0
    errors_total: dict[str, int] = field(default_factory=dict)


def probe_max_age(config: ProbeConfig) -> float:
    """A probe reading older than this is no longer current: two missed intervals."""
    return 2 * config.interval + config.timeout


class State:
    """`clock` stamps what is shown (Unix time); `ticker` measures ages, so that a clock stepped back by NTP
    never makes old values look current. A test that passes its own `clock` drives both, unless it also
    passes a `ticker`."""

    def __init__(
        self,
        devices: Sequence[DeviceConfig],
        probes: Sequence[ProbeConfig] = (),
        clock: Clock = time.time,
        ticker: Clock | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._ticker = ticker or (time.monotonic if clock is time.time else clock)
        self._devices = {d.name: _Device(d) for d in devices}
        self._probes = {p.name: _Probe(p) for p in probes}

    # --- writers -------------------------------------------------------------------------------------

    def record_blocks(self, device: str, blocks: Sequence[Block], stats: DecoderStats) -> None:
        """Merge a reader's freshly decoded blocks; `stats` are its decoder's cumulative counters."""
        now, tick = self._clock(), self._ticker()
        with self._lock:
            record = self._devices[device]
            for block in blocks:
                record.readings.update(block, tick)
            if blocks:
                record.last_block_time = now
                record.link_closed = False
            record.stats = replace(stats)

    def record_hex(self, device: str, outcomes: Sequence[Outcome], async_replies: Sequence[RegisterReply],
                   history: Sequence[HistoryDay] | None = None) -> None:
        """What a HEX exchange brought: ended requests (counted; register values kept), async values, and the
        history when a read of it ended."""
        tick = self._ticker()
        with self._lock:
            record = self._devices[device]
            for outcome in outcomes:
                record.hex_requests[outcome.result.value] += 1
                reply = outcome.reply
                if reply is not None:
                    record.last_hex_reply = tick
                if isinstance(reply, RegisterReply) and outcome.result is Result.OK:
                    record.readings.update_register(reply.register, reply.data, tick)
            for message in async_replies:
                if not message.flags:
                    record.readings.update_register(message.register, message.data, tick)
            if history is not None:
                record.history = tuple(history)
                today = history[0].day_sequence if history and history[0].days_ago == 0 else None
                if today is not None:
                    local_now = datetime.datetime.fromtimestamp(self._clock())
                    charger_off = record.readings.values.get("CS") == "0"
                    record.day_anchor = anchor_today(today, local_now, charger_off, record.day_anchor)

    def withdraw_readings(self, device: str) -> None:
        """Forget a device's values at once (another device answered on its port): it is down until its own
        blocks come back; timestamps and counters stay."""
        with self._lock:
            self._devices[device].readings.clear()

    def set_connection(self, device: str, port: str | None, *, connected: bool, error: str | None) -> None:
        """The link's state. A link that is not connected (closed, reset, unplugged, never opened) takes the
        device down at once: nothing it sent before is current any more, until its next block."""
        with self._lock:
            record = self._devices[device]
            record.port, record.connected, record.error = port, connected, error
            if not connected:
                record.link_closed = True

    def record_probe(self, probe: str, value: float | None, error_kind: str | None = None,
                     error: str | None = None) -> None:
        """A probe reading (`value`), or a failure counted under `error_kind` with its message.

        A failure also withdraws the previous value: it is not known to be still true."""
        now, tick = self._clock(), self._ticker()
        with self._lock:
            record = self._probes[probe]
            if value is not None:
                record.value, record.error = value, None
                record.last_reading_time, record.last_reading_tick = now, tick
                record.readings_total += 1
            if error_kind is not None:
                record.errors_total[error_kind] = record.errors_total.get(error_kind, 0) + 1
                record.value, record.error = None, error

    # --- readers -------------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock()

    def devices(self) -> list[DeviceView]:
        tick = self._ticker()
        with self._lock:
            return [self._device_view(record, tick) for record in self._devices.values()]

    def probes(self) -> list[ProbeView]:
        tick = self._ticker()
        with self._lock:
            return [self._probe_view(record, tick) for record in self._probes.values()]

    @staticmethod
    def _device_view(record: _Device, tick: float) -> DeviceView:
        timeout = record.config.stale_timeout
        last = record.readings.last_block_time
        age = None if last is None else max(0.0, tick - last)
        hex_reply = record.last_hex_reply
        # The text pauses after a HEX request: excused while the device answers, shown as of its last block.
        excused = (age is not None and hex_reply is not None and last is not None and hex_reply >= last
                   and tick - hex_reply <= timeout + HEX_TEXT_PAUSE)
        up = age is not None and not record.link_closed and (age <= timeout or excused)
        fields_age = timeout + (age or 0.0) if excused else timeout
        return DeviceView(
            name=record.config.name,
            source=record.config.source,
            port=record.port,
            connected=record.connected,
            error=record.error,
            up=up,
            last_block_time=record.last_block_time,
            age_seconds=age,
            identity=record.readings.identity(),
            fields=record.readings.current(tick, fields_age) if up else {},
            stats=replace(record.stats),
            stale_timeout=timeout,
            registers=record.readings.current_registers(tick, REGISTER_MAX_AGE),
            hex_requests=dict(record.hex_requests),
            history=record.history,
            history_dates=tuple(
                None if record.day_anchor is None or day.day_sequence is None
                else record.day_anchor.date_of(day.day_sequence)
                for day in record.history
            ),
        )

    @staticmethod
    def _probe_view(record: _Probe, tick: float) -> ProbeView:
        config = record.config
        last = record.last_reading_tick
        age = None if last is None else max(0.0, tick - last)
        fresh = age is not None and age <= probe_max_age(config) and record.value is not None
        value = record.value if fresh else None
        power = None
        if value is not None and config.power_voltage is not None:
            power = value * config.power_voltage
        return ProbeView(
            name=config.name,
            quantity=config.quantity,
            up=fresh,
            value=value,
            power_watts=power,
            gives_watts=config.quantity == "power" or config.power_voltage is not None,
            last_reading_time=record.last_reading_time,
            age_seconds=age,
            error=record.error,
            readings_total=record.readings_total,
            errors_total=dict(record.errors_total),
        )
