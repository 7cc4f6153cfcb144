"""A real broker for the tests: Debian's mosquitto started on a free port of 127.0.0.1 with a generated
configuration (anonymous, a password file made with mosquitto_passwd, or TLS with a CA the test makes with
openssl), and a real paho client that records what the broker delivers."""

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.helpers import port_holder, require_tool, wait_for

MOSQUITTO = "/usr/sbin/mosquitto"


def require_mosquitto() -> str:
    """mosquitto's path; absent → fails under CI=true (.ci/run installs it), skipped elsewhere."""
    if os.path.exists(MOSQUITTO):
        return MOSQUITTO
    return require_tool("mosquitto")


@dataclass
class Tls:
    ca_file: Path
    certfile: Path
    keyfile: Path


def make_ca(directory: Path) -> Tls:
    """A CA and a server certificate for 127.0.0.1, made with openssl."""
    openssl = require_tool("openssl")
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_cert), "-days", "2",
        "-subj", "/CN=pvmonit test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n", encoding="utf-8")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial", "-out",
        str(cert), "-days", "2", "-extfile", str(extensions))
    return Tls(ca_cert, cert, key)


@dataclass
class Broker:
    """mosquitto on `port`; `stop()` and `start()` again keep the port (a broker restart)."""

    workdir: Path
    # Held, never listening, for the broker's lifetime: the kernel's port 0 never hands it to another test while
    # the broker is down between stop() and start(), and mosquitto binds beside it (SO_REUSEADDR).
    holder: socket.socket = field(default_factory=port_holder, repr=False)
    port: int = 0
    users: dict[str, str] = field(default_factory=dict)
    tls: Tls | None = None
    acl: str | None = None  # mosquitto's acl_file text
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = self.port or self.holder.getsockname()[1]

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def _configure(self) -> Path:
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest stderr", "log_type all"]
        if os.geteuid() == 0:  # started as root, mosquitto would become `mosquitto`, who cannot read tmp_path
            lines.append("user root")
        if self.users:
            passwords = self.workdir / "passwd"
            passwords.write_text("", encoding="utf-8")
            for user, password in self.users.items():
                subprocess.run([shutil.which("mosquitto_passwd") or "mosquitto_passwd", "-b", str(passwords), user,
                                password], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if self.acl is not None:
            acl = self.workdir / "acl"
            acl.write_text(self.acl, encoding="utf-8")
            lines.append(f"acl_file {acl}")
        if self.tls is not None:
            lines += [f"cafile {self.tls.ca_file}", f"certfile {self.tls.certfile}", f"keyfile {self.tls.keyfile}"]
        path = self.workdir / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def start(self) -> None:
        config = self._configure()
        log = (self.workdir / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([require_mosquitto(), "-c", str(config)], stdout=log, stderr=log)
        log.close()
        wait_for(lambda: self._listening() or self._exited(), timeout=10)
        assert self.process.poll() is None, self.log()

    def _exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def _listening(self) -> bool:
        return f"Opening ipv4 listen socket on port {self.port}" in self.log() and self._accepts()

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def log(self) -> str:
        path = self.workdir / "mosquitto.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


@dataclass
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class Listener:
    """A real MQTT client subscribed to `topics`, keeping every message it receives (retained ones included)."""

    def __init__(self, broker: Broker, topics: tuple[str, ...] = ("#",), username: str | None = None,
                 password: str | None = None) -> None:
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"test-listener-{time.monotonic_ns()}")
        if username:
            self.client.username_pw_set(username, password)
        if broker.tls is not None:
            self.client.tls_set(ca_certs=str(broker.tls.ca_file))
        self.client.on_message = self._message
        self.client.on_connect = lambda client, *_: self._subscribe(client, topics)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        wait_for(self.client.is_connected, timeout=10)

    @staticmethod
    def _subscribe(client: paho.Client, topics: tuple[str, ...]) -> None:
        for topic in topics:
            client.subscribe(topic, 1)

    def _message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Message(message.topic, bytes(message.payload), message.qos, message.retain))

    def on(self, topic: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if paho.topic_matches_sub(topic, m.topic)]

    def last(self, topic: str) -> Message | None:
        found = self.on(topic)
        return found[-1] if found else None

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def publish(self, topic: str, payload: str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(broker: Broker, topic: str, **credentials: str) -> Message | None:
    """The message the broker keeps on `topic` (what a client that subscribes now receives first), or None."""
    marker = f"test-marker/{time.monotonic_ns()}"
    listener = Listener(broker, (topic, marker), **credentials)
    try:
        # The broker handles one client's packets in order: once a marker published after both subscriptions
        # comes back, every retained message of `topic` has arrived. Published again until then, as the first
        # may go out before the subscriptions.
        def marker_back() -> bool:
            listener.publish(marker, "")
            return bool(listener.on(marker))

        wait_for(marker_back, interval=0.1)
        found = [m for m in listener.on(topic) if m.retain]
        return found[-1] if found else None
    finally:
        listener.close()


@pytest.fixture
def broker(tmp_path: Path):
    started = Broker(tmp_path)
    started.start()
    yield started
    started.stop()
