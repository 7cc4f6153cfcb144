"""A fake emoncms on 127.0.0.1 that answers `input/bulk` and `input/post` the way emoncms 11.16.8 does.

Each behaviour follows /work/shared/reference/emoncms-api.md (copied facts, no emoncms code):

* endpoints with or without `.json`, under any path prefix (self-hosted `http://host/emoncms`); answers are
  `text/plain`; parameters from the query string or form fields (a form field wins), every value passed
  through PHP's `stripslashes`; a raw `application/json` body is ignored;
* key from `apikey=` (query or form) or `Authorization: Bearer <key>` — case-sensitive: any other header value
  is taken whole as the key; wrong key → 401 `Invalid API key`; no key or the READ key → 200 with an empty body;
* bulk: `data` missing or not JSON (PHP's parser refuses NaN/Infinity) → `Format error, json string supplied is
  not valid`; row time = server now − sentat + row[0], or time + row[0] with `time=` (0 = absolute), or the last
  row stamped now without either; rows shorter than 3 elements skipped; named values (a dict) or positional ones
  (named 1, 2, 3…); a node that is an object → `Format error, node must not be an object`; a value that is an
  array or object → `Format error, json value is not numeric`; strings stored as their leading number or 0,
  null as 0, true as 1; not atomic — rows before a failing row stay stored;
* post: `node`, `time` (absolute, default now), data from `fulljson` (strict: `Input in not a valid JSON
  object`), `json`/`data` (JSON, or the legacy `{name:value,…}` form), or `csv`; none → `Request contains no
  data via csv, json or data tag`;
* names reduced to letters, digits, `_`, space, `-`, `.`; at most `node_limit` (32) different nodes →
  `Error: Reached the maximal allowed number of different NodeIds, limit is 32`.

Simplification: a bulk row is checked whole before any of its values is stored.

Feeds (`create_feed`): what emoncms keeps of an input that logs to a feed, engine by engine, as emoncms's own
source at v11.16.8 (commit ef6464555de99671e25bee5bb4b92733e6468a1c) does it, read in
Modules/input/input_methods.php (`bulk`, `process_node`: every row's values go through the input's process
list one point at a time, in the order of the request), Modules/process/process_processlist.php (`log_to_feed`
→ `feed->post`), Modules/feed/feed_model.php (`post`: straight to the engine, the Redis buffer being off by
default in default-settings.php) and Modules/feed/engine/PHPFina.php and PHPTimeSeries.php (`post` →
`post_multiple`):

* PHPFina: the time is floored to the feed's interval; the first point ever sets the feed's start, and a point
  before the start is dropped; a point inside the feed overwrites its slot; a later one is appended, the slots
  between filled with NaN (emoncms's `maxpadding` bound is not modelled);
* PHPTimeSeries: a point at the newest point's time overwrites it; an older point overwrites the point at
  exactly its time if there is one, and is dropped otherwise; a newer one is appended.

Both answer `ok` whatever they dropped. `create_feed` stands for a user who added `Log to feed` to an input
before the rows arrive (emoncms creates an input on its first point and logs nothing for it then: its process
list is empty until the user fills it); `stored()` is every point that reached an input, in arrival order.

Switches for failures: `go_down()`/`come_up()` (connection refused: the listening socket is closed and
re-opened on the same port), `drop_connections` (connection closed without an answer), `fail_status` (HTTP 5xx
with an HTML page), `delay` (seconds to wait after storing, before answering: the client may time out or be
killed while the rows are already stored), `seconds_per_row` (more of that wait per row of a bulk request: a
slow emonPi on an SD card, 2.5 s for 500 rows is 0.005), `hold` (an event: a request arriving while it is set
stores its rows, then waits for the event before answering; set `hold = None` and later requests are answered
at once).
"""

import bisect
import json
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from tests.helpers import port_holder

