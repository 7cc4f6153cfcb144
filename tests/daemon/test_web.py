"""The HTTP server in-process on real sockets: idle and slow clients, hostile paths, the library's /metrics
features, IPv6, and the connection cap."""

import gzip
import json
import logging
import math
import socket
import struct
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import Gauge
from prometheus_client.registry import CollectorRegistry
from waitress.channel import HTTPChannel
from waitress.wasyncore import loop as connection_loop

from pvmonit_exporter.config import DeviceConfig, WebConfig
from pvmonit_exporter.state import State
from pvmonit_exporter.web import server
from pvmonit_exporter.web.server import WebApp, WebServer, bind_address, connection_limit, json_safe
from tests.helpers import wait_for


def registry_with_two_gauges() -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("first_metric", "one", registry=registry).set(1)
    Gauge("second_metric", "two", registry=registry).set(2)
    return registry


def start(host: str = "127.0.0.1") -> WebServer:
    state = State([DeviceConfig("mppt", "/dev/ttyUSB0")])
    running = WebServer(host, 0, WebApp(registry_with_two_gauges(), state, WebConfig()))
    running.start()
    return running


@pytest.fixture
def web(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebServer]:
    monkeypatch.setattr(server, "IDLE_TIMEOUT_SECONDS", 1)
    monkeypatch.setattr(server, "CLEANUP_SECONDS", 1)
    running = start()
    yield running
    running.stop()


