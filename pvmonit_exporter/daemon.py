"""Wires sources → state → (metrics, web, forwarder); start-up, signals, configuration reload and clean shutdown."""

import gc
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR
from prometheus_client.registry import Collector, CollectorRegistry

from pvmonit_exporter.charts import ChartRecorder, ChartRing
from pvmonit_exporter.collector.build import BuildInfoCollector
from pvmonit_exporter.collector.devices import DeviceCollector
from pvmonit_exporter.config import Config, DeviceConfig, MqttConfig, WebConfig, load_config, parse_listen_address
from pvmonit_exporter.errors import UserError
from pvmonit_exporter.sources.serialport import Discovery, PortClaims, SerialReader
from pvmonit_exporter.state import State
from pvmonit_exporter.web.server import WebApp, WebServer

if TYPE_CHECKING:
    from pvmonit_exporter.control.loop import Controller, Handover
    from pvmonit_exporter.demo.ports import Simulator
    from pvmonit_exporter.forwarder.threads import Forwarder
    from pvmonit_exporter.mqtt.connection import MqttConnection
    from pvmonit_exporter.mqtt.publisher import Publisher
    from pvmonit_exporter.sources.ble import AdvertScanner, BleSource
    from pvmonit_exporter.sources.probes import ProbeRunner

log = logging.getLogger(__name__)

# The main thread wakes this often: a signal delivered to another thread is only handled when it does.
SIGNAL_CHECK_SECONDS = 0.5


class Pipeline:
    """Everything one configuration runs: readers and probes → state → (registry, forwarder), and the web app
    that shows them. A reload replaces the whole pipeline; the web server stays."""

    def __init__(self, config: Config, history: ChartRing, ble_scanner: "AdvertScanner | None" = None,
                 control: "Handover | None" = None, mqtt_announced: dict[str, str] | None = None) -> None:
        """`history`: the 24 hours of the live page's charts, which outlive a reload; `ble_scanner`: the
        Bluetooth devices' radio, None for the real one (bleak); `control`: the actuators the previous
        configuration hands over at a reload; `mqtt_announced`: what the configuration before a reload
        announced to Home Assistant (see `Publisher`)."""
        self.config = config
        self.state = State(config.devices, config.probes)
        self.controller = self._controller(control)
        self.handover: Handover | None = None  # what stop(reloading=True) leaves for the next pipeline
        serial_devices = [d for d in config.devices if d.source == "serial"]
        ble_devices = [d for d in config.devices if d.source == "ble"]
        claims = PortClaims()
        for named in [d.port for d in serial_devices if d.port != "auto"] + [p.port for p in config.probes if p.port]:
            claims.reserve(named)
        wanted = [d.serial_number for d in serial_devices if d.serial_number]
        discovery = Discovery(claims, config.auto_port_patterns, wanted_serials=wanted)
        links = self.controller.load_links() if self.controller is not None else {}
        self.readers = [SerialReader(device, self.state, discovery, load_link=links.get(device.name))
                        for device in serial_devices]
        self.ble: BleSource | None = None
        if ble_devices:  # Bluetooth's code (and asyncio, bleak) only for a configuration that has such devices
            from pvmonit_exporter.sources import ble

            self.ble = ble.BleSource(ble_devices, self.state, ble_scanner)
        self.probes = self._probes()
        self.history = ChartRecorder(self.state, history)
        self.mqtt: MqttConnection | None = None
        self.publisher: Publisher | None = None
        if config.mqtt is not None:  # paho is imported only then
            try:
                from pvmonit_exporter.mqtt import connection, publisher
            except ImportError:
                from pvmonit_exporter.mqtt import MISSING_EXTRA

                raise UserError(MISSING_EXTRA) from None
            self.mqtt = connection.MqttConnection(config.mqtt)
            self.publisher = publisher.Publisher(config.mqtt, self.state, config.devices, config.probes, self.mqtt,
                                       mqtt_announced, control=self.controller)
            for actuator in self.controller.mqtt_actuators() if self.controller is not None else []:
                actuator.attach(self.mqtt)
        self.forwarder = self._forwarder()
        self.registry = self._registry()
        status = None
        if self.forwarder is not None:
            from pvmonit_exporter.collector.forwarder import ForwarderCollector

            self.registry.register(ForwarderCollector(self.forwarder))
            status = self.forwarder.status_document
        control_status = None
        if self.controller is not None:
            from pvmonit_exporter.collector.control import ControlCollector

            self.registry.register(ControlCollector(self.controller))
            control_status = self.controller.status
        mqtt_status = None
        if self.mqtt is not None:
            from pvmonit_exporter.collector.mqtt import MqttCollector

            self.registry.register(MqttCollector(self.mqtt))
            mqtt_status = self.mqtt.status_document
        self.app = WebApp(self.registry, self.state, config.web, status, self.history, control=control_status,
                          mqtt=mqtt_status)

    def _probes(self) -> "list[ProbeRunner]":
        if not self.config.probes:  # the probes' readers (and subprocess) only for a configuration that has some
            return []
        from pvmonit_exporter.sources.probes import ProbeRunner

        return [ProbeRunner(probe, self.state) for probe in self.config.probes]

    def _registry(self) -> CollectorRegistry:
        """Our collectors, then the standard process metrics (CPU, memory, fds): what an operator checks on a Pi.
        Those of the forwarder, control and MQTT are added by `__init__`, with the parts themselves."""
        # Our collectors and the library's process ones name no metrics in advance (no `describe`): without
        # support_collectors_without_names, `/metrics?name[]=vedirect_up` would find no collector and answer
        # an empty body. With it, each is collected and its families filtered by name.
        registry = CollectorRegistry(auto_describe=False, support_collectors_without_names=True)
        collectors: list[Collector] = [DeviceCollector(self.state)]
        if self.probes:
            from pvmonit_exporter.collector.probes import ProbeCollector

            collectors.append(ProbeCollector(self.state))
        for collector in [*collectors, BuildInfoCollector(), PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR]:
            registry.register(collector)
        return registry

    def _controller(self, previous: "Handover | None") -> "Controller | None":
        """Control is loaded only for a configuration that switches something (or had actuators to release)."""
        if not self.config.actuators and not self.config.rules and previous is None:
            return None
        from pvmonit_exporter.control.loop import Controller

        return Controller(self.config, self.state, previous)

    def _forwarder(self) -> "Forwarder | None":
        if self.config.emoncms is None:
            return None
        from pvmonit_exporter.forwarder.threads import Forwarder

        transport = None
        if self.config.emoncms.via == "mqtt" and self.mqtt is not None:
            from pvmonit_exporter.forwarder.mqtt import EmoncmsMqttClient

            transport = EmoncmsMqttClient(self.mqtt, self.config.emoncms)
        return Forwarder(self.config.emoncms, self.state, self.config.devices, self.config.probes,
                         transport=transport)

    def start(self) -> None:
        if self.controller is not None:  # every actuator to its safe state before anything else
            self.controller.start()
        for reader in self.readers:
            reader.start()
        if self.ble is not None:
            self.ble.start()
        for probe in self.probes:
            probe.start()
        if self.mqtt is not None and self.publisher is not None:
            self.publisher.start()
            self.mqtt.start()
        if self.forwarder is not None:
            self.forwarder.start()
        self.history.start()

    def stop(self, before_waiting: Callable[[], None] = lambda: None, *, reloading: bool = False) -> None:
        """Everything is asked to stop first, then waited for: shutdown takes the longest wait, not the sum.
        Actuators go to their safe state first, while the readers (a charger's HEX link) still run; at a
        reload they are handed over as they are (`self.handover`)."""
        if self.controller is not None:
            if reloading:
                self.handover = self.controller.handover()
            else:
                self.controller.stop()
        sources: list[SerialReader | ProbeRunner | ChartRecorder | BleSource] = [*self.readers, *self.probes,
                                                                                    self.history]
        if self.ble is not None:
            sources.append(self.ble)
        for source in sources:
            source.request_stop()
        before_waiting()
        if self.forwarder is not None:
            self.forwarder.stop()
        if self.publisher is not None:
            self.publisher.stop()
        if self.mqtt is not None:
            self.mqtt.stop()
        for source in sources:
            source.stop()

    def mqtt_announced(self) -> dict[str, str]:
        return {} if self.publisher is None else self.publisher.announced()


