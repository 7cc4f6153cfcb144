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
    readings: DeviceReadings = field(default_factory=DeviceReadings)
    stats: DecoderStats = field(default_factory=DecoderStats)
    port: str | None = None
    connected: bool = False
    error: str | None = None


@dataclass
class _Probe:
    config: ProbeConfig
    value: float | None = None
    last_reading_time: float | None = None
    error: str | None = None
    readings_total: int = 0
    errors_total: dict[str, int] = field(default_factory=dict)


def probe_max_age(config: ProbeConfig) -> float:
    """A probe reading older than this is no longer current: two missed intervals."""
    return 2 * config.interval + config.timeout


class State:
    def __init__(
        self,
        devices: Sequence[DeviceConfig],
        probes: Sequence[ProbeConfig] = (),
        clock: Clock = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._devices = {d.name: _Device(d) for d in devices}
        self._probes = {p.name: _Probe(p) for p in probes}

    @property
    def clock(self) -> Clock:
        return self._clock

    # --- writers -------------------------------------------------------------------------------------

    def record_blocks(self, device: str, blocks: Sequence[Block], stats: DecoderStats) -> None:
        """Merge a reader's freshly decoded blocks; `stats` are its decoder's cumulative counters."""
        now = self._clock()
        with self._lock:
            record = self._devices[device]
            for block in blocks:
                record.readings.update(block, now)
            record.stats = replace(stats)

    def set_connection(self, device: str, port: str | None, *, connected: bool, error: str | None) -> None:
        with self._lock:
            record = self._devices[device]
            record.port, record.connected, record.error = port, connected, error

    def record_probe(self, probe: str, value: float | None, error_kind: str | None = None,
                     error: str | None = None) -> None:
        """A probe reading (`value`), or a failure counted under `error_kind` with its message."""
        now = self._clock()
        with self._lock:
            record = self._probes[probe]
            if value is not None:
                record.value, record.last_reading_time, record.error = value, now, None
                record.readings_total += 1
            if error_kind is not None:
                record.errors_total[error_kind] = record.errors_total.get(error_kind, 0) + 1
                record.error = error

    # --- readers -------------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock()

    def devices(self, now: float | None = None) -> list[DeviceView]:
        now = self._clock() if now is None else now
        with self._lock:
            return [self._device_view(record, now) for record in self._devices.values()]

    def probes(self, now: float | None = None) -> list[ProbeView]:
        now = self._clock() if now is None else now
        with self._lock:
            return [self._probe_view(record, now) for record in self._probes.values()]

    @staticmethod
    def _device_view(record: _Device, now: float) -> DeviceView:
        timeout = record.config.stale_timeout
        last = record.readings.last_block_time
        age = None if last is None else max(0.0, now - last)
        up = age is not None and age <= timeout
        return DeviceView(
            name=record.config.name,
            port=record.port,
            connected=record.connected,
            error=record.error,
            up=up,
            last_block_time=last,
            age_seconds=age,
            identity=record.readings.identity(),
            fields=record.readings.current(now, timeout) if up else {},
            stats=replace(record.stats),
            stale_timeout=timeout,
        )

    @staticmethod
    def _probe_view(record: _Probe, now: float) -> ProbeView:
        config = record.config
        last = record.last_reading_time
        age = None if last is None else max(0.0, now - last)
        fresh = age is not None and age <= probe_max_age(config) and record.value is not None
        value = record.value if fresh else None
        power = None
        if value is not None and config.power_voltage is not None:
            power = value * config.power_voltage
        return ProbeView(
            name=config.name,
            quantity=config.quantity,
            up=fresh and record.error is None,
            value=value,
            power_watts=power,
            last_reading_time=last,
            age_seconds=age,
            error=record.error,
            readings_total=record.readings_total,
            errors_total=dict(record.errors_total),
        )
