"""The real daemon (`pvmonit-exporter run` and `demo --mqtt`) against a real mosquitto: the will on kill -9, a
device unplugged and plugged again, a broker stopped and started, emoncms rows over MQTT from the disk queue."""

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pvmonit_exporter.forwarder.queue import DiskQueue
from pvmonit_exporter.forwarder.snapshot import Row
from pvmonit_exporter.vedirect.framing import encode_block
from tests.daemon.test_exporter import sample
from tests.daemon.test_lifecycle import PYTHON, Daemon
from tests.helpers import FakeDevicePort, wait_for
from tests.mqtt.broker import Broker, Listener, retained
from tests.vedirect_samples import INVERTER, MPPT
from tests.web.conftest import Browser, start_exporter

pytestmark = pytest.mark.slow

# The figure: a broker away this long, then back (the backoff is capped at 30 s).
BROKER_DOWN_SECONDS = 60


class Cable:
    """A pseudo-terminal behind a by-id style link, fed `block` (an MPPT's) every 0.2 s while plugged."""

    def __init__(self, link: Path, block: dict[str, str] = MPPT) -> None:
        self.port = FakeDevicePort(link)
        os.set_blocking(self.port.master, False)  # nobody reading (the device left the configuration): no wait
        self.block = block
        self.plugged = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        while not self._stop.wait(0.2):
            if self.plugged:
                with contextlib.suppress(OSError):
                    self.port.write(encode_block(self.block))

    def unplug(self) -> None:
        self.plugged = False
        self.port.unplug()

    def replug(self) -> None:
        self.port.replug()
        os.set_blocking(self.port.master, False)
        self.plugged = True

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.port.close()


@pytest.fixture
def cable(tmp_path: Path) -> Iterator[Cable]:
    made = Cable(tmp_path / "usb-VictronEnergy_cable")
    yield made
    made.close()


def write_config(tmp_path: Path, broker: Broker, devices: list[dict[str, object]], **extra: object) -> Path:
    config = {"devices": devices, "mqtt": {"url": broker.url, "client_id": "daemon-test", "interval": 1,
                                           "keepalive": 5}, **extra}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_unplugged_plugged_broker_restart_and_kill_9(tmp_path: Path, broker: Broker, cable: Cable,
                                                      daemons: list[Daemon]) -> None:
    listener = Listener(broker)
    config = write_config(tmp_path, broker, [{"name": "mppt", "port": str(cable.port.link), "stale_timeout": 2}])
    daemon = Daemon(config, tmp_path)
    daemons.append(daemon)
    wait_for(lambda: listener.last("homeassistant/device/pvmonit_hq1328y6tf6/config"), timeout=30)
    wait_for(lambda: listener.last("pvmonit/mppt/state"), timeout=30)
    assert listener.last("pvmonit/mppt/availability").payload == b"online"  # type: ignore[union-attr]
    assert sample(daemon.base, "pvmonit_mqtt_connected") == 1.0
    assert daemon.state()["mqtt"]["connected"] is True

    # unplugged: offline within its stale timeout; plugged again: online, then its state
    cable.unplug()
    wait_for(lambda: listener.last("pvmonit/mppt/availability").payload == b"offline", timeout=15)  # type: ignore[union-attr]
    listener.clear()
    cable.replug()
    wait_for(lambda: listener.last("pvmonit/mppt/availability"), timeout=30)
    assert listener.last("pvmonit/mppt/availability").payload == b"online"  # type: ignore[union-attr]
    wait_for(lambda: listener.last("pvmonit/mppt/state"), timeout=10)

    # the broker away: the serial device goes on being read, live values are dropped, then all comes back
    listener.close()
    broker.stop()
    blocks_before = daemon.state()["devices"][0]["counters"]["blocks"]
    time.sleep(BROKER_DOWN_SECONDS)
    during = daemon.state()
    assert during["devices"][0]["up"] is True
    assert during["devices"][0]["counters"]["blocks"] > blocks_before
    assert during["mqtt"]["connected"] is False
    assert during["mqtt"]["messages_dropped"] > 0
    assert (sample(daemon.base, "pvmonit_mqtt_messages_dropped_total") or 0) > 0
    broker.start()
    listener = Listener(broker)
    wait_for(lambda: sample(daemon.base, "pvmonit_mqtt_connected") == 1.0, timeout=40)
    wait_for(lambda: retained(broker, "homeassistant/device/pvmonit_hq1328y6tf6/config"), timeout=10)
    wait_for(lambda: retained(broker, "pvmonit/mppt/availability"), timeout=10)
    # a log line per change of state, not one per retry: lost, then the first failed attempt, then connected again
    assert daemon.log().count("MQTT: connection to") == 1
    assert daemon.log().count("MQTT: cannot connect to") == 1
    assert daemon.log().count("MQTT: connected to") == 2
    assert "Traceback" not in daemon.log()

    # kill -9: the broker publishes the will
    assert retained(broker, "pvmonit/status").payload == b"online"  # type: ignore[union-attr]
    daemon.process.kill()
    daemon.process.wait()
    wait_for(lambda: (kept := retained(broker, "pvmonit/status")) is not None and kept.payload == b"offline",
             timeout=15)
    listener.close()


