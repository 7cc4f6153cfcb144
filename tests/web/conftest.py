"""Fixtures for the live page: the real `pvmonit-exporter demo` in a subprocess, and headless Chromium drivers."""

import json
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.test_exporter import get
from tests.helpers import listening_ports, require_tool, start_daemon

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

    class OwnPortService(Service):
        """chromedriver with `--port=0`: it binds a port of its choosing, read from /proc once it listens.
        Selenium's own Service picks a free port and hands it over, which another worker may take meanwhile."""

        def command_line_args(self) -> list[str]:
            return ["--port=0", *self.service_args]

        bound = False

        def is_connectable(self) -> bool:  # what start() polls until chromedriver answers, and stop() after
            if not self.bound:
                ports = listening_ports(self.process.pid)
                if not ports:
                    return False
                self.port, self.bound = ports[0], True
            return bool(super().is_connectable())

    drivers: list[Any] = []

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
        driver = webdriver.Chrome(service=OwnPortService(chromedriver, log_output=str(tmp_path / "chromedriver.log")),
                                  options=options)
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.quit()
