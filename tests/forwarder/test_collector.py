"""The forwarder's metrics: exact names (a contract for dashboards), pre-created labels, absent oldest row."""

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from pvmonit_exporter.collector.catalogue import FORWARDER_METRICS
from pvmonit_exporter.collector.forwarder import ForwarderCollector
from pvmonit_exporter.forwarder.queue import DiskQueue
from pvmonit_exporter.forwarder.snapshot import Row
from tests.forwarder.conftest import MPPT_BLOCK, START, Rig
from tests.forwarder.fake_emoncms import FakeEmoncms
from tests.helpers import wait_for


def samples(rig: Rig) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(ForwarderCollector(rig.forwarder))
    text = generate_latest(registry).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def test_names_and_pre_created_labels_before_anything_happened(make_rig) -> None:
    assert samples(make_rig()) == {
        "pvmonit_emoncms_queue_rows": 0.0,
        "pvmonit_emoncms_rows_sent_total": 0.0,
        'pvmonit_emoncms_rows_dropped_total{reason="queue_full"}': 0.0,
        'pvmonit_emoncms_rows_dropped_total{reason="disk_error"}': 0.0,
        'pvmonit_emoncms_rows_dropped_total{reason="dead_letter_full"}': 0.0,
        "pvmonit_emoncms_dead_letter_rows": 0.0,
        'pvmonit_emoncms_errors_total{kind="connection"}': 0.0,
        'pvmonit_emoncms_errors_total{kind="timeout"}': 0.0,
        'pvmonit_emoncms_errors_total{kind="http"}': 0.0,
        'pvmonit_emoncms_errors_total{kind="auth"}': 0.0,
        'pvmonit_emoncms_errors_total{kind="content"}': 0.0,
        'pvmonit_emoncms_errors_total{kind="disk"}': 0.0,
        "pvmonit_emoncms_last_success_timestamp_seconds": 0.0,
        "pvmonit_emoncms_snapshots_total": 0.0,
        'pvmonit_emoncms_snapshots_skipped_total{reason="clock"}': 0.0,
    }


def test_values_follow_the_forwarder(tmp_path: Path, make_rig, fake: FakeEmoncms) -> None:
    with DiskQueue(tmp_path / "queue", 100) as queue:
        queue.append([Row(int(START) - 300, "mppt", {"V": 1})])
    rig = make_rig()
    with fake.down():  # down before the start: a quick forwarder would otherwise send the row first
        rig.forwarder.start()
        wait_for(lambda: rig.forwarder.status().errors_total["connection"] >= 1)
        waiting = samples(rig)
    rig.tick({"mppt": MPPT_BLOCK}, wait_for)
    wait_for(lambda: rig.forwarder.status().rows_sent_total == 2)
    after = samples(rig)

    assert waiting["pvmonit_emoncms_queue_rows"] == 1.0
    assert waiting["pvmonit_emoncms_queue_oldest_row_timestamp_seconds"] == int(START) - 300
    assert waiting['pvmonit_emoncms_errors_total{kind="connection"}'] >= 1.0
    assert after["pvmonit_emoncms_rows_sent_total"] == 2.0
    assert after["pvmonit_emoncms_snapshots_total"] == 1.0
    assert after["pvmonit_emoncms_last_success_timestamp_seconds"] == rig.clock()
    assert "pvmonit_emoncms_queue_oldest_row_timestamp_seconds" not in after  # absent when empty


def test_the_documented_names_are_the_exposed_ones(make_rig) -> None:
    exposed = {name.split("{")[0] for name in samples(make_rig())}
    documented = {doc.name for doc in FORWARDER_METRICS}

    assert documented - exposed == {"pvmonit_emoncms_queue_oldest_row_timestamp_seconds"}
    assert exposed <= documented


