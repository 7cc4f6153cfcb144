"""Small helpers shared by tests: waiting for a condition, real pseudo-terminals, required tools."""

import os
import shutil
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll `probe` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s (last value: {value!r})")
        time.sleep(interval)


class FakeDevicePort:
    """A real pseudo-terminal standing for a VE.Direct cable: tests write to `master`, the exporter opens `path`.

    With `link`, the exporter is given a stable symlink (like /dev/serial/by-id/…) that `unplug()` removes and
    `replug()` points at a brand-new terminal — what a USB cable does.
    """

    def __init__(self, link: Path | None = None) -> None:
        self.link = link
        self.master = -1
        self.slave = -1
        self.replug()

    @property
    def path(self) -> str:
        return str(self.link) if self.link is not None else os.ttyname(self.slave)

    def replug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no line discipline: CR must stay CR before the reader sets raw mode
        if self.link is not None:
            self.link.unlink(missing_ok=True)
            self.link.symlink_to(os.ttyname(self.slave))

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def unplug(self) -> None:
        if self.link is not None:
            self.link.unlink(missing_ok=True)
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1

    close = unplug


def require_tool(name: str) -> str:
    """The path of an external tool; absent → the test fails in CI (CI=true) and is skipped elsewhere."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (Debian: see .ci/run)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path
