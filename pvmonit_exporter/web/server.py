"""The HTTP side: `/metrics`, `/healthz`, `/api/state`, and `/` (the live page with its static files).

Served by waitress: one thread runs an asynchronous connection loop (idle and slow clients cost a file
descriptor, never a thread) and a fixed pool of worker threads runs the handlers. `/metrics` is
prometheus_client's own WSGI app, which brings gzip, OpenMetrics negotiation and `name[]` filtering. A scrape
never waits for a serial port or for emoncms, since every handler only reads the state.
"""

import errno
import json
import logging
import math
import operator
import resource
import select
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
from waitress.wasyncore import readwrite

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
# Connections accepted at most per readiness event of the listening socket (see _Server). A turn of waitress's
# loop asks every open connection whether it is readable and writable, which costs about as much as accepting two
# of them: shared by 16 accepts it is a small part of each, and a batch (under a millisecond) stays short enough
# for the open connections to be served between batches. 8 to 64 measured alike (benchmarks/bench_hostile.py).
ACCEPT_BATCH = 16
# A connection that has sent nothing since it was accepted is closed to make room only when no other idle one
# can be, until it has been silent this long: its request may be on its way (TCP's initial retransmission
# timeout is 1 s, so a request whose first segment was lost arrives about a second late).
UNHEARD_GRACE_SECONDS = 1.0
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


_LAST_ACTIVITY = operator.attrgetter("last_activity")  # a sort key that costs no Python call per connection


class _Server(TcpWSGIServer):
    """waitress's server, except at the connection limit: rather than stop accepting (and leave Prometheus
    waiting behind idle sockets until they time out), it closes an idle connection to make room.

    The choice is made when connections are accepted, never in `readable()`: the connection loop asks every
    channel whether it is readable at each turn, so a scan there would cost O(connections) per event, and
    thousands of slow clients make thousands of events a second.

    Up to ACCEPT_BATCH connections are accepted per readiness event of the listening socket, where waitress
    accepts one per turn of its loop: behind a backlog of clients that connect again as soon as they are shed, a
    scrape waited for hundreds of turns, each asking every connection whether it is readable and writable.
    """

    def readable(self) -> bool:
        now = time.time()
        if now >= self.next_channel_cleanup:  # as waitress does: close connections idle for too long
            self.next_channel_cleanup = int(now) + self.adj.cleanup_interval
            self.maintenance(int(now))
        return bool(self.accepting)  # waitress stops accepting at the limit; handle_accept makes room instead

    def handle_accept(self) -> None:
        room = self._room()
        if room is None:
            self._refuse_newcomer()
            return
        newcomers: dict[int, HTTPChannel] = {}
        for idle in room[:ACCEPT_BATCH]:
            accepted = self._accept()
            if accepted is None:
                break
            if idle is not None:
                idle.handle_close()
            fd = accepted[0].fileno()
            channel = self._open_channel(*accepted)
            if channel is not None:
                newcomers[fd] = channel
        # A scrape's request is usually there by the time its connection is accepted: read it now, since the next
        # turn serves the listening socket first, and so accepts the next batch before reading this one.
        for fd, flags in _ready(newcomers):
            readwrite(newcomers[fd], flags)

    def _room(self) -> list[HTTPChannel | None] | None:
        """Where the connections accepted now go, in turn: the free places (None) under the limit, then idle
        connections in the order they are closed (see _closing_order). None when every connection is being
        answered.

        An idle connection with bytes waiting is left out, to be read at the next turn: its request may be in
        them. Only this thread reads requests, so the others stay idle until they are closed."""
        channels = self._channels()
        free = max(0, self.adj.connection_limit - len(channels))
        idle = [channel for channel in channels.values() if not channel.requests and not channel.total_outbufs_len]
        if not idle and not free:
            return None
        # Only those this batch can take are polled for waiting bytes, not every idle connection: that poll was the
        # largest part of one accept at the limit (47 us now, was 60). A channel in the map always has its socket.
        candidates = {channel.socket.fileno(): channel
                      for channel in _closing_order(idle, time.time())[:max(0, ACCEPT_BATCH - free)]
                      if channel.socket is not None}
        for fd, _ in _ready(candidates):
            del candidates[fd]
        return [*[None] * free, *candidates.values()]

    def _accept(self) -> tuple[socket.socket, Any] | None:
        """The next connection waiting in the backlog, or None when there is none (or the process is out of
        descriptors: waitress's own accept gives up the same way, and the loop tries again at its next turn)."""
        try:
            accepted: tuple[socket.socket, Any] | None = self.accept()
        except OSError:
            return None
        return accepted

    def _open_channel(self, sock: socket.socket, address: Any) -> HTTPChannel | None:
        """What waitress's handle_accept does with an accepted socket."""
        try:
            self.set_socket_options(sock)
        except OSError:  # the client already left (macOS reports it here)
            sock.close()
            return None
        socket_map = self._map  # type: ignore[attr-defined] # wasyncore's dispatcher keeps it; the stub omits it
        channel: HTTPChannel = self.channel_class(self, sock, self.fix_addr(address), self.adj, map=socket_map)
        return channel

    def _refuse_newcomer(self) -> None:
        """Every connection is being answered (or its answer is unread): close the newcomer rather than hold
        more than the limit. Rare with real clients; the bound matters against hostile ones."""
        accepted = self._accept()
        if accepted is not None:
            accepted[0].close()

    def _channels(self) -> dict[int, HTTPChannel]:
        channels: dict[int, HTTPChannel] = self.active_channels  # type: ignore[assignment] # the stub is wrong
        return channels


def _closing_order(idle: list[HTTPChannel], now: float) -> list[HTTPChannel]:
    """`idle` in the order to close them: the idlest first, except that those silent since they were accepted
    less than UNHEARD_GRACE_SECONDS ago come after all others (the oldest of those first)."""
    idle.sort(key=_LAST_ACTIVITY)
    heard: list[HTTPChannel] = []
    unheard: list[HTTPChannel] = []
    for channel in idle:
        # waitress sets both at once when it accepts, and last_activity again whenever bytes come or go.
        silent = channel.last_activity == channel.creation_time
        (unheard if silent and now - channel.creation_time < UNHEARD_GRACE_SECONDS else heard).append(channel)
    return heard + unheard


def _ready(fds: Iterable[int]) -> list[tuple[int, int]]:
    """Those of `fds` with something to read (or closed by the peer), with poll's flags for them; never waits."""
    pollster = select.poll()
    for fd in fds:
        pollster.register(fd, select.POLLIN | select.POLLPRI)
    return pollster.poll(0)


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
