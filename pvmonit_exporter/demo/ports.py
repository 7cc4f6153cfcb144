"""The demo's ports: pseudo-terminals fed by a writer thread, a temperature file for a `file`
probe and a current clamp on its own pseudo-terminal (PvMonit's thermometer and clamp).
"""

import errno
import fcntl
import logging
import os
import select
import shutil
import struct
import tempfile
import termios
import threading
import time
import tty
import zlib
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from pvmonit_exporter.config import DeviceConfig, ProbeConfig
from pvmonit_exporter.demo.day import (
    CLAMP_CEILING_WATTS,
    CLAMP_NAME,
    CLAMP_VOLTAGE,
    DEFAULT_DAY_SECONDS,
    DEFAULT_PERIOD,
    DEFAULT_START_HOUR,
    DEFAULT_TEXT_PAUSE,
    PROBE_INTERVAL,
    PROBE_NAME,
    clamp_line,
)
from pvmonit_exporter.demo.devices import SimulatedDevice, demo_devices, model_for

log = logging.getLogger(__name__)


_BACKLOG_LIMIT = 2048


class SimulatedPort:
    """A pseudo-terminal standing in for one VE.Direct USB cable.

    The slave is put into raw mode at once (the default line discipline would turn CR into LF before the
    exporter opens the port) and kept open by us, so the master never sees EIO when a reader closes. The
    master is non-blocking: like a real device, a writer never waits; a frame is dropped whole when nobody
    reads, so a reader always finds whole frames. With `link`, a symlink (like
    /dev/serial/by-id/…) follows the device across `unplug()` / `replug()`.
    """

    def __init__(self, link: str | Path | None = None) -> None:
        self.link = Path(link) if link is not None else None
        self.path = ""  # the slave's /dev/pts/N; "" while unplugged
        self.frames_dropped = 0
        self._lock = threading.Lock()
        self._master = self._slave = -1
        self.replug()

    @property
    def plugged(self) -> bool:
        return self._master >= 0

    def write(self, frame: bytes) -> bool:
        """Send one frame; False when it was dropped (nobody reads, or unplugged)."""
        with self._lock:
            if not self.plugged:
                return False
            if self._backlog() <= _BACKLOG_LIMIT and self._send(frame):
                return True
            self.frames_dropped += 1
            return False

    def fileno(self) -> int:
        """The master's descriptor, for select(); -1 while unplugged."""
        return self._master

    def read(self) -> bytes:
        """What the reader wrote to the device (HEX requests), without waiting; b"" when nothing."""
        with self._lock:
            if not self.plugged:
                return b""
            try:
                return os.read(self._master, 4096)
            except (BlockingIOError, OSError):
                return b""

    def unplug(self) -> None:
        """Close the PTY (a reader's next read fails) and remove the symlink."""
        with self._lock:
            self._close()

    def replug(self) -> None:
        """A new PTY, the symlink pointing at it (unplugging first if needed)."""
        with self._lock:
            self._close()
            master, slave = os.openpty()
            try:
                tty.setraw(slave)
                fcntl.fcntl(master, fcntl.F_SETFL, fcntl.fcntl(master, fcntl.F_GETFL) | os.O_NONBLOCK)
                path = os.ttyname(slave)
                if self.link is not None:
                    _point_link(self.link, path)
            except BaseException:
                os.close(master)
                os.close(slave)
                raise
            self._master, self._slave, self.path = master, slave, path

    def _send(self, frame: bytes) -> bool:
        """Write the whole frame or nothing. When the tty is full, what it holds is flushed with the fragment
        just written: bytes nobody read are lost, as on a real cable, but no reader ever gets a cut frame."""
        try:
            written = os.write(self._master, frame)
        except BlockingIOError:
            written = 0
        if written < len(frame):
            termios.tcflush(self._slave, termios.TCIFLUSH)
            return False
        return True

    def _backlog(self) -> int:
        """Bytes written but not yet read, as queued on the slave."""
        count: int = struct.unpack("i", fcntl.ioctl(self._slave, termios.FIONREAD, b"\0" * 4))[0]
        return count

    def _close(self) -> None:
        if self.plugged:
            os.close(self._master)
            os.close(self._slave)
            self._master = self._slave = -1
            self.path = ""
        if self.link is not None:
            self.link.unlink(missing_ok=True)