def test_a_device_removed_by_a_reload_is_removed_from_home_assistant(tmp_path: Path, broker: Broker, cable: Cable,
                                                                    daemons: list[Daemon]) -> None:
    inverter = Cable(tmp_path / "usb-VictronEnergy_inverter", INVERTER)
    try:
        devices: list[dict[str, object]] = [{"name": "mppt", "port": str(cable.port.link), "stale_timeout": 2},
                                            {"name": "inverter", "port": str(inverter.port.link), "stale_timeout": 2}]
        config = write_config(tmp_path, broker, devices)
        daemon = Daemon(config, tmp_path)
        daemons.append(daemon)
        for found in ("pvmonit_hq1328y6tf6", "pvmonit_hq1234abcde"):
            wait_for(lambda f=found: retained(broker, f"homeassistant/device/{f}/config"), timeout=30)  # type: ignore[misc]
        write_config(tmp_path, broker, devices[:1])
        daemon.process.send_signal(signal.SIGHUP)
        wait_for(lambda: retained(broker, "homeassistant/device/pvmonit_hq1234abcde/config") is None, timeout=30)
        assert retained(broker, "homeassistant/device/pvmonit_hq1328y6tf6/config") is not None
        assert "configuration reloaded" in daemon.log()
    finally:
        inverter.close()


def test_demo_publishes_its_devices_and_the_page_shows_the_broker(tmp_path: Path, broker: Broker,
                                                                  browser: Browser) -> None:
    listener = Listener(broker)
    demo = start_exporter(["demo", "--mqtt", broker.url], tmp_path / "demo.log")
    try:
        def announced() -> set[str]:
            return {m.json()["dev"]["name"] for m in listener.on("homeassistant/device/+/config") if m.payload}

        wait_for(lambda: {"bmv", "mppt", "inverter"} <= announced(), timeout=60)
        assert demo.api_state()["mqtt"]["connected"] is True
        wait_for(lambda: listener.last("pvmonit-demo/bmv/state"), timeout=20)
        driver = browser()
        driver.get(demo.url)

        def box() -> str | None:
            text: str | None = driver.execute_script(
                "const b = document.getElementById('mqtt'); return b.hidden ? null : b.textContent;")
            return text

        shown = wait_for(lambda: "Connected" in (box() or ""), timeout=30)
        assert shown
        assert broker.url in (box() or "")
        broker.stop()
        wait_for(lambda: "Away" in (box() or ""), timeout=30)
    finally:
        assert demo.stop() == 0
        listener.close()


