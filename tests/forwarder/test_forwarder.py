"""The forwarder end to end against the fake emoncms: outages, keys, poisoned rows, bounds, clocks, disks."""

import json
import logging
import math
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import diskcache
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from pvmonit_exporter.collector.forwarder import ForwarderCollector
from pvmonit_exporter.config import DeviceConfig
from pvmonit_exporter.forwarder.queue import RESERVE_FILE, DiskQueue
from pvmonit_exporter.forwarder.queue_view import read_queue_stats
from pvmonit_exporter.forwarder.snapshot import Row
from pvmonit_exporter.forwarder.threads import CLOCK_FLOOR, STOP_WAIT_SECONDS, next_tick
from tests.config import run_cli
from tests.forwarder.conftest import BMV_BLOCK, MPPT_BLOCK, START, Rig, emoncms_config, fill_up
from tests.forwarder.fake_emoncms import READ_KEY, WRITE_KEY, FakeEmoncms, ManualClock
from tests.forwarder.hostile_http import ScriptedServer, answer, redirect
from tests.helpers import wait_for

MakeRig = Callable[..., Rig]
TWO_DEVICES = (DeviceConfig("mppt", "/dev/ttyUSB0"), DeviceConfig("bmv", "/dev/ttyUSB1"))



def read_rows(queue_dir: Path) -> int:
    """Rows in the queue, read without opening it for writing."""
    stats = read_queue_stats(queue_dir)
    assert stats is not None
    return stats.rows

def mppt(step: int) -> dict[str, str]:
    return {**MPPT_BLOCK, "V": str(26000 + step)}


def test_snapshots_are_aligned_on_wall_clock_multiples(make_rig: MakeRig, fake: FakeEmoncms) -> None:
    rig = make_rig()
    rig.forwarder.start()
    tick = rig.tick({"mppt": mppt(0)}, wait_for)

    assert datetime.fromtimestamp(tick, UTC).strftime("%H:%M:%S") == "12:05:00"
    wait_for(fake.stored)
    assert {p.time for p in fake.stored()} == {int(tick)}
    assert next_tick(START, 300) == tick


def test_outage_over_many_intervals_then_recovery_sends_every_row_once_in_order(
        make_rig: MakeRig, fake: FakeEmoncms) -> None:
    rig = make_rig(devices=TWO_DEVICES, batch_size=7)
    rig.forwarder.start()
    ticks = [rig.tick({"mppt": mppt(0), "bmv": BMV_BLOCK}, wait_for)]
    wait_for(lambda: rig.forwarder.status().rows_sent_total == 2)

    with fake.down():
        for step in range(1, 25):
            ticks.append(rig.tick({"mppt": mppt(step), "bmv": BMV_BLOCK}, wait_for))
        wait_for(lambda: rig.forwarder.status().errors_total["connection"] >= 2)
        during = rig.forwarder.status()
    wait_for(lambda: rig.forwarder.status().queue_rows == 0)

    assert during.queue_rows == 48
    assert during.queue_oldest_row_timestamp == ticks[1]
    voltages = [(p.time, p.value) for p in fake.stored() if (p.node, p.input) == ("mppt", "V")]
    assert voltages == [(int(t), 26000.0 + step) for step, t in enumerate(ticks)]  # once each, in order
    keys = [(p.node, p.input, p.time) for p in fake.stored()]
    assert len(keys) == len(set(keys)) == 25 * (11 + 8)  # the MPPT's 11 inputs, the BMV block's 8
    assert rig.forwarder.status().rows_sent_total == 50
    assert rig.forwarder.status().last_success_timestamp == pytest.approx(rig.clock())


