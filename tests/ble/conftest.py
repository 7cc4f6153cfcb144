"""Real D-Bus daemons for the Bluetooth tests: one without BlueZ, one whose policy drops every reply, and one
with the stand-in BlueZ (tests/ble/fake_bluez.py) on it."""

import select
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ble.fake_bluez import FakeBlueZ
from tests.helpers import require_tool

BUS_STARTUP_TIMEOUT = 10.0
BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">{policy}</policy>
</busconfig>
"""


def start_bus(tmp_path: Path, policy: str) -> Iterator[str]:
    daemon = require_tool("dbus-daemon")
    socket = tmp_path / "bus.sock"
    (tmp_path / "bus.conf").write_text(BUS_CONFIG.format(socket=socket, policy=policy), encoding="utf-8")
    # --print-address: one line once it listens. (The socket file appears at bind(), before listen(): a client
    # connecting in between was refused, on a loaded machine.)
    with subprocess.Popen([daemon, f"--config-file={tmp_path / 'bus.conf'}", "--nofork", "--print-address"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        try:
            assert process.stdout is not None
            readable, _, _ = select.select([process.stdout], [], [], BUS_STARTUP_TIMEOUT)
            address = process.stdout.readline() if readable else ""
            assert address.startswith(f"unix:path={socket},"), f"dbus-daemon did not start: {address!r}"
            yield f"unix:path={socket}"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)


@pytest.fixture
def bus_without_bluez(tmp_path: Path) -> Iterator[str]:
    """A real D-Bus daemon on which nothing provides org.bluez: a machine where bluetoothd is not running."""
    yield from start_bus(tmp_path, '<allow send_destination="*"/><allow receive_sender="*"/><allow own="*"/>')


@pytest.fixture
def bus_dropping_replies(tmp_path: Path) -> Iterator[str]:
    """A real D-Bus daemon whose policy lets requests out but no answer back: a D-Bus that refuses the service."""
    yield from start_bus(tmp_path, '<allow send_destination="*"/><allow own="*"/>')


@pytest.fixture
def bluez(bus_without_bluez: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBlueZ]:
    """BlueZ with one powered adapter, on a real D-Bus; DBUS_SYSTEM_BUS_ADDRESS points at it while it runs."""
    yield from _bluez(bus_without_bluez, monkeypatch)


def _bluez(address: str, monkeypatch: pytest.MonkeyPatch, **adapter: bool) -> Iterator[FakeBlueZ]:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
    fake = FakeBlueZ(address, **adapter)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def bluez_without_adapter(bus_without_bluez: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBlueZ]:
    yield from _bluez(bus_without_bluez, monkeypatch, adapter=False)


@pytest.fixture
def bluez_powered_off(bus_without_bluez: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBlueZ]:
    yield from _bluez(bus_without_bluez, monkeypatch, powered=False)