class Exporter:
    """The whole daemon: `start()`, then `reload()` as often as wanted, then `stop()`."""

    def __init__(self, config: Config, listen_address: str | None = None,
                 ble_scanner: "AdvertScanner | None" = None) -> None:
        """`ble_scanner`: the Bluetooth devices' radio; None for the real one (bleak)."""
        self._history = ChartRing()
        self._ble_scanner = ble_scanner
        self.pipeline = Pipeline(config, self._history, ble_scanner)
        address = listen_address or config.web.listen_address
        self._listen_address = address
        host, port = parse_listen_address(address, UserError)
        try:
            self.web = WebServer(host, port, self.pipeline.app)
        except OSError as exc:
            raise UserError(f"cannot listen on {address}: {exc.strerror or exc}") from None

    @property
    def config(self) -> Config:
        return self.pipeline.config

    @property
    def port(self) -> int:
        return self.web.port

    def start(self) -> None:
        self.web.start()
        self.pipeline.start()

    def reload(self, config: Config) -> None:
        """Run `config` instead: the old sources and forwarder stop (queued rows stay on disk), new ones start
        on the same queue and ports, and the web server answers from the new state from then on. When the new
        pipeline cannot be built (its queue cannot be opened…), the previous configuration starts again."""
        if config.web.listen_address != self.config.web.listen_address:
            log.warning("web.listen_address changed to %s: it applies at the next restart; still listening on %s",
                        config.web.listen_address, self._listen_address)
        previous = self.pipeline
        previous.stop(reloading=True)
        announced = previous.mqtt_announced()
        try:
            self.pipeline = Pipeline(config, self._history, self._ble_scanner, previous.handover, announced)
        except Exception as exc:  # the queue's own errors, an OSError…: whatever it is, the old one runs again
            self.pipeline = Pipeline(previous.config, self._history, self._ble_scanner, previous.handover, announced)
            raise UserError(str(exc) if isinstance(exc, UserError) else f"cannot start it: {exc}") from exc
        finally:
            self.pipeline.start()
            self.web.app = self.pipeline.app  # once started: its forwarder has read the queue's figures
            del previous
            _release_memory()

    def stop(self) -> None:
        self.pipeline.stop(before_waiting=self.web.stop)