WRITE_KEY = "0123456789abcdef0123456789abcdef"
READ_KEY = "fedcba9876543210fedcba9876543210"
NODE_LIMIT_ERROR = "Error: Reached the maximal allowed number of different NodeIds, limit is {limit}"
NOT_VALID_JSON = "Format error, json string supplied is not valid"
HOLD_TIMEOUT = 30.0  # a held answer goes out after this long even if the test never releases it
_LEADING_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class Point:
    node: str
    input: str
    time: int
    value: float


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    url: str  # path and query as received
    headers: Mapping[str, str]
    body: bytes
    status: int
    answer: str


class Feed:
    """One emoncms feed of `engine` ("PHPFina" with `interval` seconds, or "PHPTimeSeries"), as its engine
    writes it (module docstring)."""

    def __init__(self, engine: str, interval: int = 10) -> None:
        if engine not in ("PHPFina", "PHPTimeSeries"):
            raise ValueError(f"engine {engine!r}: PHPFina or PHPTimeSeries")
        self.engine = engine
        self.interval = interval
        self.start_time = 0  # PHPFina
        self.slots: list[float] = []  # PHPFina: one value per interval from start_time, NaN where none came
        self.series: list[tuple[int, float]] = []  # PHPTimeSeries: ascending times

    def post(self, at: int, value: float) -> None:
        if self.engine == "PHPFina":
            self._post_fina(at, value)
        else:
            self._post_timeseries(at, value)

    def _post_fina(self, at: int, value: float) -> None:
        slot_time = at // self.interval * self.interval
        if not self.slots and self.start_time == 0:
            self.start_time = slot_time
        position = (slot_time - self.start_time) // self.interval
        if position < 0:
            return  # before the feed's start: dropped
        if position < len(self.slots):
            self.slots[position] = value
            return
        self.slots.extend([math.nan] * (position - len(self.slots)))
        self.slots.append(value)

    def _post_timeseries(self, at: int, value: float) -> None:
        if not self.series or at > self.series[-1][0]:
            self.series.append((at, value))
            return
        index = bisect.bisect_left(self.series, at, key=lambda point: point[0])
        if index < len(self.series) and self.series[index][0] == at:
            self.series[index] = (at, value)  # older than the newest: kept only over a point at that very time

    def data(self) -> list[tuple[int, float]]:
        """The points the feed holds, ascending (PHPFina: its slots that hold a value)."""
        if self.engine == "PHPTimeSeries":
            return list(self.series)
        return [(self.start_time + i * self.interval, v) for i, v in enumerate(self.slots) if not math.isnan(v)]


class ManualClock:
    """A wall clock that moves only when told: shared by the fake and the forwarder, row times are exact as long
    as it does not move while a bulk request is in flight (emoncms stores `now − sentat + time`: see `Rig.tick`)."""

    def __init__(self, start: float) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def set(self, now: float) -> None:
        with self._lock:
            self._now = now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class _ContentError(Exception):
    """A `{"success": false}` answer; rows already stored stay stored."""


def _stripslashes(text: str) -> str:
    return re.sub(r"\\(.?)", r"\1", text)


def _sanitise(name: str) -> str:
    return "".join(c for c in name if c.isalnum() or c in "_-." or c.isspace())


