"""The HTTP side: `/metrics`, `/healthz`, `/api/state`, and `/` (the live page with its static files).

Served by waitress: one thread runs an asynchronous connection loop (idle and slow clients cost a file
descriptor, never a thread) and a fixed pool of worker threads runs the handlers. `/metrics` is
prometheus_client's own WSGI app, which brings gzip, OpenMetrics negotiation and `name[]` filtering. A scrape
never waits for a serial port or for emoncms, since every handler only reads the state.
"""

import contextlib
import errno
import json
import logging
import math
import resource
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import make_wsgi_app
from prometheus_client.registry import CollectorRegistry
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.wasyncore import loop as connection_loop

from pvmonit_exporter.charts import ChartRecorder
from pvmonit_exporter.config import WebConfig
from pvmonit_exporter.safe_text import escape_control
from pvmonit_exporter.state import State
from pvmonit_exporter.web.api import ControlStatus, ForwarderStatus, state_document

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

# Worker threads: handlers only read memory and hold the GIL while they do, so more threads would not answer
# sooner (20 clients scraping at once: the same p50 with 2 as with 4), while each keeps its own malloc arena
# (~0.3 MB resident). Two, so that a scrape never queues behind a single slow page.
WORKER_THREADS = 2
# Connections held open at most, whatever the file descriptor limit allows: Prometheus, a few browsers (six
# each) and scripts need tens. waitress's connection loop asks every open connection whether it is readable
# at each turn, and slow clients dripping bytes make a turn per byte: at 256 such connections the turns alone
# kept /metrics' p99 above 500 ms. Beyond this the idlest is closed (see _Server).
MAX_CONNECTIONS = 64
# ...and descriptors always left for serial ports, probe commands, the queue database and emoncms.
RESERVED_FDS = 256
# An idle keep-alive connection is closed after this long (checked every CLEANUP_SECONDS).
IDLE_TIMEOUT_SECONDS = 30
CLEANUP_SECONDS = 5

