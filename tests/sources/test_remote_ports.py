"""Remote ports (`socket://`, `rfc2217://`) for `read`, `hex` and the daemon, against real local TCP servers:
one serving a genuine recording, stopped and restarted on the same port; one bridging to a simulated device
(text and HEX) the way ser2net does; and an RFC 2217 server built on pyserial's own PortManager."""

import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import serial
import serial.rfc2217

from pvmonit_exporter.config import load_config
from pvmonit_exporter.demo.ports import Simulator
from tests.config import ROOT, assert_one_line_error, run_cli
from tests.daemon.test_exporter import Daemon, is_up, sample
from tests.helpers import port_holder, wait_for

pytestmark = pytest.mark.slow

RECORDING = (ROOT / "tests" / "data" / "captures" / "bluesolar_1.23.dump").read_bytes()


class RecordingServer:
    """Serves a recording, looped, to every client of 127.0.0.1:`port`, about 10x faster than a device."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._port_holder = port_holder()  # the port stays this server's while it is stopped (tests run in parallel)
        self.port: int = self._port_holder.getsockname()[1]
        self._listener: socket.socket | None = None
        self._clients: list[socket.socket] = []
        self._stop = threading.Event()
        self.connections = 0

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        self._stop.clear()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self, *, reset: bool = False) -> None:
        """Close the listener and drop every client: the TCP link is gone. With `reset`, each connection is
        reset (RST, as a bridge that reboots) instead of closed (FIN, end of file)."""
        self._stop.set()
        if self._listener is not None:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread: the port stops listening
            self._listener.close()
            self._listener = None
        for client in self._clients:
            if reset:  # linger on, for 0 s: close() sends RST
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        self._clients.clear()

    def close(self) -> None:
        """Stopped for good: the port is given back."""
        self.stop()
        self._port_holder.close()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self.connections += 1
            self._clients.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        position = 0
        while not self._stop.is_set():
            chunk = self.data[position : position + 2000]
            if not chunk:
                time.sleep(0.1)
                continue
            try:
                client.sendall(chunk)
            except OSError:
                return
            position = (position + len(chunk)) % len(self.data)
            time.sleep(0.1)


@pytest.fixture
def recording_server() -> Iterator[RecordingServer]:
    server = RecordingServer(RECORDING)
    server.start()
    yield server
    server.stop()
    server.close()


def test_read_over_socket(recording_server: RecordingServer) -> None:
    url = f"socket://127.0.0.1:{recording_server.port}"
    process = subprocess.Popen([sys.executable, "-m", "pvmonit_exporter", "read", url, "--json"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert all('"PID":"0xA042"' in line for line in lines)


def test_read_refused_and_malformed_urls() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens there once closed
    assert_one_line_error(run_cli("read", f"socket://127.0.0.1:{port}"),
                          f"socket://127.0.0.1:{port}: cannot connect")
    assert_one_line_error(run_cli("read", "socket://127.0.0.1"), "'socket://127.0.0.1' must be socket://HOST:PORT")
    assert_one_line_error(run_cli("hex", "rfc2217://host:99999", "ping"), "'rfc2217://host:99999' must be")


def test_config_accepts_remote_ports_and_refuses_malformed_ones(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("devices:\n  - {name: a, port: 'socket://192.168.1.20:3333'}\n"
                    "  - {name: b, port: 'rfc2217://bridge.local:4000'}\n", encoding="utf-8")
    assert [d.port for d in load_config(str(good)).devices] == ["socket://192.168.1.20:3333",
                                                                 "rfc2217://bridge.local:4000"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices:\n  - {name: a, port: 'socket://bridge.local'}\n", encoding="utf-8")
    assert_one_line_error(run_cli("check-config", "--config.file", str(bad)),
                          f"{bad}:2: devices[0].port: 'socket://bridge.local' must be socket://HOST:PORT")


def test_daemon_reconnects_when_the_tcp_link_drops(recording_server: RecordingServer, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"devices:\n  - name: remote\n    port: socket://127.0.0.1:{recording_server.port}\n"
                      "    stale_timeout: 2\n", encoding="utf-8")
    daemon = Daemon(config, tmp_path)
    try:
        wait_for(lambda: is_up(daemon.base, "remote"), timeout=30)
        recording_server.stop()  # the bridge goes away: the link drops, then connections are refused
        wait_for(lambda: sample(daemon.base, "vedirect_port_connected", device="remote") == 0.0, timeout=30)
        wait_for(lambda: not is_up(daemon.base, "remote"), timeout=30)
        blocks = sample(daemon.base, "vedirect_blocks_total", device="remote") or 0
        recording_server.start()  # same port
        wait_for(lambda: is_up(daemon.base, "remote"), timeout=60)
        wait_for(lambda: (sample(daemon.base, "vedirect_blocks_total", device="remote") or 0) > blocks, timeout=30)
        assert recording_server.connections >= 2
    finally:
        assert daemon.stop() == 0
    log = daemon.stderr_path.read_text()
    assert "Traceback" not in log
    assert "disconnected" in log


class PtySerial(serial.Serial):
    """A pseudo-terminal has no modem lines: the RFC 2217 server's questions about them get "off"."""

    @property
    def cts(self) -> bool:
        return False

    @property
    def dsr(self) -> bool:
        return False

    @property
    def ri(self) -> bool:
        return False

    @property
    def cd(self) -> bool:
        return False

    def _update_rts_state(self) -> None:
        pass

    def _update_dtr_state(self) -> None:
        pass