@pytest.mark.parametrize("engine", ["PHPFina", "PHPTimeSeries"])
def test_live_rows_wait_behind_queued_rows(tmp_path: Path, make_rig: MakeRig, fake: FakeEmoncms,
                                           engine: str) -> None:
    fake.create_feed("mppt", "V", engine, 300)  # a new feed: live rows first would leave the older ones out
    with DiskQueue(tmp_path / "queue", 100) as queue:  # left over from before a restart
        queue.append([Row(int(START) - 600, "mppt", {"V": 1}), Row(int(START) - 300, "mppt", {"V": 2})])
    rig = make_rig()
    rig.forwarder.start()
    rig.tick({"mppt": mppt(3)}, wait_for)
    wait_for(lambda: rig.forwarder.status().rows_sent_total == 3)

    assert [p.value for p in fake.stored() if p.input == "V"] == [1.0, 2.0, 26003.0]
    assert [value for _, value in fake.feed_data("mppt", "V")] == [1.0, 2.0, 26003.0]


@pytest.mark.parametrize("server_key", ["0" * 32, READ_KEY])
def test_refused_key_keeps_every_row_and_backs_off(
        make_rig: MakeRig, fake: FakeEmoncms, server_key: str, caplog: pytest.LogCaptureFixture) -> None:
    fake.write_key = server_key  # our key is not this account's write key (wrong: 401; read key: empty 200)
    rig = make_rig()
    rig.forwarder.start()
    for step in range(3):
        rig.tick({"mppt": mppt(step)}, wait_for)
    wait_for(lambda: rig.forwarder.status().errors_total["auth"] >= 2)

    status = rig.forwarder.status()
    assert status.queue_rows == 3
    assert status.rows_sent_total == 0
    assert "API key" in (status.last_error or "")
    assert any("refused the API key" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)

    fake.write_key = WRITE_KEY  # the operator fixes the key on the server
    wait_for(lambda: rig.forwarder.status().rows_sent_total == 3)
    assert rig.forwarder.status().last_error is None


def refusals(caplog: pytest.LogCaptureFixture, level: int) -> int:
    return sum(1 for r in caplog.records if r.levelno == level and "refused the API key" in r.getMessage())


def test_a_refused_key_is_logged_once_at_error_then_at_debug_and_its_end_at_info(
        make_rig: MakeRig, fake: FakeEmoncms, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pvmonit_exporter.forwarder")
    rig = make_rig()
    rig.forwarder.start()
    for episode in (1, 2):
        fake.write_key = "0" * 32
        rig.tick({"mppt": mppt(episode)}, wait_for)
        auth_errors = rig.forwarder.status().errors_total["auth"] + 4
        wait_for(lambda: rig.forwarder.status().errors_total["auth"] >= auth_errors)  # noqa: B023 - waited for here
        assert refusals(caplog, logging.ERROR) == episode  # once when the refusal starts…
        assert refusals(caplog, logging.DEBUG) >= 3 * episode  # …then each retry only at DEBUG
        fake.write_key = WRITE_KEY
        wait_for(lambda: rig.forwarder.status().rows_sent_total == episode)  # noqa: B023 - waited for here
        accepted = [r for r in caplog.records if "accepts the API key again" in r.getMessage()]
        assert [r.levelno for r in accepted] == [logging.INFO] * episode

    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "refused" not in r.getMessage()]


@pytest.mark.slow
def test_a_row_queued_under_a_key_that_queue_flush_freed_is_not_lost(
        tmp_path: Path, make_rig: MakeRig, fake: FakeEmoncms) -> None:
    """The daemon sends a batch; while its `ok` is on the way, `pvmonit-exporter queue --flush` (another
    process) sends the same row and removes it, and the next snapshot is queued under the key just freed. The
    daemon's `ok` must not remove that snapshot, never sent."""
    queue_dir = tmp_path / "queue"
    with DiskQueue(queue_dir, 100) as queue:
        queue.append([Row(int(START) - 300, "mppt", {"V": 1})])
        (first,) = queue.peek(1)
    key_file = tmp_path / "emoncms.key"
    key_file.write_text(WRITE_KEY + "\n")
    key_file.chmod(0o600)
    config = tmp_path / "config.yaml"
    config.write_text(f"devices:\n  - name: mppt\n    port: /dev/ttyUSB0\nemoncms:\n  url: {fake.url}\n"
                      f"  apikey_file: {key_file}\n  queue_dir: {queue_dir}\n")
    rig = make_rig(timeout=30.0)
    gate = threading.Event()
    fake.hold = gate  # the daemon's batch is stored, its `ok` held back
    emptied: list[bool] = []
    daemon = threading.Thread(target=lambda: emptied.append(rig.forwarder.flush_all(time.monotonic() + 30)))
    daemon.start()
    try:
        wait_for(fake.stored)
        fake.hold = None
        flushed = run_cli("queue", "--flush", "--config.file", str(config))
        assert (flushed.returncode, flushed.stderr) == (0, "")
        assert "rows queued: 0" in flushed.stdout
        rig.clock.set(START - 1)
        rig.feed("mppt", mppt(7))
        rig.clock.set(START)
        assert rig.forwarder.snapshot(START) != []  # the next snapshot…
        with DiskQueue(queue_dir, 100) as queue:
            assert [item.key for item in queue.peek(10)] == [first.key]  # …under the key the flush freed
    finally:
        gate.set()
        daemon.join(10)

    assert emptied == [True]
    assert 26007.0 in [p.value for p in fake.stored() if p.input == "V"]
    assert rig.forwarder.status().queue_rows == 0