def _php_float(value: object) -> float:
    """PHP `(float)` of a decoded JSON value: strings by their leading number, null 0, arrays refused."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if value is None:
        return 0.0
    if isinstance(value, str):
        match = _LEADING_NUMBER.match(value)
        return float(match.group(0)) if match else 0.0
    raise _ContentError("Format error, json value is not numeric")


def _php_int(value: object) -> int:
    return int(_php_float(value))


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


class FakeEmoncms:
    """Start with `with FakeEmoncms() as server:`; `server.url` is the base URL to configure."""

    def __init__(self, *, node_limit: int = 32, clock: Callable[[], float] = time.time,
                 prefix: str = "/emoncms", write_key: str = WRITE_KEY) -> None:
        self.node_limit = node_limit
        self.write_key = write_key
        self.clock = clock
        self.prefix = prefix
        self.points: list[Point] = []
        self.requests: list[RecordedRequest] = []
        self.nodes: list[str] = []
        self.feeds: dict[tuple[str, str], Feed] = {}  # (node, input) → the feed that input logs to
        self.drop_connections = False
        self.fail_status: int | None = None
        self.delay = 0.0
        self.seconds_per_row = 0.0
        self.hold: threading.Event | None = None
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port_holder = port_holder()  # the port stays this fake's while it is down (tests run in parallel)
        self.port: int = self._port_holder.getsockname()[1]
        self.come_up()

    # --- life cycle ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def come_up(self) -> None:
        """Listen (again, on the same port after `go_down()`: its own, held meanwhile)."""
        fake = self

        class Handler(_Handler):
            server_fake = fake

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def go_down(self) -> None:
        """Close the listening socket: clients get `connection refused` until `come_up()`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:  # kept-alive connections would otherwise still be answered
            for connection in self._connections:
                with suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Down for good: the port is given back."""
        self.go_down()
        self._port_holder.close()

    def __enter__(self) -> "FakeEmoncms":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def down(self) -> Iterator[None]:
        self.go_down()
        try:
            yield
        finally:
            self.come_up()

    def takes_rows_now(self, key: str) -> bool:
        """True when a bulk request with `key` sent now is stored and answered at once: listening, no failure
        switch on, no answer held or delayed, `key` the write key."""
        return (self._server is not None and self.fail_status is None and not self.drop_connections
                and self.hold is None and not self.delay and not self.seconds_per_row and key == self.write_key)

    # --- what was stored -------------------------------------------------------------------------------

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        """Remember open client connections, so that `go_down()` can cut the kept-alive ones."""
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def stored(self) -> list[Point]:
        with self._lock:
            return list(self.points)

    def recorded(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self.requests)

    def create_feed(self, node: str, input_name: str, engine: str, interval: int = 10) -> Feed:
        """Make the input `node`/`input_name` log to a new feed of `engine` (module docstring)."""
        with self._lock:
            feed = self.feeds[node, input_name] = Feed(engine, interval)
            if node not in self.nodes:
                self.nodes.append(node)
            return feed

    def feed_data(self, node: str, input_name: str) -> list[tuple[int, float]]:
        with self._lock:
            return self.feeds[node, input_name].data()

    # --- the emoncms behaviour ---------------------------------------------------------------------------

    def answer(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
        split = urlsplit(target)
        path = split.path
        if not path.startswith(self.prefix + "/"):
            return 404, "Not found"
        route = path[len(self.prefix):].removesuffix(".json")
        params = {k: _stripslashes(v) for k, v in parse_qsl(split.query, keep_blank_values=True)}
        content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
        if method == "POST" and content_type == "application/x-www-form-urlencoded":
            form = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
            params.update({k: _stripslashes(v) for k, v in form})
        if route not in ("/input/bulk", "/input/post"):
            return 404, "Not found"
        key = params.get("apikey")
        if key is None and "Authorization" in headers:
            header = headers["Authorization"]
            key = header[len("Bearer "):] if header.startswith("Bearer ") else header
        if not key or key == READ_KEY:
            return 200, ""
        if key != self.write_key:
            return 401, "Invalid API key"
        with self._lock:
            try:
                if route == "/input/bulk":
                    self._bulk(params)
                else:
                    self._post(params)
            except _ContentError as exc:
                return 200, json.dumps({"success": False, "message": str(exc)})
        if "fulljson" in params and route == "/input/bulk":
            return 200, json.dumps({"success": True})
        return 200, "ok"

    def _store(self, node: object, values: list[tuple[str, object]], at: int) -> None:
        if isinstance(node, dict | list):
            raise _ContentError("Format error, node must not be an object")
        name = _sanitise(str(node))
        numbers = [(_sanitise(str(k)), _php_float(v)) for k, v in values]
        if name not in self.nodes:
            if len(self.nodes) >= self.node_limit:
                raise _ContentError(NODE_LIMIT_ERROR.format(limit=self.node_limit))
            self.nodes.append(name)
        for input_name, value in numbers:
            self.points.append(Point(name, input_name, at, value))
            if (feed := self.feeds.get((name, input_name))) is not None:
                feed.post(at, value)

    def _bulk(self, params: Mapping[str, str]) -> None:
        try:
            rows = json.loads(params["data"], parse_constant=_reject_constant)
        except (KeyError, ValueError):
            raise _ContentError(NOT_VALID_JSON) from None
        if not isinstance(rows, list):
            raise _ContentError(NOT_VALID_JSON)
        now = int(self.clock())
        if "sentat" in params:
            reference = now - _php_int(params["sentat"])
        elif "time" in params:
            reference = _php_int(params["time"])
        elif rows and isinstance(rows[-1], list) and rows[-1]:
            reference = now - _php_int(rows[-1][0])
        else:
            reference = now
        for row in rows:
            if not isinstance(row, list) or len(row) < 3:
                continue
            at = reference + _php_int(row[0])
            if isinstance(row[2], dict):
                values = [(str(k), v) for k, v in row[2].items()]
            else:
                values = [(str(i), v) for i, v in enumerate(row[2:], start=1)]
            self._store(row[1], values, at)

    def _post(self, params: Mapping[str, str]) -> None:
        at = _php_int(params["time"]) if "time" in params else int(self.clock())
        node = params.get("node", "0")
        if "fulljson" in params:
            try:
                data = json.loads(params["fulljson"], parse_constant=_reject_constant)
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise _ContentError("Input in not a valid JSON object")
            values = list(data.items())
        elif "json" in params or "data" in params:
            values = _legacy_pairs(params.get("json", params.get("data", "")))
        elif "csv" in params:
            values = [(str(i), v) for i, v in enumerate(params["csv"].split(","), start=1)]
        else:
            raise _ContentError("Request contains no data via csv, json or data tag")
        self._store(node, values, at)


def _legacy_pairs(text: str) -> list[tuple[str, object]]:
    """`{name:value,…}` as emoncms reads `json=`: valid JSON first, else the legacy unquoted form."""
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        data = None
    if isinstance(data, dict):
        return list(data.items())
    if data is not None:
        raise _ContentError("Input in not a valid JSON object")
    cleaned = "".join(c for c in text if c.isalnum() or c in "_-.:,+" or c.isspace())
    pairs: list[tuple[str, object]] = []
    for item in cleaned.split(","):
        name, sep, value = item.partition(":")
        if not sep:
            continue
        try:
            pairs.append((name, float(value)))
        except ValueError:
            raise _ContentError("Format error, json value is not numeric") from None
    return pairs


def _bulk_rows(body: bytes) -> int:
    """How many rows the `data` form field of a bulk request holds (0 when it holds none)."""
    try:
        rows = json.loads(dict(parse_qsl(body.decode("utf-8"))).get("data", "[]"))
    except ValueError:
        return 0
    return len(rows) if isinstance(rows, list) else 0


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeEmoncms
    protocol_version = "HTTP/1.1"  # keep-alive, as Apache and nginx in front of emoncms
    # Headers and body leave in two writes: without TCP_NODELAY every kept-alive request waits for the
    # client's delayed ACK (40 ms), which no real emoncms does.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server_fake.track(self.connection, open_=True)

    def finish(self) -> None:
        self.server_fake.track(self.connection, open_=False)
        with suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Quiet: tests look at `FakeEmoncms.requests` instead."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        fake = self.server_fake
        hold = fake.hold  # taken on arrival: clearing `fake.hold` later releases only later requests
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if fake.drop_connections:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        headers = dict(self.headers.items())
        if fake.fail_status is not None:
            status = fake.fail_status
            answer = f"<html><body><h1>{status} Service Unavailable</h1></body></html>"
        else:
            status, answer = fake.answer(method, self.path, headers, body)
        fake.record(RecordedRequest(method, self.path, headers, body, status, answer))
        if fake.delay or fake.seconds_per_row:
            time.sleep(fake.delay + fake.seconds_per_row * _bulk_rows(body))
        if hold is not None:
            hold.wait(HOLD_TIMEOUT)
        payload = answer.encode("utf-8")
        with suppress(OSError):  # the client may have timed out or been killed meanwhile
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if not answer.startswith("<") else "text/html")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
