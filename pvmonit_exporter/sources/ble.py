"""Bluetooth devices: one scanner thread hears Instant Readout adverts and feeds them into the state.

A scanner (`AdvertScanner`) turns the radio into `Advert`s; `BleDevices` decodes those of configured devices
and records them like a serial reader records blocks, so that staleness, metrics and emoncms work the same. The
real scanner is bleak on BlueZ (`BleakAdvertScanner`); the demo and the tests use simulated ones behind the same
interface, so everything but the radio is exercised without hardware.

Like a serial reader, the source never dies: no adapter, an adapter powered off, BlueZ not running, D-Bus
refusing, the `[ble]` extra missing — each is one log line when it starts (and when it changes), the
Bluetooth devices are down with the reason as their error, every other source keeps working, and the scanner
is retried.
"""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pvmonit_exporter.config import DeviceConfig
from pvmonit_exporter.state import State
from pvmonit_exporter.vedirect.framing import DecoderStats
from pvmonit_exporter.workers import Backoff, Worker

if TYPE_CHECKING:
    from pvmonit_exporter.ble.advert import AdvertDecoder
    from pvmonit_exporter.ble.plausible import KeyConfirmation

log = logging.getLogger(__name__)

BACKOFF_START = 2.0
BACKOFF_MAX = 60.0
START_TIMEOUT = 20.0  # seconds for BlueZ to start scanning
# Victron devices advertise about once a second, day and night. Hearing none for this long means the scan
# itself is gone (bluetoothd restarted, the adapter reset): scan again rather than listen to nothing forever.
SILENCE_TIMEOUT = 120.0
MISSING_EXTRA = "Bluetooth needs the [ble] extra: pip install 'pvmonit-exporter[ble]'"


@dataclass(frozen=True)
class Advert:
    """One advertisement as heard: Victron's manufacturer data (company 0x02E1, without the id)."""

    address: str  # upper case, colon separated
    data: bytes
    rssi: int | None
    time: float  # Unix time


AdvertSink = Callable[[Advert], None]


class AdvertScanner(Protocol):
    """Something that hears adverts: `scan()` calls `listening()` once the radio is up, then hands each advert to
    `sink` until `stop` is set; it raises when the radio cannot be used (the caller logs why and retries)."""

    description: str  # how the devices' "port" reads: "Bluetooth", "simulated Bluetooth"

    def scan(self, sink: AdvertSink, stop: threading.Event, listening: Callable[[], None]) -> None: ...


def normalise_address(address: str) -> str:
    return address.strip().upper()


def describe_scanner_error(exc: BaseException) -> str:
    """Why the radio cannot be used, in words a user can act on (README: Bluetooth devices)."""
    if isinstance(exc, ImportError):
        return MISSING_EXTRA
    if isinstance(exc, RadioSilenceError):
        return str(exc)
    reason = getattr(getattr(exc, "reason", None), "name", None)  # bleak's BleakBluetoothNotAvailableError
    reasons = {
        "NO_BLUETOOTH": "no Bluetooth adapter found",
        "NO_BLE_CENTRAL_ROLE": "the Bluetooth adapter cannot scan Bluetooth LE",
        "POWERED_OFF": "the Bluetooth adapter is powered off (bluetoothctl power on; rfkill unblock bluetooth)",
        "DENIED_BY_SYSTEM": "D-Bus refused access to BlueZ (see README: Bluetooth devices, systemd)",
        "DENIED_BY_USER": "D-Bus refused access to BlueZ (see README: Bluetooth devices, systemd)",
    }
    if reason in reasons:
        return reasons[reason]
    dbus_error = str(getattr(exc, "dbus_error", "") or "")  # bleak's BleakDBusError
    if dbus_error.endswith(("ServiceUnknown", "NameHasNoOwner")):
        return "BlueZ is not running (sudo systemctl start bluetooth)"
    if dbus_error.endswith(("AccessDenied", "NotPermitted", "AuthFailed")):
        return "D-Bus refused access to BlueZ (see README: Bluetooth devices, systemd)"
    if isinstance(exc, TimeoutError):
        return f"{exc} (is D-Bus refusing the service? see README: Bluetooth devices)"
    if isinstance(exc, FileNotFoundError | ConnectionRefusedError):
        return "cannot reach the system D-Bus (is dbus running? is /run/dbus visible to the service?)"
    if isinstance(exc, PermissionError):
        return "permission denied on the system D-Bus socket"
    return f"Bluetooth scanner failed: {exc.__class__.__name__}: {exc}"


@dataclass
class _Tracked:
    config: DeviceConfig
    decoder: "AdvertDecoder"
    key_check: "KeyConfirmation"  # values only once adverts in a row make sense: a wrong key that passes the check
    stats: DecoderStats = field(default_factory=DecoderStats)
    error: str | None = None  # the device's own problem (a wrong key), shown in /api/state
    error_kind: str | None = None  # logged when it changes: one line for a wrong key, not one per advert


