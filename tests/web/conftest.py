"""Fixtures for the live page: the real `pvmonit-exporter demo` in a subprocess, and headless Chromium drivers."""

import json
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.test_exporter import get
from tests.helpers import port_holder, require_tool, start_daemon

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    """An exporter process serving on `url` (http://127.0.0.1:PORT/)."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def api_state(self) -> dict[str, Any]:
        status, _, body = get(self.url + "api/state")
        assert status == 200, (status, body[:500])
        document: dict[str, Any] = json.loads(body)
        return document

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"the exporter ignored SIGTERM:\n{self.output()}")


def start_exporter(args: list[str], log: Path) -> Server:
    """`python -m pvmonit_exporter ARGS --web.listen-address 127.0.0.1:0`, listening and healthy."""
    process, base = start_daemon(args, log, cwd=ROOT)
    server = Server(process, f"{base}/", log)
    try:
        assert get(f"{base}/healthz")[::2] == (200, b"ok\n"), server.output()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real demo: simulated BMV-702, MPPT and Phoenix inverter on pseudo-terminals, plus a probe."""
    server = start_exporter(["demo"], tmp_path_factory.mktemp("demo") / "demo.log")
    yield server
    status = server.stop()
    assert status == 0, f"the demo exited with {status} on SIGTERM:\n{server.output()}"


Browser = Callable[..., Any]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """`browser(lang="en-US")` → a fresh headless Chromium (own profile, console and network logs on)."""
    chromium = require_tool("chromium")
    chromedriver = require_tool("chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers: list[Any] = []
    holders: list[socket.socket] = []

    def make(lang: str = "en-US", width: int = 1280, height: int = 900) -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--disable-default-apps",
                         "--disable-extensions", "--hide-scrollbars", f"--window-size={width},{height}",
                         f"--user-data-dir={tmp_path / f'profile-{len(drivers)}'}", f"--lang={lang}"):
            options.add_argument(argument)
        primary = lang.split("-", maxsplit=1)[0]
        options.add_experimental_option("prefs", {"intl.accept_languages": f"{lang},{primary}"})
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        # chromedriver must be given its port, and binds it on IPv4 and IPv6 (exiting when either is taken):
        # the port is held free on both for it, so that no other test's port 0 gets it meanwhile. (Selenium's
        # own choice is a port found free on IPv4 and released.)
        holder = port_holder(dual_stack=True)
        holders.append(holder)
        service = Service(chromedriver, port=holder.getsockname()[1], log_output=str(tmp_path / "chromedriver.log"))
        driver = webdriver.Chrome(service=service, options=options)
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.quit()
    for holder in holders:
        holder.close()