EXPOSITION_BEFORE_ANYTHING_HAPPENED = """\
# HELP pvmonit_emoncms_queue_rows Rows waiting in the emoncms disk queue
# TYPE pvmonit_emoncms_queue_rows gauge
pvmonit_emoncms_queue_rows 0.0
# HELP pvmonit_emoncms_rows_sent_total Rows emoncms accepted (answered ok)
# TYPE pvmonit_emoncms_rows_sent_total counter
pvmonit_emoncms_rows_sent_total 0.0
# HELP pvmonit_emoncms_rows_dropped_total Rows lost, by reason (queue_full, disk_error, dead_letter_full)
# TYPE pvmonit_emoncms_rows_dropped_total counter
pvmonit_emoncms_rows_dropped_total{reason="queue_full"} 0.0
pvmonit_emoncms_rows_dropped_total{reason="disk_error"} 0.0
pvmonit_emoncms_rows_dropped_total{reason="dead_letter_full"} 0.0
# HELP pvmonit_emoncms_dead_letter_rows Rows emoncms refused for their content, kept in the dead-letter store
# TYPE pvmonit_emoncms_dead_letter_rows gauge
pvmonit_emoncms_dead_letter_rows 0.0
# HELP pvmonit_emoncms_errors_total Failed sends and disk errors, by kind (connection, timeout, http, auth, \
content, disk)
# TYPE pvmonit_emoncms_errors_total counter
pvmonit_emoncms_errors_total{kind="connection"} 0.0
pvmonit_emoncms_errors_total{kind="timeout"} 0.0
pvmonit_emoncms_errors_total{kind="http"} 0.0
pvmonit_emoncms_errors_total{kind="auth"} 0.0
pvmonit_emoncms_errors_total{kind="content"} 0.0
pvmonit_emoncms_errors_total{kind="disk"} 0.0
# HELP pvmonit_emoncms_last_success_timestamp_seconds Unix time emoncms last accepted rows; 0 before the first \
success
# TYPE pvmonit_emoncms_last_success_timestamp_seconds gauge
pvmonit_emoncms_last_success_timestamp_seconds 0.0
# HELP pvmonit_emoncms_snapshots_total Snapshots taken
# TYPE pvmonit_emoncms_snapshots_total counter
pvmonit_emoncms_snapshots_total 0.0
# HELP pvmonit_emoncms_snapshots_skipped_total Snapshots not taken, by reason (clock: the system clock is before \
the build year)
# TYPE pvmonit_emoncms_snapshots_skipped_total counter
pvmonit_emoncms_snapshots_skipped_total{reason="clock"} 0.0
"""


def test_the_exposition_text_is_exactly_the_contract(make_rig) -> None:
    """Byte for byte: order, HELP and TYPE lines (from the catalogue), no `_created` samples, labels."""
    registry = CollectorRegistry()
    registry.register(ForwarderCollector(make_rig().forwarder))

    assert generate_latest(registry).decode() == EXPOSITION_BEFORE_ANYTHING_HAPPENED


def test_the_oldest_row_follows_the_queue_length(tmp_path: Path, make_rig, fake: FakeEmoncms) -> None:
    with DiskQueue(tmp_path / "queue", 100) as queue:
        queue.append([Row(1_777_636_800, "mppt", {"V": 1})])
    rig = make_rig()
    registry = CollectorRegistry()
    registry.register(ForwarderCollector(rig.forwarder))
    with fake.down():  # the row stays queued
        rig.forwarder.start()
        text = generate_latest(registry).decode()

    assert ("pvmonit_emoncms_queue_rows 1.0\n"
            "# HELP pvmonit_emoncms_queue_oldest_row_timestamp_seconds Unix time of the oldest queued row; absent "
            "when the queue is empty\n"
            "# TYPE pvmonit_emoncms_queue_oldest_row_timestamp_seconds gauge\n"
            "pvmonit_emoncms_queue_oldest_row_timestamp_seconds 1.7776368e+09\n"
            "# HELP pvmonit_emoncms_rows_sent_total ") in text
