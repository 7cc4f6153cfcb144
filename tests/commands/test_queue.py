"""`pvmonit-exporter queue [--flush]`: the summary lines and the exit status."""

from pathlib import Path

import pytest

import pvmonit_exporter.commands.queue as queue_cli
from pvmonit_exporter.commands.queue import queue_command
from pvmonit_exporter.config import Config, DeviceConfig
from pvmonit_exporter.errors import UserError
from pvmonit_exporter.forwarder.queue import DiskQueue
from pvmonit_exporter.forwarder.snapshot import Row
from tests.config import assert_one_line_error, run_cli
from tests.forwarder.conftest import emoncms_config
from tests.forwarder.fake_emoncms import FakeEmoncms

DEVICES = (DeviceConfig("mppt", "/dev/ttyUSB0"),)
NOW = 1_780_315_500  # rows are stamped around the fake's manual clock


def make_config(tmp_path: Path, url: str) -> Config:
    return Config(DEVICES, emoncms=emoncms_config(tmp_path / "queue", url), source="test.yaml")


def fill(tmp_path: Path, count: int) -> None:
    with DiskQueue(tmp_path / "queue", 100) as queue:
        queue.append([Row(NOW + 300 * i, "mppt", {"V": i}) for i in range(count)])


def test_summary_without_flush(tmp_path: Path, fake: FakeEmoncms, capsys: pytest.CaptureFixture[str]) -> None:
    fill(tmp_path, 3)

    assert queue_command(make_config(tmp_path, fake.url), flush=False) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"queue: {tmp_path / 'queue'}"
    assert lines[1] == "rows queued: 3"
    assert lines[2].startswith("oldest row: ")
    assert lines[2].endswith(f"({NOW})")
    assert lines[3].endswith(f"({NOW + 600})")
    assert lines[4] == f"dead letters: 0 (in {tmp_path / 'queue' / 'dead'})"
    assert fake.recorded() == []


def test_flush_sends_everything_and_exits_0(tmp_path: Path, fake: FakeEmoncms,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    fill(tmp_path, 3)

    assert queue_command(make_config(tmp_path, fake.url), flush=True) == 0

    out = capsys.readouterr().out
    assert "sent: 3 rows" in out
    assert "rows queued: 0" in out
    assert [p.value for p in fake.stored()] == [0.0, 1.0, 2.0]


def test_flush_exits_1_when_rows_remain(tmp_path: Path, fake: FakeEmoncms, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(queue_cli, "FLUSH_DEADLINE_SECONDS", 0.5)
    fill(tmp_path, 2)
    fake.go_down()

    assert queue_command(make_config(tmp_path, fake.url), flush=True) == 1

    captured = capsys.readouterr()
    assert "rows queued: 2" in captured.out
    assert "Connection refused" in captured.err


def test_without_an_emoncms_section_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"^test\.yaml: no emoncms section: the forwarder is off$"):
        queue_command(Config(DEVICES, source="test.yaml"), flush=True)


@pytest.mark.slow
@pytest.mark.parametrize("flush", [[], ["--flush"]])
def test_without_an_emoncms_section_the_command_prints_one_line_and_exits_2(tmp_path: Path,
                                                                             flush: list[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("devices:\n  - name: mppt\n    port: /dev/ttyUSB0\n")

    result = run_cli("queue", *flush, "--config.file", str(config))

    line = assert_one_line_error(result, "")
    assert line.endswith(": no emoncms section: the forwarder is off")
    assert "config.yaml" in line


@pytest.mark.slow
def test_the_summary_reports_a_damaged_queue_and_leaves_it_where_it_is(tmp_path: Path, fake: FakeEmoncms) -> None:
    queue_dir = tmp_path / "queue"
    queue_dir.mkdir()
    (queue_dir / "cache.db").write_bytes(b"")  # truncated to nothing
    config = tmp_path / "config.yaml"
    config.write_text(f"devices:\n  - name: mppt\n    port: /dev/ttyUSB0\nemoncms:\n  url: {fake.url}\n"
                      f"  apikey: 0123456789abcdef0123456789abcdef\n  queue_dir: {queue_dir}\n")

    result = run_cli("queue", "--config.file", str(config))

    line = assert_one_line_error(result, "")
    assert line.endswith("is damaged (it is empty (0 bytes)); left as it is")
    assert sorted(path.name for path in queue_dir.iterdir()) == ["cache.db"]
