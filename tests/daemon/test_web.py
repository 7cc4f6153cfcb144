"""The HTTP server in-process: idle keep-alive clients are let go, clients that vanish leave no traceback."""

import socket
import struct
from collections.abc import Iterator

import pytest
from prometheus_client.registry import CollectorRegistry

from pvmonit_exporter.config import DeviceConfig, WebConfig
from pvmonit_exporter.state import State
from pvmonit_exporter.web import server
from pvmonit_exporter.web.server import WebApp, WebServer
from tests.helpers import wait_for


@pytest.fixture
def web(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebServer]:
    monkeypatch.setattr(server._Handler, "timeout", 0.5)
    state = State([DeviceConfig("mppt", "/dev/ttyUSB0")])
    running = WebServer("127.0.0.1", 0, WebApp(CollectorRegistry(), state, WebConfig()))
    running.start()
    yield running
    running.stop()


def test_an_idle_keep_alive_connection_is_closed(web: WebServer) -> None:
    with socket.create_connection(("127.0.0.1", web.port)) as client:
        client.settimeout(10)
        assert client.recv(1) == b""  # the server hung up on a client that never spoke


def test_a_client_that_resets_leaves_no_traceback(web: WebServer, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(5):
        client = socket.create_connection(("127.0.0.1", web.port))
        client.sendall(b"GET /api/state HTTP/1.1\r\nHost: x\r\n\r\n")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
        client.close()
    with socket.create_connection(("127.0.0.1", web.port)) as client:  # still serving
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert wait_for(lambda: client.recv(4096)).startswith(b"HTTP/1.1 200")
    assert "Traceback" not in capsys.readouterr().err


def test_the_server_does_time_out_idle_clients() -> None:
    """The fixture shortens the timeout; the shipped one must exist (the standard library's default is none)."""
    assert server._Handler.timeout is not None
    assert 0 < server._Handler.timeout <= 60