ROWS = 1000


def emoncms_config(tmp_path: Path, broker: Broker, batch_size: int = 500) -> Path:
    probe = tmp_path / "temperature"
    probe.write_text("21.5\n", encoding="utf-8")
    return write_config(tmp_path, broker, [], probes=[{"name": "t", "type": "file", "quantity": "temperature",
                                                       "path": str(probe)}],
                        emoncms={"via": "mqtt", "queue_dir": str(tmp_path / "queue"), "interval": 86400,
                                 "batch_size": batch_size})


def queue_rows(tmp_path: Path) -> list[Row]:
    rows = [Row(1_800_000_000 + 10 * i, "mppt", {"V": 12.5 + i / 1000, "PPV": i}) for i in range(ROWS)]
    queue = DiskQueue(tmp_path / "queue", 500_000)
    queue.append(rows)
    queue.close()
    return rows


def received_times(listener: Listener) -> list[int]:
    return [m.json()["time"] for m in listener.on("emon/mppt")]


def test_1000_rows_queued_while_the_broker_is_down_arrive_once_in_order(tmp_path: Path, broker: Broker,
                                                                       daemons: list[Daemon]) -> None:
    rows = queue_rows(tmp_path)
    config = emoncms_config(tmp_path, broker)
    broker.stop()
    daemon = Daemon(config, tmp_path)
    daemons.append(daemon)
    wait_for(lambda: (sample(daemon.base, "pvmonit_emoncms_errors_total", kind="connection") or 0) > 0, timeout=30)
    assert sample(daemon.base, "pvmonit_emoncms_queue_rows") == ROWS  # kept, as with emoncms down
    broker.start()
    listener = Listener(broker, ("emon/#",))
    wait_for(lambda: sample(daemon.base, "pvmonit_emoncms_queue_rows") == 0, timeout=60)
    wait_for(lambda: len(received_times(listener)) >= ROWS, timeout=10)
    first = listener.on("emon/mppt")[0]
    assert first.qos == 1
    assert first.json() == {"V": 12.5, "PPV": 0, "time": rows[0].time}
    assert received_times(listener) == [row.time for row in rows]  # each once, in order, each its own time
    assert sample(daemon.base, "pvmonit_emoncms_rows_sent_total") == ROWS
    listener.close()


def test_kill_9_during_the_drain_loses_no_row(tmp_path: Path, broker: Broker, daemons: list[Daemon]) -> None:
    rows = queue_rows(tmp_path)
    config = emoncms_config(tmp_path, broker, batch_size=20)
    listener = Listener(broker, ("emon/#",))
    daemon = Daemon(config, tmp_path)
    daemons.append(daemon)
    wait_for(lambda: len(received_times(listener)) >= 100, timeout=60)
    daemon.process.kill()
    daemon.process.wait()
    second = Daemon(config, tmp_path)
    daemons.append(second)
    wait_for(lambda: sample(second.base, "pvmonit_emoncms_queue_rows") == 0, timeout=60)
    # acknowledged by the broker (the queue is empty), then delivered to the listener: at least once, none lost
    wait_for(lambda: set(received_times(listener)) >= {row.time for row in rows})
    assert set(received_times(listener)) == {row.time for row in rows}
    listener.close()


def test_queue_flush_sends_over_mqtt(tmp_path: Path, broker: Broker) -> None:
    rows = queue_rows(tmp_path)
    config = emoncms_config(tmp_path, broker)
    listener = Listener(broker, ("emon/#",))
    result = subprocess.run([PYTHON, "-m", "pvmonit_exporter", "queue", "--flush", "--config.file", str(config)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert f"sent: {ROWS} rows to {broker.url}/emon" in result.stdout
    assert "rows queued: 0" in result.stdout
    wait_for(lambda: len(received_times(listener)) >= ROWS)
    assert received_times(listener) == [row.time for row in rows]
    listener.close()