def _release_memory() -> None:
    """Free a replaced pipeline now and hand its memory back to the system. Its threads, sockets, queue
    connections and registry sit in reference cycles that only the cyclic collector frees, at a time of its
    choosing; and glibc keeps freed heap pages (spread over the arenas of threads that have ended) unless asked
    to trim them. Measured in one process on the simulated devices: 200 reloads without this grew RSS by
    1.0 MB, 300 with it by 0.2 MB (600 reloads in the daemon: benchmarks/bench_reload.py)."""
    gc.collect()
    # ctypes here, at the first reload, not at start: it costs a daemon that never reloads about 4 MB.
    import ctypes

    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only (musl has none, nor the problem)
    if trim is not None:
        trim(0)


class Signals:
    """What the signal handlers ask of the main thread: stop (SIGTERM, SIGINT) or reload (SIGHUP)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.reload = threading.Event()
        self._wake = threading.Event()

    def wait(self) -> None:
        """Until a handler ran. The timeout matters: CPython runs handlers in the main thread only, and only
        once that thread wakes; a signal delivered to another thread (tgkill, or the kernel's choice of any
        thread for a process-directed signal) would never wake an untimed wait."""
        while not self._wake.wait(SIGNAL_CHECK_SECONDS):
            pass
        self._wake.clear()

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            log.info("received SIGHUP, reloading the configuration")
            self.reload.set()
        else:
            log.info("received %s, stopping", signal.Signals(signum).name)
            self.stop.set()
        self._wake.set()


@contextmanager
def _signals_handled() -> Iterator[Signals]:
    """SIGTERM (systemd) and SIGINT (Ctrl-C) ask to stop, SIGHUP to reload, instead of killing the process."""
    signals = Signals()
    previous = {sig: signal.signal(sig, signals.handle) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        yield signals
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def reload_from(exporter: Exporter, config_file: str | None) -> None:
    """SIGHUP: a valid file replaces the running configuration; anything wrong is one line, and the running
    configuration goes on."""
    if config_file is None:
        log.warning("nothing to reload: this configuration was not read from a file")
        return
    try:
        config = load_config(config_file)
        exporter.reload(config)
    except UserError as exc:
        log.error("configuration not reloaded, the previous one keeps running: %s", exc)  # noqa: TRY400
        return
    log.info("configuration reloaded from %s", config_file)


def serve(exporter: Exporter, urls_banner: bool = False, config_file: str | None = None) -> int:
    with _signals_handled() as signals:
        exporter.start()
        host = exporter.web.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - compared, not bound
        base = f"http://[{shown}]:{exporter.port}" if ":" in shown else f"http://{shown}:{exporter.port}"
        log.info("listening on %s (metrics at %s/metrics)", base, base)
        if urls_banner:
            print(f"Live page:    {base}/\nMetrics:      {base}/metrics\nState (JSON): {base}/api/state\n"
                  "Press Ctrl-C to stop.", flush=True)
        while not signals.stop.is_set():
            signals.wait()
            if signals.reload.is_set() and not signals.stop.is_set():
                signals.reload.clear()
                reload_from(exporter, config_file)
        exporter.stop()
    log.info("stopped")
    return 0


def run_exporter(config: Config, listen_address: str | None, config_file: str | None = None) -> int:
    return serve(Exporter(config, listen_address), config_file=config_file)


def run_demo(listen_address: str | None, mqtt: MqttConfig | None = None) -> int:
    from pvmonit_exporter.demo.ports import Simulator

    with Simulator() as simulator:
        devices, probes = simulator.exporter_config()
        ble_devices, radio = _demo_bluetooth(simulator)
        # The simulated installation is a 24 V bank with a 600 W array: bars sized for it.
        web = WebConfig(battery_voltage_min=22.0, battery_voltage_max=30.0, pv_power_max=600.0, consumption_max=250.0)
        config = Config(devices=devices + ble_devices, probes=probes, web=web, mqtt=mqtt, source="<demo>")
        return serve(Exporter(config, listen_address, ble_scanner=radio), urls_banner=True)


def _demo_bluetooth(simulator: "Simulator") -> tuple[tuple[DeviceConfig, ...], "AdvertScanner | None"]:
    """A SmartShunt heard over simulated Bluetooth, when the [ble] extra is installed (it encrypts the adverts)."""
    try:
        from pvmonit_exporter.demo.ble import DEMO_SHUNT, SimulatedRadio
    except ImportError:
        log.info("demo: no simulated Bluetooth device (the [ble] extra is not installed)")
        return (), None
    return (DEMO_SHUNT.config(),), SimulatedRadio(simulator.model, [DEMO_SHUNT])