def request(web: WebServer, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    url = f"http://127.0.0.1:{web.port}{path}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def raw_request(port: int, head: bytes, family: socket.AddressFamily = socket.AF_INET) -> bytes:
    """Send `head` as is (no client library tidying the path) and read the whole answer."""
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.create_connection((host, port), timeout=10) as client:
        client.sendall(head)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    return answer


def test_an_idle_keep_alive_connection_is_closed(web: WebServer) -> None:
    with socket.create_connection(("127.0.0.1", web.port)) as client:
        client.settimeout(30)
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


HOSTILE_PATHS = [
    "/static/" + "a" * 256,  # longer than a file name may be: the old server wrote a traceback, no answer
    "/static/" + "a" * 5000,
    "/static/..%2f..%2fconfig.py",
    "/static/%2e%2e/%2e%2e/etc/passwd",
    "/static/%00",
    "/static/app.js%00.png",
    "/static/.hidden",
    "/static//etc/passwd",
    "/static/%ff%fe",
    "/static/" + "%C3%A9" * 100,
    "//metrics/../../etc/passwd",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_paths_get_a_clean_answer_and_no_traceback(web: WebServer, path: str,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answer = raw_request(web.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    status = int(answer.split(b" ", 2)[1])
    assert status in (400, 404)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_garbage_request_lines_get_a_clean_error(web: WebServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # Connection: close, or each answer would end only when the idle connection is closed (a second or two).
    for head in (b"\x00\x01\x02 / HTTP/1.1\r\nConnection: close\r\n\r\n",
                 b"GET /static/\x1b[31m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                 b"GET /" + b"%" * 10_000 + b" HTTP/1.1\r\nConnection: close\r\n\r\n"):
        assert raw_request(web.port, head).split(b" ", 2)[1] in (b"400", b"404", b"431")
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_static_files_and_the_page_are_served(web: WebServer) -> None:
    status, headers, body = request(web, "/")
    assert (status, headers["Content-Type"]) == (200, "text/html; charset=utf-8")
    assert body.startswith(b"<!doctype html>")
    for name in server._static_files():
        status, headers, _ = request(web, f"/static/{name}")
        assert status == 200
        assert headers["X-Content-Type-Options"] == "nosniff"
        # Every file the folder holds has its type in the table: a new kind of file must be added there.
        assert headers["Content-Type"] == server.CONTENT_TYPES[Path(name).suffix]
    assert request(web, "/static/")[0] == 404


def test_only_get_and_head(web: WebServer) -> None:
    answer = raw_request(web.port, b"POST /api/state HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                   b"Connection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 405")
    head = raw_request(web.port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert head.endswith(b"\r\n\r\n")  # headers only


def test_metrics_come_from_the_library_with_gzip_openmetrics_and_name_filter(web: WebServer) -> None:
    status, headers, body = request(web, "/metrics", {"Accept-Encoding": "gzip"})
    assert (status, headers["Content-Encoding"]) == (200, "gzip")
    assert b"first_metric 1.0" in gzip.decompress(body)
    _, headers, body = request(web, "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    _, _, body = request(web, "/metrics?name[]=second_metric")
    assert b"second_metric 2.0" in body
    assert b"first_metric" not in body


def test_api_state_is_valid_json_and_not_cached(web: WebServer) -> None:
    status, headers, body = request(web, "/api/state")
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert json.loads(body)["devices"][0]["name"] == "mppt"


def test_json_safe_replaces_non_finite_numbers() -> None:
    document = {"a": math.inf, "b": [-math.inf, math.nan, 1.5], "c": {"d": (math.inf,)}, "e": "x"}
    assert json_safe(document) == {"a": "inf", "b": ["-inf", None, 1.5], "c": {"d": ["inf"]}, "e": "x"}


def test_ipv6_loopback_is_served() -> None:
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6")
    running = start("::1")
    try:
        answer = raw_request(running.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                             socket.AF_INET6)
        assert answer.startswith(b"HTTP/1.1 200")
    finally:
        running.stop()


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("", (socket.AF_INET6, "::", True)),  # `:9737`, the default: IPv6 and IPv4 on one socket
        ("::", (socket.AF_INET6, "::", True)),
        ("0.0.0.0", (socket.AF_INET, "0.0.0.0", False)),
        ("::1", (socket.AF_INET6, "::1", False)),
        ("127.0.0.1", (socket.AF_INET, "127.0.0.1", False)),
    ],
)
def test_bind_address(host: str, expected: tuple[socket.AddressFamily, str, bool]) -> None:
    assert bind_address(host) == expected


@pytest.mark.parametrize(("fd_limit", "expected"), [(1024, 64), (20000, 64), (300, 44), (100, 16)])
def test_connection_limit_leaves_descriptors_for_ports_and_probes(fd_limit: int, expected: int) -> None:
    assert connection_limit(fd_limit) == expected


def test_at_the_connection_limit_the_idlest_connection_makes_room(monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle sockets beyond the cap do not lock Prometheus out until they time out: the oldest goes."""
    monkeypatch.setattr(server, "connection_limit", lambda fd_limit: 20)
    running = start()
    idle = [socket.create_connection(("127.0.0.1", running.port), timeout=10) for _ in range(60)]
    try:
        answer = raw_request(running.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200")
        assert b"first_metric 1.0" in answer
        # The server never held more than its cap: the first idle sockets were closed to make room.
        assert idle[0].recv(1) == b""
    finally:
        for client in idle:
            client.close()
        running.stop()


class HeldApp(WebApp):
    """Answers only once `release` is set: every connection stays busy being answered until then."""

    def __init__(self) -> None:
        super().__init__(registry_with_two_gauges(), State([DeviceConfig("mppt", "/dev/ttyUSB0")]), WebConfig())
        self.release = threading.Event()

    def __call__(self, environ, start_response):
        self.release.wait(30)
        return super().__call__(environ, start_response)


def test_at_the_limit_with_every_connection_busy_a_newcomer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """No idle connection to close: the server must not hold more than its cap, so the newcomer is closed at
    once (before, it was left in the backlog for as long as the others took)."""
    monkeypatch.setattr(server, "connection_limit", lambda fd_limit: 2)
    app = HeldApp()
    running = WebServer("127.0.0.1", 0, app)
    running.start()
    busy = [socket.create_connection(("127.0.0.1", running.port), timeout=10) for _ in range(2)]
    try:
        for client in busy:
            client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        channels = running._server._channels()
        wait_for(lambda: (len(channels) == 2 and all(channel.requests for channel in channels.values())) or None)
        with socket.create_connection(("127.0.0.1", running.port), timeout=10) as newcomer:
            assert newcomer.recv(1) == b""
        app.release.set()
        for client in busy:
            assert client.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        app.release.set()
        for client in busy:
            client.close()
        running.stop()


def unstarted(app: WebApp | None = None) -> WebServer:
    """A server whose loop the test turns itself (`turn`, or `handle_accept` for one readiness of the listening
    socket), so that it knows what has been read when."""
    state = State([DeviceConfig("mppt", "/dev/ttyUSB0")])
    return WebServer("127.0.0.1", 0, app or WebApp(registry_with_two_gauges(), state, WebConfig()))


def turn(running: WebServer) -> None:
    connection_loop(timeout=0.05, use_poll=True, map=running._map, count=1)


def channel_of(running: WebServer, client: socket.socket) -> HTTPChannel | None:
    return next((channel for channel in running._server._channels().values()
                 if channel.addr == client.getsockname()), None)


def test_connections_waiting_are_accepted_together_and_their_requests_read_at_once() -> None:
    """waitress accepts one connection per turn of its loop and reads it at the next: behind a backlog of
    clients that connect again as soon as they are shed, a scrape waited for hundreds of turns."""
    app = HeldApp()  # the requests stay in their channels until released
    running = unstarted(app)
    clients = [socket.create_connection(("127.0.0.1", running.port), timeout=10) for _ in range(3)]
    try:
        for client in clients:
            client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        running._server.handle_accept()  # the listening socket was readable once
        channels = running._server._channels()
        assert len(channels) == 3
        assert all(channel.requests for channel in channels.values())
        app.release.set()
        running.start()
        for client in clients:
            assert client.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        app.release.set()
        for client in clients:
            client.close()
        running.stop()


def test_at_the_limit_a_connection_whose_request_came_is_not_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The idlest connection makes room, but not one whose request has arrived and waits to be read at the next
    turn of the loop: a scrape accepted just before a burst of others was closed that way, unanswered."""
    monkeypatch.setattr(server, "connection_limit", lambda fd_limit: 2)
    running = unstarted()
    first, second = socket.create_connection(("127.0.0.1", running.port), timeout=10), None
    newcomer = None
    try:
        running._server.handle_accept()
        second = socket.create_connection(("127.0.0.1", running.port), timeout=10)
        running._server.handle_accept()
        first.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")  # the idlest until now
        newcomer = socket.create_connection(("127.0.0.1", running.port), timeout=10)
        running._server.handle_accept()
        running.start()
        assert first.recv(65536).startswith(b"HTTP/1.1 200")
        assert second.recv(1) == b""  # closed to make room instead
    finally:
        for client in (first, second, newcomer):
            if client is not None:
                client.close()
        running.stop()


def test_a_connection_that_sent_nothing_yet_is_closed_after_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its request may be on its way: a connection that has been heard from (here half a request, as a slow
    client sends) makes room first, even when it has been idle for less long."""
    monkeypatch.setattr(server, "connection_limit", lambda fd_limit: 2)
    monkeypatch.setattr(server, "UNHEARD_GRACE_SECONDS", 60)  # however slow the machine running the test
    running = unstarted()
    silent = socket.create_connection(("127.0.0.1", running.port), timeout=10)
    slow = newcomer = None
    try:
        running._server.handle_accept()
        slow = socket.create_connection(("127.0.0.1", running.port), timeout=10)
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        running._server.handle_accept()

        def heard() -> bool:
            turn(running)
            channel = channel_of(running, slow)
            return channel is not None and channel.last_activity > channel.creation_time

        wait_for(heard)
        newcomer = socket.create_connection(("127.0.0.1", running.port), timeout=10)
        running._server.handle_accept()
        assert channel_of(running, silent) is not None
        assert slow.recv(1) == b""
    finally:
        for client in (silent, slow, newcomer):
            if client is not None:
                client.close()
        running.stop()


def test_stop_after_the_serving_thread_left_its_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The race a loaded machine hit: the serving thread saw the stop flag (its poll woke up) before stop()
    pulled the trigger. Here the pull always comes after the thread is gone; it closed the trigger itself once,
    so the pull failed with EBADF."""
    running = start()
    port = running.port
    pull = running._server.pull_trigger

    def pull_once_the_thread_is_gone() -> None:
        running._thread.join(30)  # the poll wakes up within its 1 s timeout and sees the flag
        assert not running._thread.is_alive()
        pull()

    monkeypatch.setattr(running._server, "pull_trigger", pull_once_the_thread_is_gone)
    running.stop()
    assert not running._thread.is_alive()
    assert running._map == {}  # the listening socket, the trigger and the connections are all closed
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