class _Writer:
    """What PortManager writes its option negotiation to: a socket with a `write`."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client

    def write(self, data: bytes) -> None:
        self.client.sendall(data)


class Bridge:
    """A TCP ↔ serial bridge like ser2net, in front of one of the simulator's ports: `socket://` sees the
    device, text and HEX answers alike. With `rfc2217`, the bridge speaks RFC 2217 (pyserial's PortManager).

    One client at a time, as ser2net serves a port: when a client goes, the bridge stops reading the device for
    it before it accepts the next one. (A reader left running for a client that had gone took the next
    client's first bytes — a HEX answer — and threw them away: `hex` timed out on the next connection.)"""

    def __init__(self, device_port: str, *, rfc2217: bool = False) -> None:
        self.serial = PtySerial(device_port, 19200, timeout=0.05)
        self.rfc2217 = rfc2217
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            client.settimeout(0.05)
            manager = (serial.rfc2217.PortManager(cast(Any, self.serial), cast(Any, _Writer(client)))
                       if self.rfc2217 else None)
            gone = threading.Event()
            to_client = threading.Thread(target=self._to_client, args=(client, manager, gone), daemon=True)
            to_client.start()
            self._to_device(client, manager)
            gone.set()
            to_client.join()
            client.close()

    def _to_client(self, client: socket.socket, manager: serial.rfc2217.PortManager | None,
                   gone: threading.Event) -> None:
        while not (self._stop.is_set() or gone.is_set()):
            data = self.serial.read(4096)
            try:
                if data:
                    client.sendall(b"".join(manager.escape(data)) if manager else data)
            except OSError:
                return

    def _to_device(self, client: socket.socket, manager: serial.rfc2217.PortManager | None) -> None:
        while not self._stop.is_set():
            try:
                data = client.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            self.serial.write(b"".join(manager.filter(data)) if manager else data)

    def close(self) -> None:
        self._stop.set()
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._thread.join(5)
        self.serial.close()


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    with Simulator(period=0.25, text_pause=0.5) as sim:
        yield sim


@pytest.mark.parametrize("scheme", ["socket", "rfc2217"])
def test_hex_over_a_remote_port(simulator: Simulator, scheme: str) -> None:
    bridge = Bridge(simulator.ports["mppt"], rfc2217=scheme == "rfc2217")
    try:
        url = f"{scheme}://127.0.0.1:{bridge.port}"
        ping = run_cli("hex", url, "ping")
        assert (ping.returncode, ping.stdout, ping.stderr) == (0, "1.59\n", "")
        history = run_cli("hex", url, "history", "--json")
        assert history.returncode == 0, history.stderr
        assert len(history.stdout.splitlines()) == 31
    finally:
        bridge.close()


def test_a_silent_remote_link_is_reconnected(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bridge that lost power leaves a half-open connection: no reset, no data. The reader reconnects."""
    from pvmonit_exporter.config import DeviceConfig
    from pvmonit_exporter.sources import serialport
    from pvmonit_exporter.state import State

    monkeypatch.setattr(serialport, "REMOTE_SILENCE_RECONNECT", 1.0)
    silent = RecordingServer(b"")  # accepts, then sends nothing
    silent.start()
    device = DeviceConfig("remote", f"socket://127.0.0.1:{silent.port}", stale_timeout=1)
    reader = serialport.SerialReader(device, State([device]), serialport.Discovery(serialport.PortClaims()))
    reader.start()
    try:
        wait_for(lambda: silent.connections >= 2, timeout=20)
    finally:
        reader.stop()
        silent.close()


class FrozenClock:
    """The state's clock, standing still: a block's age stays 0, so only the link can take the device down."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_tcp_link_that_ends_takes_the_device_down_at_once(recording_server: RecordingServer, how: str) -> None:
    """The bridge closes the connection (end of file) or resets it: the device is down while its last block is
    still well inside its stale timeout."""
    from pvmonit_exporter.config import DeviceConfig
    from pvmonit_exporter.sources import serialport
    from pvmonit_exporter.state import State

    device = DeviceConfig("remote", f"socket://127.0.0.1:{recording_server.port}", stale_timeout=60)
    state = State([device], clock=FrozenClock())
    reader = serialport.SerialReader(device, state, serialport.Discovery(serialport.PortClaims()))
    reader.start()
    try:
        wait_for(lambda: state.devices()[0].up, timeout=30)
        recording_server.stop(reset=how == "reset")
        view = wait_for(lambda: None if (v := state.devices()[0]).connected else v, timeout=30)
        assert view.age_seconds == 0.0  # its last block is as fresh as can be...
        assert not view.up  # ...but the link that carried it is gone
        assert view.fields == {}
    finally:
        reader.stop()


def test_hex_waits_longer_on_a_remote_port(tmp_path: Path) -> None:
    from pvmonit_exporter.config.schema import REMOTE_HEX_TIMEOUT, hex_timeout
    from pvmonit_exporter.vedirect.hex_session import DEFAULT_TIMEOUT

    assert REMOTE_HEX_TIMEOUT > DEFAULT_TIMEOUT
    assert [hex_timeout(port) for port in ("/dev/ttyUSB0", "auto", "socket://h:1", "rfc2217://h:1")] == [
        DEFAULT_TIMEOUT, DEFAULT_TIMEOUT, REMOTE_HEX_TIMEOUT, REMOTE_HEX_TIMEOUT]
    assert hex_timeout("socket://h:1", 7.5) == 7.5
    config = tmp_path / "config.yaml"
    config.write_text("devices:\n  - {name: far, port: 'socket://192.168.1.20:3333', hex_timeout: 7.5}\n"
                      "  - {name: near, port: /dev/ttyUSB0}\n", encoding="utf-8")
    assert [d.hex_timeout for d in load_config(str(config)).devices] == [7.5, None]
    config.write_text("devices:\n  - {name: far, port: 'socket://h:1', hex_timeout: 0}\n", encoding="utf-8")
    assert_one_line_error(run_cli("check-config", "--config.file", str(config)),
                          f"{config}:2: devices[0].hex_timeout: must be from 0.1 to 60 s, got 0")