def _point_link(link: Path, target: str) -> None:
    """Create or re-point `link` atomically: a reader never sees it missing or half made."""
    link.parent.mkdir(parents=True, exist_ok=True)
    temporary = link.with_name(link.name + ".new")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    temporary.replace(link)


def _cable_serial(name: str) -> str:
    """A stable, cable-like serial (`VE` + 6 characters) so each device gets its own by-id name."""
    digits = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    value = zlib.crc32(name.encode())
    return "VE" + "".join(digits[value // len(digits) ** i % len(digits)] for i in range(6))


class Simulator:
    """The simulated installation: the model, its devices on PTYs, a writer thread, a temperature file and a
    current clamp.

    Every `period` the thread advances the model by `period` and writes each device's frame, the shed
    temperature (the model's battery temperature, `21.37\\n`) and a clamp line on the clamp's own PTY (the
    house's consumption, `00.43A`). `stop()` joins the thread and closes every file descriptor; use it as a
    context manager.
    """

    def __init__(
        self,
        devices: Sequence[SimulatedDevice] | None = None,
        *,
        seed: int = 0,
        day_seconds: float = DEFAULT_DAY_SECONDS,
        start_hour: float = DEFAULT_START_HOUR,
        period: float = DEFAULT_PERIOD,
        link_dir: str | Path | None = None,
        probe_dir: str | Path | None = None,
        text_pause: float = DEFAULT_TEXT_PAUSE,
    ) -> None:
        """`link_dir`: make a by-id-like symlink per device there; `probe_dir`: where the temperature file
        goes (default: a temporary directory, removed by `stop()`); `text_pause`: how long a device keeps
        its text blocks back after a HEX request, as real ones do."""
        if period <= 0:
            raise ValueError("period must be positive")
        self.devices = tuple(demo_devices() if devices is None else devices)
        self.model = model_for(self.devices, seed=seed, day_seconds=day_seconds, start_hour=start_hour)
        self.period = period
        self._link_dir = Path(link_dir) if link_dir is not None else None
        self._probe_dir = Path(probe_dir) if probe_dir is not None else None
        self._own_probe_dir: Path | None = None
        self._ports: dict[str, SimulatedPort] = {}
        self._clamp: SimulatedPort | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False  # the last period's write failed (logged once)
        self.text_pause = text_pause
        self._requests: dict[str, bytearray] = {}  # partial HEX requests per device
        self._quiet_until: dict[str, float] = {}  # monotonic time before which a device sends no text

    @property
    def ports(self) -> dict[str, str]:
        """Device name → the path to configure: the symlink when there is one, else the tty."""
        return {name: str(port.link or port.path) for name, port in self._ports.items()}

    def port(self, name: str) -> SimulatedPort:
        return self._ports[name]

    @property
    def clamp_path(self) -> str:
        """The clamp meter's serial port."""
        if self._clamp is None:
            raise RuntimeError("the simulator is not started")
        return self._clamp.path

    @property
    def probe_path(self) -> Path:
        directory = self._probe_dir or self._own_probe_dir
        if directory is None:
            raise RuntimeError("the simulator is not started")
        return directory / PROBE_NAME

    def exporter_config(self) -> tuple[tuple[DeviceConfig, ...], tuple[ProbeConfig, ...]]:
        """The devices and the probes that read this simulator, for the demo's configuration: configured as a
        PvMonit user migrates them (inputs `temp` and `conso`, the clamp in watts with PvMonit's ceiling)."""
        devices = tuple(DeviceConfig(name=name, port=path) for name, path in self.ports.items())
        thermometer = ProbeConfig(
            name=PROBE_NAME, type="file", quantity="temperature", interval=PROBE_INTERVAL, path=str(self.probe_path),
            emoncms_input="temp",
        )
        clamp = ProbeConfig(
            name=CLAMP_NAME, type="serial", quantity="current", interval=PROBE_INTERVAL, port=self.clamp_path,
            power_voltage=CLAMP_VOLTAGE, power_max=CLAMP_CEILING_WATTS, emoncms_input="conso",
        )
        return devices, (thermometer, clamp)

    def start(self) -> None:
        """Open the ports, write the first frames and the temperature file, then start the thread."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already started")
        try:
            if self._probe_dir is None:
                self._own_probe_dir = Path(tempfile.mkdtemp(prefix="pvmonit-simulator-"))
            for device in self.devices:
                link = None
                if self._link_dir is not None:
                    by_id = f"usb-VictronEnergy_BV_VE_Direct_cable_{_cable_serial(device.name)}-if00-port0"
                    link = self._link_dir / by_id
                self._ports[device.name] = SimulatedPort(link)
            self._clamp = SimulatedPort()
            self._emit()
        except BaseException:
            self._release()
            raise
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pvmonit-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, close every PTY, remove the symlinks and the temperature file."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._release()

    def __enter__(self) -> "Simulator":
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        deadline = time.monotonic()
        while True:
            deadline += self.period
            if self._serve_until(deadline):
                return
            now = time.monotonic()
            if now - deadline > self.period:  # fell behind (machine suspended, overloaded): do not burst
                deadline = now
            self.model.step(self.period)
            try:
                self._emit()
            except Exception as exc:  # noqa: BLE001 - the writer outlives a failed write (a vanished or full /tmp)
                if not self._failing:
                    log.error("simulator: cannot write (%s); trying again every period", exc)  # noqa: TRY400 - one line
                self._failing = True
            else:
                if self._failing:
                    log.info("simulator: writing again")
                self._failing = False

    def _serve_until(self, deadline: float) -> bool:
        """Answer HEX requests as they come until `deadline`; True when asked to stop."""
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            ports = [port for port in self._ports.values() if port.plugged]
            try:
                # A short timeout: stop() and a port unplugged meanwhile are noticed quickly.
                readable, _, _ = select.select(ports, [], [], min(remaining, 0.05))
            except (OSError, ValueError) as exc:
                if isinstance(exc, OSError) and exc.errno != errno.EBADF:
                    raise
                continue  # a port was unplugged after it was listed (closed: EBADF, or its fileno is -1)
            for device in self.devices:
                if self._ports[device.name] in readable:
                    self._answer(device, self._ports[device.name].read())
        return True

    def _answer(self, device: SimulatedDevice, data: bytes) -> None:
        pending = self._requests.setdefault(device.name, bytearray())
        pending += data
        while (end := pending.find(b"\n")) >= 0:
            line, pending[:] = bytes(pending[:end]), pending[end + 1 :]
            start = line.rfind(b":")
            if start < 0:
                continue
            reply = device.answer(line[start + 1 :].strip(), self.model)
            if reply is not None:
                self._quiet_until[device.name] = time.monotonic() + self.text_pause
                self._ports[device.name].write(reply)
        del pending[:-64]  # a request is a few bytes: never keep more than a line's worth of noise

    def _emit(self) -> None:
        now = time.monotonic()
        for device in self.devices:
            if self._quiet_until.get(device.name, 0.0) > now:
                continue  # in HEX mode: no text until the requests stop
            self._ports[device.name].write(device.frame(self.model))
        if self._clamp is not None:
            self._clamp.write(clamp_line(self.model))
        path = self.probe_path
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(f"{self.model.temperature:.2f}\n", encoding="ascii")
        temporary.replace(path)  # a probe never reads a half-written file

    def _release(self) -> None:
        for port in self._ports.values():
            port.unplug()
        self._ports.clear()
        if self._clamp is not None:
            self._clamp.unplug()
            self._clamp = None
        if self._own_probe_dir is not None:
            shutil.rmtree(self._own_probe_dir, ignore_errors=True)
            self._own_probe_dir = None
        elif self._probe_dir is not None:
            self.probe_path.unlink(missing_ok=True)