@pytest.mark.parametrize(
    ("apikey", "parts"),
    [
        # A key file with a comment line: requests refuses the header and quotes it in its error.
        (f"# emoncms write key\n{WRITE_KEY}", ["# emoncms write key", WRITE_KEY, "emoncms write key\\n"]),
        (f"{WRITE_KEY}\r\n", [WRITE_KEY]),
        (f"{WRITE_KEY}€", [WRITE_KEY, "€", "\\u20ac"]),  # http.client cannot encode it (latin-1)
    ],
    ids=["comment-line", "crlf", "not-latin-1"],
)
def test_a_key_that_cannot_be_sent_leaks_into_no_log_line_and_no_status(
        make_rig: MakeRig, fake: FakeEmoncms, caplog: pytest.LogCaptureFixture, apikey: str,
        parts: list[str]) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3's lines included
    rig = make_rig(apikey=apikey)
    rig.forwarder.start()
    rig.tick({"mppt": mppt(0)}, wait_for)
    wait_for(lambda: rig.forwarder.status().last_error is not None)
    failures = sum(rig.forwarder.status().errors_total.values())
    wait_for(lambda: sum(rig.forwarder.status().errors_total.values()) >= failures + 2)  # retried, logged again
    rig.forwarder.stop()

    status = rig.forwarder.status()
    texts = [status.last_error or "", json.dumps(rig.forwarder.status_document(), ensure_ascii=False),
             json.dumps(rig.forwarder.status_document())]
    for record in caplog.records:
        texts.append(record.getMessage())
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
    assert status.rows_sent_total == 0
    assert status.queue_rows == 1
    assert fake.recorded() == []
    leaks = [(part, text) for part in [apikey, repr(apikey), *parts] for text in texts if part in text]
    assert leaks == []


def test_a_poisoned_row_goes_to_the_dead_letters_and_the_rest_flows(
        tmp_path: Path, make_rig: MakeRig, fake: FakeEmoncms) -> None:
    good = [Row(int(START) + 300 * i, "mppt", {"V": i}) for i in range(9)]
    poisoned = Row(int(START) + 1350, "mppt", {"V": math.nan})  # a NaN is not JSON: emoncms refuses the batch
    with DiskQueue(tmp_path / "queue", 100) as queue:
        queue.append([*good[:5], poisoned, *good[5:]])
    rig = make_rig()

    assert rig.forwarder.flush_all(deadline=math.inf)

    status = rig.forwarder.status()
    assert [(p.time, p.value) for p in fake.stored()] == [(r.time, r.values["V"]) for r in good]
    assert (status.queue_rows, status.dead_letter_rows, status.rows_sent_total) == (0, 1, 9)
    assert status.errors_total["content"] >= 2
    with DiskQueue(tmp_path / "queue", 100) as queue:
        (letter,) = queue.dead_letters()
    assert letter.text == f'[{int(START) + 1350},"mppt",{{"V":NaN}}]'
    assert letter.error == "Format error, json string supplied is not valid"


