"""The fake emoncms answers as the reference says: the forwarder's tests are only as good as this fake."""

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.forwarder.fake_emoncms import READ_KEY, WRITE_KEY, FakeEmoncms, ManualClock, Point
from tests.helpers import wait_for

NOW = 1_780_315_400


@pytest.fixture
def server() -> Iterator[FakeEmoncms]:
    with FakeEmoncms(clock=ManualClock(NOW)) as fake:
        yield fake


def bulk(server: FakeEmoncms, data: str, params: str = "sentat=1780315400",
         headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(f"{server.url}/input/bulk.json?{params}", data={"data": data},
                         headers={"Authorization": f"Bearer {WRITE_KEY}"} if headers is None else headers,
                         timeout=5)


def test_bulk_ok_and_sentat_corrects_client_clock_skew(server: FakeEmoncms) -> None:
    # The client's clock is 100 s behind the server's: row times move forward by 100 s.
    response = bulk(server, '[[1780315200,"mppt",{"V":26180}],[1780315260,"mppt",{"V":26190}]]',
                    "sentat=1780315300")

    assert (response.status_code, response.text) == (200, "ok")
    assert response.headers["Content-Type"] == "text/plain"
    assert server.stored() == [Point("mppt", "V", 1780315300, 26180.0), Point("mppt", "V", 1780315360, 26190.0)]


def test_bulk_time_zero_is_absolute_and_without_either_the_last_row_is_now(server: FakeEmoncms) -> None:
    bulk(server, '[[100,"a",{"x":1}]]', "time=0")
    bulk(server, '[[100,"b",{"x":1}],[160,"b",{"x":2}]]', "")

    assert [p.time for p in server.stored()] == [100, NOW - 60, NOW]


def test_key_sources_and_answers(server: FakeEmoncms) -> None:
    row = '[[1780315400,"n",{"x":1}]]'
    assert bulk(server, row, "sentat=1780315400&apikey=" + WRITE_KEY, headers={}).text == "ok"
    wrong = bulk(server, row, headers={"Authorization": "Bearer " + "0" * 32})
    assert (wrong.status_code, wrong.text) == (401, "Invalid API key")
    lowercase = bulk(server, row, headers={"Authorization": "bearer " + WRITE_KEY})
    assert lowercase.status_code == 401
    for headers in ({}, {"Authorization": f"Bearer {READ_KEY}"}):
        empty = bulk(server, row, headers=headers)
        assert (empty.status_code, empty.text) == (200, "")
    assert len(server.stored()) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("not json", "Format error, json string supplied is not valid"),
        ('[[1,"n",{"x":NaN}]]', "Format error, json string supplied is not valid"),
        ('[[1,{"a":1},{"x":1}]]', "Format error, node must not be an object"),
        ('[[1,"n",{"x":[1]}]]', "Format error, json value is not numeric"),
    ],
)
def test_bulk_format_errors_are_http_200_success_false(server: FakeEmoncms, data: str, message: str) -> None:
    response = bulk(server, data)

    assert response.status_code == 200
    assert response.json() == {"success": False, "message": message}


def test_bulk_is_not_atomic_and_lenient_values_are_ok(server: FakeEmoncms) -> None:
    data = '[[1780315400,"n",{"a":"12abc","b":null,"c":true}],[1780315400,"n"],[1780315401,{"bad":1},{"x":1}]]'
    response = bulk(server, data)

    assert response.json()["success"] is False
    assert [(p.input, p.value) for p in server.stored()] == [("a", 12.0), ("b", 0.0), ("c", 1.0)]


def test_node_limit_refuses_new_nodes_only(server: FakeEmoncms) -> None:
    server.node_limit = 2
    assert bulk(server, '[[1780315400,"a",{"x":1}],[1780315400,"b",{"x":1}]]').text == "ok"

    refused = bulk(server, '[[1780315460,"c",{"x":1}]]').json()
    assert refused == {"success": False,
                       "message": "Error: Reached the maximal allowed number of different NodeIds, limit is 2"}
    assert bulk(server, '[[1780315460,"a",{"x":2}]]').text == "ok"


def test_names_are_sanitised_and_backslashes_stripped(server: FakeEmoncms) -> None:
    assert bulk(server, '[[1780315400,"serre#1 été",{"SER#":1}]]').text == "ok"
    # stripslashes turns the escaped quote into a bare one: the JSON is then invalid, as on a real emoncms.
    assert bulk(server, '[[1780315400,"a\\"b",{"x":1}]]').json()["success"] is False

    assert server.stored() == [Point("serre1 été", "SER", 1780315400, 1.0)]


def test_a_json_body_is_ignored(server: FakeEmoncms) -> None:
    response = requests.post(f"{server.url}/input/bulk.json?sentat=1", timeout=5,
                             json={"data": [[1, "n", {"x": 1}]]},
                             headers={"Authorization": f"Bearer {WRITE_KEY}"})

    assert response.json() == {"success": False, "message": "Format error, json string supplied is not valid"}


