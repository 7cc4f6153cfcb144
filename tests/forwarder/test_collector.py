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
    rig.forwarder.start()
    with fake.down():
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