def test_node_limit_dead_letters_rows_of_new_nodes_only(make_rig: MakeRig, fake: FakeEmoncms,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    fake.node_limit = 1
    rig = make_rig(devices=TWO_DEVICES)
    rig.forwarder.start()
    for step in range(3):
        rig.tick({"mppt": mppt(step), "bmv": BMV_BLOCK}, wait_for)
    wait_for(lambda: rig.forwarder.status().queue_rows == 0)

    status = rig.forwarder.status()
    assert {p.node for p in fake.stored()} == {"mppt"}
    assert len({p.time for p in fake.stored()}) == 3
    assert (status.rows_sent_total, status.dead_letter_rows) == (3, 3)
    assert any("node limit" in r.getMessage() for r in caplog.records)


def test_queue_bound_drops_the_oldest_rows_and_counts_them(make_rig: MakeRig, fake: FakeEmoncms) -> None:
    rig = make_rig(max_queue_rows=4)
    rig.forwarder.start()
    with fake.down():
        ticks = [rig.tick({"mppt": mppt(step)}, wait_for) for step in range(7)]
        assert rig.forwarder.status().rows_dropped_total["queue_full"] == 3
        assert rig.forwarder.status().queue_oldest_row_timestamp == ticks[3]
    wait_for(lambda: rig.forwarder.status().queue_rows == 0)

    assert sorted({p.time for p in fake.stored()}) == [int(t) for t in ticks[3:]]


def test_wrong_clock_enqueues_nothing_and_logs_once(make_rig: MakeRig, fake: FakeEmoncms, clock: ManualClock,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    clock.set(datetime(1970, 1, 1, 0, 3, tzinfo=UTC).timestamp())  # a Pi without RTC, before NTP
    rig = make_rig()
    rig.forwarder.start()

    def skipped(count: int) -> Callable[[], bool]:
        return lambda: rig.forwarder.status().snapshots_skipped_total["clock"] >= count

    for step in range(3):  # `Rig.tick` waits for a snapshot: here each tick is skipped instead
        tick = rig.next_tick()
        rig.feed("mppt", mppt(step))
        clock.set(tick + 0.5)
        wait_for(skipped(step + 1))

    status = rig.forwarder.status()
    assert (status.snapshots_total, status.queue_rows) == (0, 0)
    warnings = [r for r in caplog.records if "system clock" in r.getMessage()]
    assert len(warnings) == 1
    assert rig.forwarder.snapshot(clock()) == []
    assert fake.recorded() == []


def test_no_flush_while_the_clock_is_wrong(tmp_path: Path, make_rig: MakeRig, fake: FakeEmoncms,
                                           clock: ManualClock) -> None:
    with DiskQueue(tmp_path / "queue", 100) as queue:
        queue.append([Row(int(START), "mppt", {"V": 1})])
    rig = make_rig()
    clock.set(CLOCK_FLOOR - 86_400)

    assert not rig.forwarder.flush_all(deadline=math.inf)  # sentat from a wrong clock would move the row

    clock.set(START + 10)
    assert rig.forwarder.flush_all(deadline=math.inf)
    assert [p.time for p in fake.stored()] == [int(START)]


def test_the_key_appears_in_no_log_line_no_url_and_not_in_the_queue(
        tmp_path: Path, make_rig: MakeRig, fake: FakeEmoncms, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3 logs every request line at DEBUG
    rig = make_rig()
    rig.forwarder.start()
    rig.tick({"mppt": mppt(0)}, wait_for)
    wait_for(lambda: rig.forwarder.status().rows_sent_total == 1)
    with fake.down():
        rig.tick({"mppt": mppt(1)}, wait_for)
        wait_for(lambda: rig.forwarder.status().errors_total["connection"] >= 1)
    fake.write_key = READ_KEY
    wait_for(lambda: rig.forwarder.status().errors_total["auth"] >= 1)
    fake.write_key = WRITE_KEY
    wait_for(lambda: rig.forwarder.status().rows_sent_total == 2)
    rig.forwarder.stop()

    messages = [record.getMessage() for record in caplog.records]
    assert any("POST /emoncms/input/bulk.json?sentat=" in m for m in messages)  # urllib3's lines were seen
    assert not [m for m in messages if WRITE_KEY in m]
    requests_seen = fake.recorded()
    assert requests_seen
    assert all(WRITE_KEY not in r.url and "apikey" not in r.url for r in requests_seen)
    assert all(r.headers["Authorization"] == f"Bearer {WRITE_KEY}" for r in requests_seen)
    assert all(WRITE_KEY.encode() not in path.read_bytes() for path in (tmp_path / "queue").rglob("*")
               if path.is_file())
    assert WRITE_KEY not in repr(rig.config)
    assert WRITE_KEY not in json.dumps(rig.forwarder.status_document())


def test_timeouts_and_server_errors_are_retried(make_rig: MakeRig, fake: FakeEmoncms) -> None:
    rig = make_rig(timeout=1.0)
    rig.forwarder.start()
    fake.fail_status = 502
    rig.tick({"mppt": mppt(0)}, wait_for)
    wait_for(lambda: rig.forwarder.status().errors_total["http"] >= 1)
    fake.fail_status = None
    fake.delay = 1.5  # stored, but the answer comes too late: the row stays queued and is sent again
    wait_for(lambda: rig.forwarder.status().errors_total["timeout"] >= 1)
    assert rig.forwarder.status().queue_rows == 1
    fake.delay = 0.0
    wait_for(lambda: rig.forwarder.status().queue_rows == 0)

    assert rig.forwarder.status().next_retry_timestamp is None
    assert {p.time for p in fake.stored()} == {int(rig.next_tick() - 300)}


def test_a_full_disk_is_counted_and_the_forwarder_keeps_working(
        tmp_path: Path, make_rig: MakeRig, fake: FakeEmoncms, caplog: pytest.LogCaptureFixture) -> None:
    with DiskQueue(tmp_path / "queue", 100) as queue:
        queue.append([Row(1, "x", {"a": 1})])
        queue.remove(queue.peek(1))
    diskcache.Cache(str(tmp_path / "queue"), sqlite_max_page_count=8).close()  # a real SQLITE_FULL soon
    rig = make_rig(devices=TWO_DEVICES, fields={"mppt": tuple(MPPT_BLOCK), "bmv": tuple(BMV_BLOCK)})
    registry = CollectorRegistry()
    registry.register(ForwarderCollector(rig.forwarder))
    rig.forwarder.start()
    fake.go_down()  # nothing leaves the queue: it fills up
    for step in range(100):
        rig.tick({"mppt": mppt(step), "bmv": BMV_BLOCK}, wait_for)
        if rig.forwarder.status().rows_dropped_total["disk_error"] >= 4:
            break
    status = rig.forwarder.status()

    assert status.errors_total["disk"] >= 1
    assert status.rows_dropped_total["disk_error"] >= 2
    assert any("cannot queue snapshots" in r.getMessage() and "database or disk is full" in r.getMessage()
               for r in caplog.records if r.levelno == logging.ERROR)
    assert b'pvmonit_emoncms_errors_total{kind="disk"}' in generate_latest(registry)
    assert {"emoncms-snapshots", "emoncms-flush"} <= {thread.name for thread in threading.enumerate()}


def test_an_unusable_queue_directory_does_not_stop_the_forwarder(tmp_path: Path, make_rig: MakeRig) -> None:
    (tmp_path / "file").write_text("x")
    rig = make_rig(queue_dir=tmp_path / "file" / "queue")
    rig.forwarder.start()
    rig.tick({"mppt": mppt(0)}, wait_for)

    status = rig.forwarder.status()
    assert status.errors_total["disk"] >= 1
    assert status.rows_dropped_total["disk_error"] == 1
    assert status.snapshots_total == 1


def test_a_corrupt_queue_at_start_is_moved_aside(tmp_path: Path, make_rig: MakeRig, fake: FakeEmoncms) -> None:
    queue_dir = tmp_path / "queue"
    queue_dir.mkdir()
    (queue_dir / "cache.db").write_bytes(b"\x00garbage" * 512)
    rig = make_rig()
    rig.forwarder.start()
    rig.tick({"mppt": mppt(0)}, wait_for)
    wait_for(lambda: rig.forwarder.status().rows_sent_total == 1)

    status = rig.forwarder.status()
    assert status.corrupt_queues_moved_aside == 1
    assert status.errors_total["disk"] == 1
    assert list(queue_dir.glob("corrupt-*/cache.db"))


def test_stop_joins_both_threads_and_status_is_json(make_rig: MakeRig) -> None:
    rig = make_rig()
    rig.forwarder.start()
    threads = [t for t in threading.enumerate() if t.name in ("emoncms-snapshots", "emoncms-flush")]
    rig.forwarder.stop()

    assert len(threads) == 2
    assert not any(thread.is_alive() for thread in threads)
    document = json.loads(json.dumps(rig.forwarder.status_document()))
    assert document["errors_total"] == dict.fromkeys(("connection", "timeout", "http", "auth", "content", "disk"), 0)
    assert document["queue_oldest_row_timestamp"] is None


def test_a_redirect_keeps_the_rows_and_logs_its_target(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """emoncms answers 302 to another host that answers `ok` to anything: nothing reached emoncms, so every
    row stays queued and the warning names where emoncms pointed."""
    with DiskQueue(tmp_path / "queue", 100) as queue:
        queue.append([Row(int(START) + 300 * i, "mppt", {"V": i}) for i in range(3)])
    with ScriptedServer(answer("200 OK", b"ok")) as elsewhere, \
            ScriptedServer(redirect("302 Found", f"{elsewhere.url}/emoncms/input/bulk.json")) as emoncms:
        rig = Rig(emoncms_config(tmp_path / "queue", emoncms.url), ManualClock(START), TWO_DEVICES, ())
        try:
            assert not rig.forwarder.flush_all(deadline=time.monotonic() + 0.5)
            status = rig.forwarder.status()
        finally:
            rig.forwarder.stop()
        assert elsewhere.requests == []

    assert (status.queue_rows, status.rows_sent_total) == (3, 0)
    assert status.errors_total["http"] >= 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings
    assert all(f"HTTP 302 redirect to {elsewhere.url}/emoncms/input/bulk.json: not followed" in warning
               for warning in warnings)


def bulk_sizes(fake: FakeEmoncms) -> list[int]:
    """Rows per bulk request the fake received, in order."""
    return [len(json.loads(parse_qs(r.body.decode())["data"][0])) for r in fake.recorded()]


def test_a_batch_slower_than_the_timeout_is_sent_in_smaller_batches_until_the_backlog_drains(
        tmp_path: Path, make_rig: MakeRig, fake: FakeEmoncms) -> None:
    """A slow emonPi: 0.1 s a row, so 24 rows take 2.4 s against a 1 s timeout. Resending the same 24 rows
    would never end; halving after each timeout gets every row through."""
    backlog = [Row(int(START) + 300 * i, "mppt", {"V": i}) for i in range(24)]
    with DiskQueue(tmp_path / "queue", 100) as queue:
        queue.append(backlog)
    fake.seconds_per_row = 0.1
    rig = make_rig(timeout=1.0, batch_size=24)

    assert rig.forwarder.flush_all(deadline=time.monotonic() + 60)

    sizes = bulk_sizes(fake)
    assert sizes[:2] == [24, 12]  # the first two time out
    assert max(sizes[2:]) <= 6
    assert {(p.time, p.value) for p in fake.stored()} == {(r.time, r.values["V"]) for r in backlog}
    status = rig.forwarder.status()
    assert status.errors_total["timeout"] >= 2
    assert (status.queue_rows, status.rows_sent_total) == (0, 24)


def test_stop_ends_a_flush_in_flight_and_never_reopens_the_queue(
        tmp_path: Path, make_rig: MakeRig, fake: FakeEmoncms) -> None:
    """emoncms holds its answer; `stop()` must not wait for it, nor close the queue under a flush that then
    removes rows from a reopened queue when the `ok` finally comes."""
    queue_dir = tmp_path / "queue"
    with DiskQueue(queue_dir, 100) as queue:
        queue.append([Row(int(START) + 300 * i, "mppt", {"V": i}) for i in range(3)])
    rig = make_rig(timeout=60.0)
    gate = threading.Event()
    fake.hold = gate
    rig.forwarder.start()
    wait_for(fake.recorded)  # the batch is on its way, its answer held back

    started = time.monotonic()
    rig.forwarder.stop()
    stopping = time.monotonic() - started
    fake.hold = None
    gate.set()  # the `ok` comes now: too late

    assert stopping < STOP_WAIT_SECONDS  # it did not wait for the answer
    assert not [t for t in threading.enumerate() if t.name.startswith("emoncms-")]
    assert rig.forwarder.status().rows_sent_total == 0
    assert read_rows(queue_dir) == 3  # still queued: sent again next time
    shutil.rmtree(queue_dir)
    rig.feed("mppt", mppt(1))
    assert rig.forwarder.snapshot(START) == []  # a stopped forwarder's queue stays closed…
    assert not queue_dir.exists()  # …and is not recreated
    with pytest.raises(RuntimeError, match="make a new one"):
        rig.forwarder.start()


def test_rows_queued_after_the_queue_directory_was_deleted_survive_a_restart(
        tmp_path: Path, make_rig: MakeRig, fake: FakeEmoncms, caplog: pytest.LogCaptureFixture) -> None:
    queue_dir = tmp_path / "queue"
    rig = make_rig()
    rig.forwarder.start()
    rig.tick({"mppt": mppt(0)}, wait_for)
    wait_for(lambda: rig.forwarder.status().rows_sent_total == 1)
    with fake.down():
        shutil.rmtree(queue_dir)
        ticks = [rig.tick({"mppt": mppt(step)}, wait_for) for step in (1, 2, 3)]
        rig.forwarder.stop()
        restarted = make_rig()
    restarted.forwarder.start()
    wait_for(lambda: restarted.forwarder.status().rows_sent_total == 3)

    assert sorted(p.time for p in fake.stored() if p.input == "V")[1:] == [int(t) for t in ticks]
    deleted = [r for r in caplog.records if "was deleted while in use" in r.getMessage()]
    assert [r.levelno for r in deleted] == [logging.ERROR]


@pytest.mark.slow
def test_a_full_disk_never_sends_accepted_rows_twice_and_drains_once_space_returns(
        small_disk: Path, make_rig: MakeRig, fake: FakeEmoncms) -> None:
    queue_dir = small_disk / "queue"
    backlog = [Row(int(START) + 300 * i, "mppt", {"V": i}) for i in range(12)]
    with DiskQueue(queue_dir, 100) as queue:
        queue.append(backlog)
    rig = make_rig(queue_dir=queue_dir, batch_size=4)
    with fake.down():  # the forwarder opens its queue, then the disk fills up
        assert not rig.forwarder.flush_all(deadline=time.monotonic())
    with closing(sqlite3.connect(queue_dir / "cache.db")) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no room left in the WAL either
    (queue_dir / RESERVE_FILE).unlink()  # used up already (test_disk.py has it): memory is the last resort
    filler = fill_up(small_disk)

    assert rig.forwarder.flush_all(deadline=time.monotonic() + 30)  # every row went out, none deletable

    status = rig.forwarder.status()
    assert bulk_sizes(fake) == [4, 4, 4]  # each row once: none sent again because it could not be deleted
    assert (status.rows_sent_total, status.queue_rows) == (12, 0)
    assert status.errors_total["disk"] >= 3
    assert "database or disk is full" in (status.last_error or "")

    filler.unlink()  # space returns: the next pass deletes the rows sent, and gives the WAL's space back
    assert rig.forwarder.flush_all(deadline=time.monotonic() + 30)
    assert (queue_dir / "cache.db-wal").stat().st_size == 0
    assert read_rows(queue_dir) == 0
    rig.feed("mppt", mppt(7))
    assert rig.forwarder.snapshot(START) != []
    assert rig.forwarder.flush_all(deadline=time.monotonic() + 30)
    assert bulk_sizes(fake) == [4, 4, 4, 1]
    assert rig.forwarder.status().rows_sent_total == 13
