"""What the process knows now: one record per device and per probe, thread-safe, with timestamps.

Sources (serial readers, probes) write; metrics, the web API and the forwarder read consistent copies
(`DeviceView`, `ProbeView`). The state knows nothing of Prometheus or emoncms. Staleness is decided here,
once, so that every reader agrees: a device with no valid block within its stale timeout is down and shows
no values.
"""

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from pvmonit_exporter.config import DeviceConfig, ProbeConfig
from pvmonit_exporter.vedirect.device import DeviceReadings, Identity
from pvmonit_exporter.vedirect.framing import Block, DecoderStats

Clock = Callable[[], float]


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


@dataclass(frozen=True)
class ProbeView:
    """A consistent copy of one probe's state at `now`. `value` is calibrated, in the quantity's SI unit."""

    name: str
    quantity: str
    up: bool
    value: float | None
    power_watts: float | None
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
            record.stats = replace(stats)

    def withdraw_readings(self, device: str) -> None:
        """Forget a device's values at once (another device answered on its port): it is down until its own
        blocks come back; timestamps and counters stay."""
        with self._lock:
            self._devices[device].readings.clear()

    def set_connection(self, device: str, port: str | None, *, connected: bool, error: str | None) -> None:
        with self._lock:
            record = self._devices[device]
            record.port, record.connected, record.error = port, connected, error

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
        up = age is not None and age <= timeout
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
            fields=record.readings.current(tick, timeout) if up else {},
            stats=replace(record.stats),
            stale_timeout=timeout,
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
            last_reading_time=record.last_reading_time,
            age_seconds=age,
            error=record.error,
            readings_total=record.readings_total,
            errors_total=dict(record.errors_total),
        )
