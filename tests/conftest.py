"""Suite-wide rules: a test that starts a process (a subprocess, a fork, a server program) is marked
`@pytest.mark.slow`, so that `scripts/test --fast` (`-m "not slow"`) runs exactly the tests that start none.

Enforced, not hoped for: for a test without the marker, every way Python starts a process raises here and
fails the test (its fixtures' set-up and tear-down included), with a line saying to mark it."""

import _posixsubprocess
import os
import subprocess
import threading
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pvmonit_exporter.demo.ports import Simulator

if TYPE_CHECKING:
    from tests.daemon.test_lifecycle import Daemon

MARKER = "slow"


class _Guard:
    """Which test runs now, whether it may start processes, and what it started without the marker."""

    def __init__(self) -> None:
        self.test: str | None = None  # None between tests (collection, session fixtures): anything goes
        self.allowed = True
        self.started: list[str] = []
        self.lock = threading.Lock()

    def check(self, how: str) -> None:
        with self.lock:
            if self.allowed or self.test is None:
                return
            self.started.append(how)
        raise RuntimeError(f"{self.test} started a process ({how}) but is not marked @pytest.mark.{MARKER}")


GUARD = _Guard()


def _guarded(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def start(*args: Any, **kwargs: Any) -> Any:
        GUARD.check(name)
        return original(*args, **kwargs)

    return start


def pytest_configure(config: pytest.Config) -> None:
    execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined] # private, but every Popen runs it

    def guarded_execute_child(popen: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> Any:
        GUARD.check(f"subprocess {args!r}"[:200])
        return execute_child(popen, args, *rest, **kwargs)

    subprocess.Popen._execute_child = guarded_execute_child  # type: ignore[attr-defined]
    # multiprocessing's spawn and forkserver call fork_exec directly; fork, pty.fork and os.system start no Popen.
    _posixsubprocess.fork_exec = _guarded("multiprocessing", _posixsubprocess.fork_exec)
    for name in ("fork", "forkpty", "system", "posix_spawn", "posix_spawnp"):
        setattr(os, name, _guarded(f"os.{name}", getattr(os, name)))


def _phase(item: pytest.Item) -> Generator[None, None, None]:
    with GUARD.lock:
        GUARD.test, GUARD.allowed, GUARD.started = item.nodeid, item.get_closest_marker(MARKER) is not None, []
    try:
        yield
    finally:
        with GUARD.lock:
            started, GUARD.test, GUARD.allowed = GUARD.started, None, True
    if started:
        pytest.fail(f"started a process ({started[0]}) without @pytest.mark.{MARKER}: `scripts/test --fast` "
                    "must start none", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _phase(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _phase(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _phase(item))


@pytest.fixture(scope="session", autouse=True)
def _simulated_ports_behind_links(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every simulator a test makes gives its devices by-id-like links (as a real Pi's cables have), never its
    /dev/pts/N: once a simulator closes its terminals the kernel hands N to the next one opened, and a daemon of
    that test still retrying the port for a moment would open, lock and reconfigure another test's terminal (seen
    as "/dev/pts/0 is in use by another program" in a parallel run). Session-wide, so that module fixtures'
    simulators get links too."""
    original = Simulator.__init__

    def with_links(self: Simulator, *args: Any, link_dir: str | Path | None = None, **kwargs: Any) -> None:
        original(self, *args, link_dir=link_dir or tmp_path_factory.mktemp("by-id"), **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Simulator, "__init__", with_links)
        yield


@pytest.fixture
def daemons() -> Iterator[list["Daemon"]]:
    """The exporters a test starts (tests.daemon.test_lifecycle.Daemon), killed at its end if still running."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.process.poll() is None:
            daemon.process.kill()
            daemon.process.wait()