def test_input_post_legacy_json_node_and_time(server: FakeEmoncms) -> None:
    headers = {"Authorization": f"Bearer {WRITE_KEY}"}
    legacy = requests.get(f"{server.url}/input/post.json?json={{CS:3,PPV:120}}&node=mppt&time=1780315200",
                          headers=headers, timeout=5)
    strict = requests.get(f"{server.url}/input/post?node=1", params={"json": json.dumps({"temp": 21.5})},
                          headers=headers, timeout=5)
    empty = requests.get(f"{server.url}/input/post.json?node=1", headers=headers, timeout=5)

    assert (legacy.text, strict.text) == ("ok", "ok")
    assert empty.json() == {"success": False, "message": "Request contains no data via csv, json or data tag"}
    assert server.stored() == [Point("mppt", "CS", 1780315200, 3.0), Point("mppt", "PPV", 1780315200, 120.0),
                               Point("1", "temp", NOW, 21.5)]


def test_outage_refuses_connections_then_recovers_on_the_same_port(server: FakeEmoncms) -> None:
    session = requests.Session()  # a kept-alive connection must not survive the outage either
    url = f"{server.url}/input/bulk.json?sentat={NOW}"
    form = {"data": '[[1,"n",{"x":1}]]'}
    headers = {"Authorization": f"Bearer {WRITE_KEY}"}
    assert session.post(url, data=form, headers=headers, timeout=5).text == "ok"

    with server.down(), pytest.raises(requests.ConnectionError):
        session.post(url, data=form, headers=headers, timeout=5)

    assert session.post(url, data=form, headers=headers, timeout=5).text == "ok"
    assert len(server.stored()) == 2


def test_dropped_connections_and_5xx(server: FakeEmoncms) -> None:
    url = f"{server.url}/input/bulk.json?sentat={NOW}"
    server.drop_connections = True
    with pytest.raises(requests.ConnectionError):
        requests.post(url, data={"data": "[]"}, timeout=5)
    server.drop_connections = False
    server.fail_status = 503
    assert requests.post(url, data={"data": "[]"}, timeout=5).status_code == 503


def test_hold_stores_then_answers_only_when_released(server: FakeEmoncms) -> None:
    gate = threading.Event()
    server.hold = gate
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(bulk, server, '[[1780315200,"mppt",{"V":1}]]')
        wait_for(server.stored)  # stored while the answer waits
        server.hold = None
        later = bulk(server, '[[1780315260,"mppt",{"V":2}]]')  # taken after `hold` was cleared: answered at once
        assert not held.done()
        gate.set()
        first = held.result(timeout=5)

    assert (first.text, later.text) == ("ok", "ok")
    assert [p.value for p in server.stored()] == [1.0, 2.0]


DAY = 86_400
ELEVEN_DAYS = [NOW - DAY * n for n in range(11, 0, -1)]  # oldest first


@pytest.mark.parametrize("engine", ["PHPFina", "PHPTimeSeries"])
@pytest.mark.parametrize(("order", "kept"), [("oldest first", 11), ("newest first", 1)])
def test_a_feed_keeps_a_backfill_only_oldest_first(server: FakeEmoncms, engine: str, order: str,
                                                    kept: int) -> None:
    """What a real emoncms 11.16.8 did with 11 daily rows: newest first, each new feed kept 1."""
    server.create_feed("site_daily", "yield_kwh", engine, DAY)
    times = ELEVEN_DAYS if order == "oldest first" else ELEVEN_DAYS[::-1]
    rows = [[t, "site_daily", {"yield_kwh": i}] for i, t in enumerate(times)]

    assert bulk(server, json.dumps(rows), "time=0").text == "ok"  # whatever the feed dropped

    assert len(server.feed_data("site_daily", "yield_kwh")) == kept
    assert len(server.stored()) == 11  # every point reached the input


@pytest.mark.parametrize(
    ("engine", "posts", "expected"),
    [
        # PHPFina (PHPFina.php post_multiple): floored to the interval; before the start dropped; inside
        # overwritten; the slots skipped hold nothing.
        ("PHPFina", [(1000, 1), (1015, 2), (995, 3)], [(1000, 1), (1010, 2)]),
        ("PHPFina", [(1000, 1), (1030, 2), (1012, 3), (1000, 4)], [(1000, 4), (1010, 3), (1030, 2)]),
        # PHPTimeSeries (PHPTimeSeries.php post_multiple): older than the newest kept only at an exact time.
        ("PHPTimeSeries", [(1000, 1), (1020, 2), (1010, 3)], [(1000, 1), (1020, 2)]),
        ("PHPTimeSeries", [(1000, 1), (1020, 2), (1000, 3), (1020, 4)], [(1000, 3), (1020, 4)]),
    ],
    ids=["fina-before-start", "fina-overwrite", "timeseries-older", "timeseries-same-time"],
)
def test_feed_engines_as_emoncms_writes_them(server: FakeEmoncms, engine: str, posts: list[tuple[int, int]],
                                             expected: list[tuple[int, float]]) -> None:
    server.create_feed("n", "v", engine, 10)
    for at, value in posts:
        assert bulk(server, json.dumps([[at, "n", {"v": value}]]), "time=0").text == "ok"
    assert server.feed_data("n", "v") == expected