class BleDevices:
    """The configured Bluetooth devices: adverts in, state out. Called from the scanner thread only."""

    def __init__(self, devices: Sequence[DeviceConfig], state: State) -> None:
        from pvmonit_exporter.ble.advert import AdvertDecoder  # the [ble] extra: checked by the caller
        from pvmonit_exporter.ble.plausible import KeyConfirmation

        self.state = state
        self.port_label = "Bluetooth"
        # Every device has its key when the daemon runs (load_config requires it).
        self._by_address = {normalise_address(d.ble_address or ""): _Tracked(d, AdvertDecoder(d.ble_key),
                                                                               KeyConfirmation())
                            for d in devices if d.ble_key is not None}
        self._scanner_error: str | None = None

    def handle(self, advert: Advert) -> None:
        """Decode one advert; its values reach the state only once the device's key is confirmed (until then
        the device's error says the key looks wrong), and only when they make sense."""
        from pvmonit_exporter.ble.advert import AdvertError, ImplausibleRecordError, KeyMismatchError

        tracked = self._by_address.get(advert.address)
        if tracked is None:
            return
        tracked.stats.bytes_received += len(advert.data)
        try:
            reading = tracked.decoder.decode(advert.data)
        except KeyMismatchError as exc:
            tracked.stats.malformed_blocks += 1
            self._set_device_error(tracked, str(exc), "key mismatch")
            self.state.record_blocks(tracked.config.name, [], tracked.stats)
            return
        except AdvertError as exc:
            tracked.stats.malformed_blocks += 1
            tracked.stats.bytes_discarded += len(advert.data)
            log.debug("device %s: advert dropped: %s", tracked.config.name, exc)
            if isinstance(exc, ImplausibleRecordError):
                tracked.key_check.nonsense(exc.nonsense)
                self._show_key_doubt(tracked)
            self.state.record_blocks(tracked.config.name, [], tracked.stats)
            return
        tracked.stats.blocks_valid += 1
        if not tracked.key_check.sensible(reading.nonce, reading.block, advert.time):
            self._show_key_doubt(tracked)
            self.state.record_blocks(tracked.config.name, [], tracked.stats)
            return
        self._set_device_error(tracked, None, None)
        self.state.record_blocks(tracked.config.name, [reading.block], tracked.stats)

    def scanner_status(self, error: str | None, port_label: str) -> None:
        """The radio works (`error` None) or not; every device's connection follows."""
        self._scanner_error, self.port_label = error, port_label
        for tracked in self._by_address.values():
            self._publish(tracked)

    def _show_key_doubt(self, tracked: _Tracked) -> None:
        check = tracked.key_check
        if not check.confirmed:
            self._set_device_error(tracked, check.doubt, "key looks wrong" if check.suspicious else "key unconfirmed")

    def _set_device_error(self, tracked: _Tracked, error: str | None, kind: str | None) -> None:
        """Shows `error`; logs when its `kind` changes. A key still being confirmed (its first adverts, counted)
        is on the way to normal: logged at debug level."""
        if error == tracked.error:
            return
        was, tracked.error, tracked.error_kind = tracked.error_kind, error, kind
        if kind != was:
            if kind is None:
                log.info("device %s: adverts decoded%s", tracked.config.name,
                         "" if was == "key unconfirmed" else " again")
            elif kind == "key unconfirmed":
                log.debug("device %s: %s", tracked.config.name, error)
            else:
                log.warning("device %s: %s", tracked.config.name, error)
        self._publish(tracked)

    def _publish(self, tracked: _Tracked) -> None:
        port = f"{tracked.config.ble_address} ({self.port_label})"
        connected = self._scanner_error is None
        self.state.set_connection(tracked.config.name, port, connected=connected,
                                  error=self._scanner_error or tracked.error)


class BleSource(Worker):
    """The scanner thread: runs `scanner` (retrying with capped backoff) and feeds `BleDevices`.

    `scanner` None means the real radio (bleak); it is built in the thread, so that a missing `[ble]` extra is
    a logged state like any other radio problem, not a crash at start-up.
    """

    def __init__(self, devices: Sequence[DeviceConfig], state: State, scanner: AdvertScanner | None = None) -> None:
        self.devices, self.state, self.scanner = tuple(devices), state, scanner
        self.backoff_start = BACKOFF_START
        super().__init__("ble-scanner", self._run)
        self._status: str | None = ""  # "" before the first status: the first one is always logged

    def _log_status(self, error: str | None, scanner: AdvertScanner | None) -> None:
        if error == self._status:
            return
        self._status = error
        names = ", ".join(d.name for d in self.devices)
        if error is None:
            log.info("Bluetooth: listening with %s for %s", scanner.description if scanner else "?", names)
        else:
            log.warning("Bluetooth: %s; devices down: %s (retrying)", error, names)

    def _run(self) -> None:
        backoff = Backoff(self.backoff_start, BACKOFF_MAX)
        handler: BleDevices | None = None
        while not self._stop.is_set():
            scanner = self.scanner
            try:
                if handler is None:
                    handler = BleDevices(self.devices, self.state)
                if scanner is None:
                    scanner = BleakAdvertScanner()
                started = time.monotonic()

                def listening(handler: BleDevices = handler, scanner: AdvertScanner = scanner) -> None:
                    handler.scanner_status(None, scanner.description)
                    self._log_status(None, scanner)

                scanner.scan(handler.handle, self._stop, listening)
                if time.monotonic() - started > BACKOFF_MAX:
                    backoff.reset()  # it worked for a while: retry soon
            except Exception as exc:  # noqa: BLE001 - the thread must never die: a failure is a state, then a retry
                error = describe_scanner_error(exc)
                if handler is not None:
                    handler.scanner_status(error, scanner.description if scanner else "Bluetooth")
                else:
                    for device in self.devices:
                        self.state.set_connection(device.name, device.ble_address, connected=False, error=error)
                self._log_status(error, scanner)
            self._stop.wait(backoff.next_delay())


