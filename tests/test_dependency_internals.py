"""The three places where the product leans on a library beyond its documented API, each pinned below the
library's next major version in pyproject.toml. These tests name what we rely on, so that an upgrade that
changes it fails here, loudly and with the reason, rather than somewhere deep in a behaviour test.

- waitress (web/server.py): at the connection limit, waitress stops accepting, and a Prometheus scrape would
  wait behind idle sockets until they time out. `_Server` sheds the idlest connection instead, reading the
  server's channel map and each channel's activity. It also accepts a batch of connections where waitress
  accepts one per turn of its loop, so it opens channels as waitress's `handle_accept` does (`channel_class`,
  `set_socket_options`, `fix_addr`, the socket map `_map`) and reads the newcomers whose request is there with
  the loop's own `wasyncore.readwrite`; a connection that has sent nothing yet is told by `last_activity` still
  equal to `creation_time`. waitress documents `connection_limit`, not these.
- urllib3 (forwarder/deadline.py): requests' timeout bounds each socket read, not the request; the deadline
  registers every socket a request uses, through urllib3's pool and connection classes.
- diskcache (forwarder/queue_view.py): `pvmonit-exporter queue` must read the queue without writing a byte
  (diskcache's own `Cache()` creates files and writes its settings), so it reads diskcache's `Cache` table
  with SQLite opened read-only.
"""

import socket
import sqlite3
from importlib.metadata import version
from pathlib import Path

import pytest
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager
from waitress.wasyncore import readwrite

from pvmonit_exporter.config import DeviceConfig, WebConfig
from pvmonit_exporter.forwarder import queue_view
from pvmonit_exporter.forwarder.queue import DiskQueue
from pvmonit_exporter.state import State
from pvmonit_exporter.web.server import WebApp, WebServer
from tests.daemon.test_web import registry_with_two_gauges
from tests.forwarder.test_queue_view import rows
from tests.helpers import wait_for


def _major(version: str) -> int:
    return int(version.split(".", maxsplit=1)[0])


@pytest.mark.parametrize(("library", "version", "pinned_below"), [
    ("waitress", version("waitress"), 4),
    ("urllib3", version("urllib3"), 3),
    ("diskcache", version("diskcache"), 6),
])
def test_installed_version_is_the_one_pinned(library: str, version: str, pinned_below: int) -> None:
    assert _major(version) < pinned_below, (
        f"{library} {version} is past the pin this project's internals test was written for; "
        "see this module's docstring before raising the pin")


def test_waitress_server_and_channel_internals_used_to_shed_idle_connections() -> None:
    web = WebServer("127.0.0.1", 0, WebApp(registry_with_two_gauges(), State([DeviceConfig("d", "/dev/null")]),
                                           WebConfig()))
    web.start()
    try:
        server = web._server
        for name in ("active_channels", "next_channel_cleanup", "accepting", "maintenance", "pull_trigger",
                     "accept", "channel_class", "set_socket_options", "fix_addr", "_map"):
            assert hasattr(server, name), f"waitress's TcpWSGIServer has no {name!r} any more (web/server.py)"
        assert server.adj.connection_limit > 0
        assert server.adj.cleanup_interval > 0
        assert vars(server)["_map"] is web._map, "waitress's dispatcher keeps its socket map elsewhere"
        assert callable(readwrite)
        with socket.create_connection(("127.0.0.1", web.port)) as client:
            channels = wait_for(lambda: list(server._channels().values()) or None)
            for name in ("requests", "total_outbufs_len", "last_activity", "creation_time", "handle_close"):
                assert hasattr(channels[0], name), f"waitress's HTTPChannel has no {name!r} any more"
            assert channels[0].last_activity == channels[0].creation_time, "both are no longer set at once"
            client.sendall(b"GET / HTTP/1.1\r\n")
            wait_for(lambda: channels[0].last_activity > channels[0].creation_time)
    finally:
        web.stop()


def test_urllib3_pool_and_connection_hooks_used_by_the_deadline() -> None:
    assert HTTPConnectionPool.ConnectionCls is HTTPConnection
    assert HTTPSConnectionPool.ConnectionCls is HTTPSConnection
    assert set(PoolManager().pool_classes_by_scheme) == {"http", "https"}
    for method in ("connect", "request"):
        assert callable(getattr(HTTPConnection, method))
    adapter = HTTPAdapter()
    assert isinstance(adapter.poolmanager, PoolManager)  # set by init_poolmanager, which the deadline extends


def test_diskcache_table_holds_each_row_text_as_the_read_only_view_reads_it(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, 10) as queue:
        queue.append(rows(0, 1))
    with sqlite3.connect(tmp_path / queue_view.DATABASE) as connection:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(Cache)")}
        assert {"key", "raw", "value"} <= columns, "diskcache's Cache table changed (forwarder/queue_view.py)"
        (value,) = connection.execute("SELECT value FROM Cache").fetchone()
    assert isinstance(value, str), "diskcache no longer stores a row's text inline in `value`"
    stats = queue_view.read_queue_stats(tmp_path)
    assert stats is not None
    assert (stats.rows, stats.oldest) == (1, rows(0, 1)[0].time)
