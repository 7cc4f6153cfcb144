"""Wires sources → state → (metrics, web, forwarder); start-up, signals and clean shutdown."""

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR
from prometheus_client.registry import Collector, CollectorRegistry

from pvmonit_exporter.collector.build import BuildInfoCollector
from pvmonit_exporter.collector.devices import DeviceCollector
from pvmonit_exporter.collector.probes import ProbeCollector
from pvmonit_exporter.config import Config, DeviceConfig, WebConfig, parse_listen_address
from pvmonit_exporter.errors import UserError
from pvmonit_exporter.sources.ble import AdvertScanner, BleSource
from pvmonit_exporter.sources.probes import ProbeRunner
from pvmonit_exporter.sources.serialport import Discovery, PortClaims, SerialReader
from pvmonit_exporter.state import State
from pvmonit_exporter.web.server import WebApp, WebServer

if TYPE_CHECKING:
    from pvmonit_exporter.forwarder.loop import Forwarder
    from pvmonit_exporter.sources.simulator import Simulator

log = logging.getLogger(__name__)


class Exporter:
    """The whole daemon for one configuration; `start()` then `stop()`."""

    def __init__(self, config: Config, listen_address: str | None = None,
                 ble_scanner: AdvertScanner | None = None) -> None:
        """`ble_scanner`: the Bluetooth devices' radio; None for the real one (bleak)."""
        self.config = config
        self.state = State(config.devices, config.probes)
        serial_devices = [d for d in config.devices if d.source == "serial"]
        ble_devices = [d for d in config.devices if d.source == "ble"]
        claims = PortClaims()
        for named in [d.port for d in serial_devices if d.port != "auto"] + [p.port for p in config.probes if p.port]:
            claims.reserve(named)
        wanted = [d.serial_number for d in serial_devices if d.serial_number]
        discovery = Discovery(claims, config.auto_port_patterns, wanted_serials=wanted)
        self.readers = [SerialReader(device, self.state, discovery) for device in serial_devices]
        self.ble = BleSource(ble_devices, self.state, ble_scanner) if ble_devices else None
        self.probes = [ProbeRunner(probe, self.state) for probe in config.probes]
        self.forwarder = self._forwarder()
        self.registry = CollectorRegistry(auto_describe=False)
        # Ours, then the standard process metrics (CPU, memory, fds): what an operator checks on a Pi.
        collectors: list[Collector] = [DeviceCollector(self.state), ProbeCollector(self.state), BuildInfoCollector(),
                                       PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR]
        for collector in collectors:
            self.registry.register(collector)
        status = None
        if self.forwarder is not None:
            from pvmonit_exporter.collector.forwarder import ForwarderCollector

            self.registry.register(ForwarderCollector(self.forwarder))
            status = self.forwarder.status_document
        address = listen_address or config.web.listen_address
        host, port = parse_listen_address(address, UserError)
        try:
            self.web = WebServer(host, port, WebApp(self.registry, self.state, config.web, status))
        except OSError as exc:
            raise UserError(f"cannot listen on {address}: {exc.strerror or exc}") from None

    def _forwarder(self) -> "Forwarder | None":
        if self.config.emoncms is None:
            return None
        from pvmonit_exporter.forwarder.loop import Forwarder

        return Forwarder(self.config.emoncms, self.state, self.config.devices, self.config.probes)

    @property
    def port(self) -> int:
        return self.web.port

    def start(self) -> None:
        self.web.start()
        for reader in self.readers:
            reader.start()
        if self.ble is not None:
            self.ble.start()
        for probe in self.probes:
            probe.start()
        if self.forwarder is not None:
            self.forwarder.start()

    def stop(self) -> None:
        """Everything is asked to stop first, then waited for: shutdown takes the longest wait, not the sum."""
        sources: list[SerialReader | ProbeRunner | BleSource] = [*self.readers, *self.probes]
        if self.ble is not None:
            sources.append(self.ble)
        for source in sources:
            source.request_stop()
        self.web.stop()
        if self.forwarder is not None:
            self.forwarder.stop()
        for source in sources:
            source.stop()


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGTERM (systemd) and SIGINT (Ctrl-C) set the returned event instead of killing the process."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def serve(exporter: Exporter, urls_banner: bool = False) -> int:
    with _stop_on_signals() as stop:
        exporter.start()
        host = exporter.web.host
        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{exporter.port}"  # noqa: S104
        log.info("listening on %s (metrics at %s/metrics)", base, base)
        if urls_banner:
            print(f"Live page:    {base}/\nMetrics:      {base}/metrics\nState (JSON): {base}/api/state\n"
                  "Press Ctrl-C to stop.", flush=True)
        stop.wait()
        exporter.stop()
    log.info("stopped")
    return 0


def run_exporter(config: Config, listen_address: str | None) -> int:
    return serve(Exporter(config, listen_address))


def run_demo(listen_address: str | None) -> int:
    from pvmonit_exporter.sources.simulator import Simulator

    with Simulator() as simulator:
        devices, probes = simulator.exporter_config()
        ble_devices, radio = _demo_bluetooth(simulator)
        # The simulated installation is a 24 V bank with a 600 W array: bars sized for it.
        web = WebConfig(battery_voltage_min=22.0, battery_voltage_max=30.0, pv_power_max=600.0, consumption_max=250.0)
        config = Config(devices=devices + ble_devices, probes=probes, web=web, source="<demo>")
        return serve(Exporter(config, listen_address, ble_scanner=radio), urls_banner=True)


def _demo_bluetooth(simulator: "Simulator") -> tuple[tuple[DeviceConfig, ...], AdvertScanner | None]:
    """A SmartShunt heard over simulated Bluetooth, when the [ble] extra is installed (it encrypts the adverts)."""
    try:
        from pvmonit_exporter.sources.simulated_ble import DEMO_SHUNT, SimulatedRadio
    except ImportError:
        log.info("demo: no simulated Bluetooth device (the [ble] extra is not installed)")
        return (), None
    return (DEMO_SHUNT.config(),), SimulatedRadio(simulator.model, [DEMO_SHUNT])