class RadioSilenceError(Exception):
    """No Victron advert at all for SILENCE_TIMEOUT: the scan is restarted."""


class BleakAdvertScanner:
    """The real radio: bleak on BlueZ, one asyncio loop in the calling thread.

    Passive scanning (no scan requests sent: Victron devices put everything in the advert) needs BlueZ's
    advertisement monitor; where BlueZ lacks it (older bluetoothd without --experimental), active scanning is
    used instead, which hears the same adverts. A scan that hears no Victron advert for `silence_timeout` ends
    with RadioSilenceError, and is started again.
    """

    description = "Bluetooth"

    def __init__(self) -> None:
        import bleak  # noqa: F401 - fail here, with ImportError, when the [ble] extra is missing

        self._passive = True
        self.start_timeout = START_TIMEOUT
        self.silence_timeout = SILENCE_TIMEOUT

    def scan(self, sink: AdvertSink, stop: threading.Event, listening: Callable[[], None]) -> None:
        import asyncio  # here, not at the top: a daemon without Bluetooth devices never loads asyncio (~2 MB)

        asyncio.run(self._scan(sink, stop, listening))

    async def _scan(self, sink: AdvertSink, stop: threading.Event, listening: Callable[[], None]) -> None:
        import asyncio

        from bleak import BleakScanner
        from bleak.exc import BleakError

        from pvmonit_exporter.ble.advert import COMPANY_ID

        last_heard = time.monotonic()

        def heard(device: Any, advertisement: Any) -> None:
            nonlocal last_heard
            data = advertisement.manufacturer_data.get(COMPANY_ID)
            if data:
                last_heard = time.monotonic()
                sink(Advert(normalise_address(device.address), bytes(data), advertisement.rssi, time.time()))

        scanner = self._scanner(BleakScanner, heard)
        try:
            started = await self._start(scanner, stop)
        except BleakError as exc:
            if not self._passive or "passive scanning" not in str(exc):
                raise
            log.info("Bluetooth: passive scanning not available (%s); scanning actively", exc)
            self._passive = False
            scanner = self._scanner(BleakScanner, heard)
            started = await self._start(scanner, stop)
        if not started:
            return
        listening()
        last_heard = time.monotonic()
        try:
            while not stop.is_set():
                await asyncio.sleep(0.2)
                if time.monotonic() - last_heard > self.silence_timeout:
                    raise RadioSilenceError(f"no Victron advert heard for {self.silence_timeout:g} s; scanning again")
        finally:
            try:
                await scanner.stop()
            except (BleakError, OSError, EOFError) as exc:  # bluetoothd gone: nothing left to stop
                log.debug("Bluetooth: stopping the scan: %s", exc)

    async def _start(self, scanner: Any, stop: threading.Event) -> bool:
        """Start `scanner`; False when asked to stop first. A D-Bus that never answers (a policy dropping the
        replies) would otherwise hang here forever: it is an error after `start_timeout`."""
        import asyncio

        starting = asyncio.ensure_future(scanner.start())
        deadline = time.monotonic() + self.start_timeout
        while not starting.done():
            if stop.is_set() or time.monotonic() > deadline:
                starting.cancel()
                if stop.is_set():
                    return False
                raise TimeoutError(f"no answer from BlueZ over D-Bus within {self.start_timeout:g} s")
            await asyncio.wait({starting}, timeout=0.1)
        starting.result()
        return True

    def _scanner(self, scanner_class: Any, heard: Callable[[Any, Any], None]) -> Any:
        if not self._passive:
            return scanner_class(heard, scanning_mode="active")
        from bleak.args.bluez import OrPattern
        from bleak.assigned_numbers import AdvertisementDataType

        # Manufacturer data starting with Victron's company id (little-endian).
        victron = OrPattern(0, AdvertisementDataType.MANUFACTURER_SPECIFIC_DATA, b"\xe1\x02")
        return scanner_class(heard, scanning_mode="passive", bluez={"or_patterns": [victron]})