LANDING_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pvmonit-exporter</title></head>
<body><h1>pvmonit-exporter</h1>
<ul><li><a href="/metrics">/metrics</a> for Prometheus</li>
<li><a href="/api/state">/api/state</a> (JSON)</li><li><a href="/healthz">/healthz</a></li></ul>
</body></html>
"""

# With every worker busy, waitress warns at each queued request: routine during a burst of scrapes.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)


def _static_files() -> dict[str, bytes]:
    """The package's static folder, read once: a request can only ever name one of these files. Found beside
    this file rather than through importlib.resources (~70 kB resident): pip always installs unpacked."""
    folder = Path(__file__).with_name("static")
    if not folder.is_dir():
        return {}
    return {item.name: item.read_bytes() for item in folder.iterdir()
            if item.is_file() and not item.name.startswith(".")}


# The kinds of file in the static folder. A fixed table rather than mimetypes, which reads the system's whole
# table (~450 kB resident) the first time a page is opened, for these four answers.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml; charset=utf-8",
}


def _content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


def json_safe(value: object) -> object:
    """`value` with every non-finite float replaced, so that a document can always be encoded as JSON:
    infinity becomes "inf"/"-inf" (as TTG's "infinite" already travels), NaN becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def encode_json(document: object) -> bytes:
    return json.dumps(json_safe(document), ensure_ascii=False, allow_nan=False).encode("utf-8")


@dataclass(frozen=True)
class _Reply:
    status: str
    content_type: str
    body: bytes
    cache: bool = True


_NOT_FOUND = _Reply("404 Not Found", "text/plain; charset=utf-8", b"not found\n")


class WebApp:
    """What the handlers read: the registry for /metrics and the state for /api/state."""

    def __init__(self, registry: CollectorRegistry, state: State, web: WebConfig,
                 forwarder: ForwarderStatus | None = None, history: ChartRecorder | None = None,
                 *, control: ControlStatus | None = None, mqtt: ForwarderStatus | None = None) -> None:
        self.registry, self.state, self.web, self.forwarder, self.history = registry, state, web, forwarder, history
        self.control = control
        self.mqtt = mqtt
        self.metrics = make_wsgi_app(registry)
        self.static = _static_files()

    def state_document(self) -> dict[str, Any]:
        return state_document(self.state, self.web, self.forwarder, self.history, control=self.control, mqtt=self.mqtt)

    def __call__(self, environ: "WSGIEnvironment", start_response: "StartResponse") -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if method not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD"), ("Content-Length", "0")])
            return [b""]
        if path == "/metrics":
            # The library answers GET only: a HEAD is its GET without the body.
            metrics: Iterable[bytes] = self.metrics({**environ, "REQUEST_METHOD": "GET"}, start_response)
            return [b""] if method == "HEAD" else metrics
        try:
            reply = self._route(path)
        except Exception as exc:  # noqa: BLE001 - a bug answers 500 with one log line, never a dropped connection
            log.error("GET %s failed: %s", escape_control(path[:200]), escape_control(repr(exc)))  # noqa: TRY400
            reply = _Reply("500 Internal Server Error", "text/plain; charset=utf-8", b"internal error\n", False)
        headers = [("Content-Type", reply.content_type), ("Content-Length", str(len(reply.body))),
                   ("X-Content-Type-Options", "nosniff")]
        if not reply.cache:
            headers.append(("Cache-Control", "no-store"))
        start_response(reply.status, headers)
        return [b"" if method == "HEAD" else reply.body]

    def _route(self, path: str) -> _Reply:
        if path == "/healthz":
            return _Reply("200 OK", "text/plain; charset=utf-8", b"ok\n")
        if path == "/api/state":
            return _Reply("200 OK", "application/json; charset=utf-8", encode_json(self.state_document()), False)
        if path == "/":
            return _Reply("200 OK", "text/html; charset=utf-8", self.static.get("index.html", LANDING_PAGE))
        name = path.removeprefix("/static/")
        if name != path and name in self.static:
            return _Reply("200 OK", _content_type(name), self.static[name])
        return _NOT_FOUND


def connection_limit(fd_limit: int) -> int:
    """How many HTTP connections to hold at most under a file descriptor limit, keeping RESERVED_FDS free."""
    return max(16, min(MAX_CONNECTIONS, fd_limit - RESERVED_FDS))


def fd_limit() -> int:
    """The soft RLIMIT_NOFILE: what the process may open in all."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else MAX_CONNECTIONS + RESERVED_FDS


def bind_address(host: str) -> tuple[socket.AddressFamily, str, bool]:
    """Where to bind for `host`: (family, address, dual stack). All interfaces ("" or "::") means one IPv6
    socket that also accepts IPv4, as Prometheus listens; "0.0.0.0" stays IPv4 only."""
    if host in ("", "::"):
        return socket.AF_INET6, "::", True
    if ":" in host:
        return socket.AF_INET6, host, False
    return socket.AF_INET, host, False


def listen_socket(host: str, port: int) -> socket.socket:
    """A bound socket for `host`:`port`; falls back to IPv4 for all interfaces on a host without IPv6."""
    family, address, dual = bind_address(host)
    if family == socket.AF_INET and not _is_ip(address):
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, address = infos[0][0], str(infos[0][4][0])
    try:
        return _bound(family, address, port, dual)
    except OSError as exc:
        if dual and exc.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
            return _bound(socket.AF_INET, "0.0.0.0", port, False)  # noqa: S104 - all interfaces, as asked
        raise


def _is_ip(text: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET, text)
    except OSError:
        return False
    return True


def _bound(family: socket.AddressFamily, address: str, port: int, dual: bool) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Restarting under systemd must not wait for TIME_WAIT sockets to clear.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual else 1)
        sock.bind((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


class _Server(TcpWSGIServer):
    """waitress's server, except at the connection limit: rather than stop accepting (and leave Prometheus
    waiting behind idle sockets until they time out), it closes the connection idle the longest.

    The choice is made once per accepted connection, never in `readable()`: the connection loop asks every
    channel whether it is readable at each turn, so a scan there would cost O(connections) per event, and
    thousands of slow clients make thousands of events a second.
    """

    def readable(self) -> bool:
        now = time.time()
        if now >= self.next_channel_cleanup:  # as waitress does: close connections idle for too long
            self.next_channel_cleanup = int(now) + self.adj.cleanup_interval
            self.maintenance(int(now))
        return bool(self.accepting)  # waitress stops accepting at the limit; handle_accept makes room instead

    def handle_accept(self) -> None:
        if len(self._channels()) >= self.adj.connection_limit:
            idlest = self._idlest()
            if idlest is None:
                self._refuse_newcomer()
                return
            idlest.handle_close()
        super().handle_accept()

    def _refuse_newcomer(self) -> None:
        """Every connection is being answered (or its answer is unread): close the newcomer rather than hold
        more than the limit. Rare with real clients; the bound matters against hostile ones."""
        with contextlib.suppress(OSError):  # the client already left
            accepted = self.accept()
            if accepted is not None:
                accepted[0].close()

    def _channels(self) -> dict[int, HTTPChannel]:
        channels: dict[int, HTTPChannel] = self.active_channels  # type: ignore[assignment] # the stub is wrong
        return channels

    def _idlest(self) -> HTTPChannel | None:
        """The connection with nothing being answered that has been quiet the longest."""
        idle = (c for c in self._channels().values() if not c.requests and not c.total_outbufs_len)
        return min(idle, key=lambda channel: channel.last_activity, default=None)


class WebServer:
    """Listens on `host`:`port` at once (so that a port in use is reported before anything starts)."""

    def __init__(self, host: str, port: int, app: WebApp) -> None:
        self.app = app
        limit = connection_limit(fd_limit())
        sock = listen_socket(host, port)
        self._map: dict[int, Any] = {}
        try:
            self._server = _Server(
                self._serve, map=self._map, _sock=sock, bind_socket=False,
                sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()),
                threads=WORKER_THREADS, connection_limit=limit, channel_timeout=IDLE_TIMEOUT_SECONDS,
                cleanup_interval=CLEANUP_SECONDS, asyncore_use_poll=True, ident="pvmonit-exporter",
                # A client that went away (a phone leaving Wi-Fi) is routine: no traceback in the journal.
                log_socket_errors=False,
            )
        except BaseException:
            sock.close()
            raise
        self._address = sock.getsockname()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)

    @property
    def host(self) -> str:
        return str(self._address[0])

    @property
    def port(self) -> int:
        return int(self._address[1])

    def _serve(self, environ: "WSGIEnvironment", start_response: "StartResponse") -> Iterable[bytes]:
        return self.app(environ, start_response)  # `app` is swapped whole on a configuration reload

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping:
            try:
                connection_loop(timeout=1.0, use_poll=True, map=self._map, count=1)
            except Exception as exc:  # noqa: BLE001 - the server must outlive a bug: one line, and serve on
                log.error("HTTP server: unexpected error, serving on: %s", escape_control(repr(exc)))  # noqa: TRY400

    def stop(self) -> None:
        # Only stop() closes the sockets, after the pull: were the serving thread to close them as it left its
        # loop, one that noticed `_stopping` first would close the trigger before stop() wrote to it (EBADF).
        self._stopping = True
        if self._thread.is_alive():
            self._server.pull_trigger()
            self._thread.join(10)
        self._server.task_dispatcher.shutdown(timeout=5)
        for dispatcher in list(self._map.values()):
            dispatcher.close()
