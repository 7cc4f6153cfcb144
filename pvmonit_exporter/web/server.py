"""The HTTP side: `/metrics`, `/healthz`, `/api/state`, and `/` (the live page with its static files).

A small threaded server from the standard library: a scrape never waits for a serial port or for emoncms,
since every handler only reads the state.
"""

import json
import logging
import mimetypes
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from pvmonit_exporter.config import WebConfig
from pvmonit_exporter.history import HistoryRecorder
from pvmonit_exporter.state import State
from pvmonit_exporter.web.api import ForwarderStatus, state_document

log = logging.getLogger(__name__)

_STATIC = resources.files("pvmonit_exporter.web") / "static"

LANDING_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pvmonit-exporter</title></head>
<body><h1>pvmonit-exporter</h1>
<ul><li><a href="/metrics">/metrics</a> for Prometheus</li>
<li><a href="/api/state">/api/state</a> (JSON)</li><li><a href="/healthz">/healthz</a></li></ul>
</body></html>
"""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Restarting under systemd must not wait for TIME_WAIT sockets to clear.
    allow_reuse_address = True
    # The standard library's backlog of 5 makes a burst of concurrent scrapes wait for SYN retransmits (1 s).
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: "WebApp") -> None:
        self.app = app
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: Any) -> None:
        """A client that went away (a phone leaving Wi-Fi) is routine: no traceback in the journal."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.debug("client %s: %s", client_address, error)
        else:
            log.exception("error while answering %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "pvmonit-exporter"
    # An idle keep-alive connection is closed after this long, so that it does not hold a thread forever.
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class names it so
        log.debug("%s %s", self.address_string(), format % args)

    def do_HEAD(self) -> None:
        self._dispatch(send_body=False)

    def do_GET(self) -> None:
        self._dispatch(send_body=True)

    def _dispatch(self, *, send_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        app = self.server.app
        if path == "/metrics":
            self._reply(HTTPStatus.OK, CONTENT_TYPE_LATEST, generate_latest(app.registry), send_body)
        elif path == "/healthz":
            self._reply(HTTPStatus.OK, "text/plain; charset=utf-8", b"ok\n", send_body)
        elif path == "/api/state":
            body = json.dumps(app.state_document(), ensure_ascii=False, allow_nan=False).encode("utf-8")
            self._reply(HTTPStatus.OK, "application/json; charset=utf-8", body, send_body, cache=False)
        elif path == "/":
            page = _static_file("index.html")
            self._reply(HTTPStatus.OK, "text/html; charset=utf-8", page or LANDING_PAGE, send_body)
        elif path.startswith("/static/") and (content := _static_file(path.removeprefix("/static/"))):
            kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind in ("application/javascript", "image/svg+xml"):
                kind += "; charset=utf-8"
            self._reply(HTTPStatus.OK, kind, content, send_body)
        else:
            self._reply(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found\n", send_body)

    def _reply(self, status: HTTPStatus, content_type: str, body: bytes, send_body: bool,
               *, cache: bool = True) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if not cache:
            self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if send_body:
            self.wfile.write(body)


def _static_file(name: str) -> bytes | None:
    """A file shipped in the package's static folder; None for anything else (no path tricks)."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    item = _STATIC / name
    return item.read_bytes() if item.is_file() else None


class WebApp:
    """What the handlers read: the registry for /metrics and the state for /api/state."""

    def __init__(self, registry: CollectorRegistry, state: State, web: WebConfig,
                 forwarder: ForwarderStatus | None = None, history: HistoryRecorder | None = None) -> None:
        self.registry, self.state, self.web, self.forwarder, self.history = registry, state, web, forwarder, history

    def state_document(self) -> dict[str, Any]:
        return state_document(self.state, self.web, self.forwarder, self.history)


class WebServer:
    def __init__(self, host: str, port: int, app: WebApp) -> None:
        self._server = _Server((host, port), app)
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
