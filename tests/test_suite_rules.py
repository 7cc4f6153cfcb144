"""The suite's own rules (tests/conftest.py): a test that starts a process carries the `slow` mark, so that
`scripts/test --fast` starts none; and the helpers that start programs learn the port they bound."""

import multiprocessing
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import GUARD
from tests.helpers import listening_port, start_daemon


def _spawn_python() -> None:
    multiprocessing.get_context("spawn").Process(target=print).start()


@pytest.mark.parametrize(("start", "how"), [
    (lambda: subprocess.run(["true"], check=False), "subprocess ['true']"),
    (lambda: os.system("true"), "os.system"),  # noqa: S605 - never runs: the guard raises first
    (os.fork, "os.fork"),
    (_spawn_python, "multiprocessing"),
])
def test_an_unmarked_test_that_starts_a_process_fails(start: Callable[[], object], how: str) -> None:
    with pytest.raises(RuntimeError, match=r"started a process .* but is not marked @pytest.mark.slow"):
        start()
    assert [entry.split(" (", 1)[0] for entry in GUARD.started] == [how]
    GUARD.started.clear()  # caught here on purpose: otherwise the test fails after its call, as it should


@pytest.mark.slow
def test_a_marked_test_may(tmp_path: Path) -> None:
    assert subprocess.run(["true"], check=False).returncode == 0
    assert GUARD.started == []


@pytest.mark.slow
def test_the_daemon_reports_the_port_it_bound_and_proc_agrees(tmp_path: Path) -> None:
    """`--web.listen-address 127.0.0.1:0`: the kernel picks the port, the log line names it, and it is the one
    the process listens on (what `listening_port` finds for programs that do not say)."""
    config = tmp_path / "config.yaml"
    config.write_text(f"devices:\n  - name: a\n    port: {tmp_path / 'absent'}\n", encoding="utf-8")
    process, url = start_daemon(["run", "--config.file", str(config)], tmp_path / "log")
    try:
        port = int(url.removeprefix("http://127.0.0.1:"))
        assert port > 0
        assert listening_port(process) == port
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0


SWALLOWING = """
import subprocess

import pytest


def test_unmarked_swallowing():
    try:
        subprocess.run(["true"], check=False)
    except RuntimeError:
        pass  # a helper that swallows the error must not hide the process it tried to start


@pytest.mark.slow
def test_marked():
    subprocess.run(["true"], check=True)
"""


@pytest.mark.slow
def test_a_test_that_swallows_the_error_still_fails(tmp_path: Path) -> None:
    """pytest on a copy of the rules: the unmarked test fails after its call, with the line that says why."""
    (tmp_path / "conftest.py").write_text((Path(__file__).parent / "conftest.py").read_text(encoding="utf-8"),
                                          encoding="utf-8")
    (tmp_path / "test_rules_copy.py").write_text(SWALLOWING, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers = slow: starts a process\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q",
                             str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 passed" in result.stdout
    assert "FAILED test_rules_copy.py::test_unmarked_swallowing" in result.stdout
    assert "started a process (subprocess ['true']) without @pytest.mark.slow" in result.stdout
