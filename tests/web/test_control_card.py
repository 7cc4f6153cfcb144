"""The live page's card per switched load: state and since when, the reason in words, the guard holding it back.
A real `pvmonit-exporter run` on a pseudo-terminal device, read by headless Chromium."""

import re
from pathlib import Path
from typing import Any

import pytest

from tests.vedirect_samples import MPPT
from tests.web.conftest import Browser, start_exporter
from tests.web.test_live_page import card, open_live_page, sending_device, wait_page  # noqa: F401 - fixture

pytestmark = pytest.mark.slow


def test_a_card_per_actuator_says_why_and_what_holds_it(tmp_path: Path, browser: Browser,
                                                        sending_device: Any) -> None:  # noqa: F811
    device = sending_device(MPPT)  # CS 3 (Bulk), V 26180 mV
    config = tmp_path / "config.yaml"
    config.write_text(f"""stale_timeout: 2
devices:
  - {{name: garage_mppt, port: {device.port.path}}}
control:
  dry_run: false
  interval: 0.5
actuators:
  - {{name: heater, type: command, on: [/bin/true], off: [/bin/true]}}
  - {{name: pump, type: command, on: [/bin/true], off: [/bin/true]}}
rules:
  - actuator: heater
    on_when: {{all: [{{value: garage_mppt.CS, in: [Bulk]}}, {{value: garage_mppt.V, at_least: 26}}]}}
    off_when: {{value: garage_mppt.V, below: 25}}
  - actuator: pump
    on_when: {{value: garage_mppt.V, at_least: 26}}
    min_off: 3600
""", encoding="utf-8")
    server = start_exporter(["run", "--config.file", str(config)], tmp_path / "run.log")
    try:
        driver = browser()
        open_live_page(driver, server.url)
        page = wait_page(driver, lambda p: any(c["name"] == "heater" and "on since" in c["text"]
                                               for c in p["cards"]))
        heater, pump = card(page, "heater"), card(page, "pump")
        assert heater["kind"] == "actuator"
        assert heater["badge"] == "on"
        assert re.search(r"on since \d\d:\d\d: Bulk and 26\.18 V ≥ 26 V", heater["text"]), heater["text"]
        assert heater["fields"]["mode"]["value"] == "automatic"
        assert "guard" not in heater["fields"]
        assert pump["badge"] == "off"
        assert re.fullmatch(r"min off: (59|60) min left", pump["fields"]["guard"]["value"]), pump["fields"]
        assert "Dry run" not in heater["text"]

        driver.find_element("css selector", "button[data-lang=fr]").click()
        page = wait_page(driver, lambda p: p["lang"] == "fr")
        assert re.search(r"allumé depuis \d\d:\d\d\u202f: Bulk", card(page, "heater")["text"])
    finally:
        status = server.stop()
    assert status == 0, server.output()
