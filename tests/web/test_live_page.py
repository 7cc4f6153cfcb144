"""The live page in a real headless Chromium, against the real `pvmonit-exporter demo` (and one `run` for staleness).

The page redraws its cards every refresh, so the DOM is read in one `execute_script` at a time (never through
element handles that the next refresh would make stale), and every expectation is polled with a generous deadline.
"""

import contextlib
import fcntl
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pvmonit_exporter.vedirect.enums import CHARGE_STATES
from pvmonit_exporter.vedirect.framing import encode_block
from tests.helpers import REFUSED_PORT, FakeDevicePort, wait_for
from tests.vedirect_samples import BMV_MAIN, MPPT
from tests.web.conftest import ROOT, Browser, Server, start_exporter

pytestmark = pytest.mark.slow

DEADLINE = 30.0

# Everything a test needs from the page, read in one go.
READ_PAGE = """
const text = (node) => (node ? node.textContent.trim() : null);
return {
  lang: document.documentElement.lang,
  status: document.getElementById("status").dataset.state,
  statusText: text(document.getElementById("status")),
  forwarder: text(document.getElementById("forwarder")),
  body: document.body.innerText,
  cards: [...document.querySelectorAll("#cards article.card")].map((card) => ({
    name: card.dataset.name, kind: card.dataset.kind, up: card.dataset.up, text: card.innerText,
    classes: [...card.classList],
    title: text(card.querySelector("h2")), product: text(card.querySelector(".product")),
    badge: text(card.querySelector(".badge")), alerts: [...card.querySelectorAll(".alert")].map(text),
    fields: Object.fromEntries([...card.querySelectorAll(".row")].map(
      (row) => [row.dataset.field, {label: text(row.querySelector("dt")), value: text(row.querySelector(".value"))}])),
    meters: [...card.querySelectorAll("[role=meter]")].map((m) => ({
      label: m.getAttribute("aria-label"), text: m.getAttribute("aria-valuetext"),
      min: Number(m.getAttribute("aria-valuemin")), max: Number(m.getAttribute("aria-valuemax")),
      now: m.hasAttribute("aria-valuenow") ? Number(m.getAttribute("aria-valuenow")) : null})),
  })),
};
"""


def read_page(driver: Any) -> dict[str, Any]:
    page: dict[str, Any] = driver.execute_script(READ_PAGE)
    return page


def wait_page(driver: Any, condition: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    """The page as read when `condition(page)` first held (polled, with a generous deadline)."""
    pages: list[dict[str, Any]] = []

    def probe() -> bool:
        page = read_page(driver)
        if condition(page):
            pages.append(page)
            return True
        return False

    wait_for(probe, timeout=DEADLINE, interval=0.2)
    return pages[-1]


def open_live_page(driver: Any, url: str) -> dict[str, Any]:
    driver.get(url)
    return wait_page(driver, lambda page: page["status"] == "live" and page["cards"])


def wait_all_live(driver: Any) -> dict[str, Any]:
    """The page once every card is live (the demo's devices send their first blocks within a second or two)."""
    return wait_page(driver, lambda page: page["cards"] and all(c["up"] == "true" for c in page["cards"]))


def wait_card(driver: Any, name: str, condition: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    return card(wait_page(driver, lambda page: condition(card(page, name))), name)


def card(page: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [c for c in page["cards"] if c["name"] == name]
    assert len(found) == 1, f"expected one card named {name!r}, got {[c['name'] for c in page['cards']]}"
    return found[0]


def test_a_card_for_every_device_and_probe_with_its_values(demo: Server, browser: Browser) -> None:
    driver = browser()
    page = open_live_page(driver, demo.url)
    state = demo.api_state()
    assert {d["kind"] for d in state["devices"]} >= {"bmv", "mppt", "inverter"}, "the demo lost a device"
    assert state["probes"], "the demo has a temperature probe"
    page = wait_all_live(driver)
    assert [c["name"] for c in page["cards"]] == [d["name"] for d in state["devices"]] + [
        p["name"] for p in state["probes"]]
    assert page["lang"] == "en"
    state = demo.api_state()
    for device in state["devices"]:
        shown = card(page, device["name"])
        assert shown["title"] == device["name"]
        assert device["product"]
        assert device["product"] in shown["product"]
        assert shown["kind"] == device["kind"]
        assert re.fullmatch(r"\d+\.\d\d\xa0V", shown["fields"]["V"]["value"]), shown["fields"]["V"]
        assert shown["fields"]["V"]["label"] == "Battery voltage"
        assert "Last block" in shown["text"]
        if "CS" in device["fields"]:  # the state of operation in words, as the device names it
            assert shown["badge"] in CHARGE_STATES.values()
    bmv = card(page, next(d["name"] for d in state["devices"] if d["kind"] == "bmv"))
    assert re.fullmatch(r"\d+\.\d\xa0%", bmv["fields"]["SOC"]["value"])
    assert {"SOC", "I", "TTG"} <= set(bmv["fields"])
    mppt = card(page, next(d["name"] for d in state["devices"] if d["kind"] == "mppt"))
    assert re.fullmatch(r"\d+\xa0W", mppt["fields"]["PPV"]["value"])
    assert re.fullmatch(r"\d+\.\d\d\xa0kWh", mppt["fields"]["H20"]["value"])
    assert {"VPV", "LOAD"} <= set(mppt["fields"])
    (shunt,) = [d for d in state["devices"] if d["source"] == "ble"]  # heard over the demo's simulated radio
    assert "(simulated Bluetooth)" in card(page, shunt["name"])["product"]
    assert {"SOC", "I", "CE", "T"} <= set(card(page, shunt["name"])["fields"])
    inverter = card(page, next(d["name"] for d in state["devices"] if d["kind"] == "inverter"))
    assert {"AC_OUT_V", "AC_OUT_I", "AC_OUT_S"} <= set(inverter["fields"])
    assert inverter["badge"] in CHARGE_STATES.values()
    for probe in state["probes"]:
        shown = card(page, probe["name"])
        assert shown["kind"] == "probe"
        if probe["quantity"] == "temperature":
            assert re.fullmatch(r"-?\d+\.\d\xa0°C", shown["fields"]["temperature"]["value"])
    if state["forwarder"] is None:
        assert page["forwarder"] == "emoncms: off"
    else:
        assert "emoncms" in page["forwarder"]


def test_values_update_without_reloading(demo: Server, browser: Browser) -> None:
    driver = browser()
    open_live_page(driver, demo.url)
    driver.execute_script("window.notReloaded = true;")

    def values(page: dict[str, Any]) -> dict[str, dict[str, str]]:
        return {c["name"]: {k: v["value"] for k, v in c["fields"].items()} for c in page["cards"]}

    def moved(page: dict[str, Any]) -> list[str]:
        now = values(page)
        return [f"{name} {label}: {text} → {now[name][label]}" for name, shown in first.items()
                for label, text in shown.items() if label in now.get(name, {}) and now[name][label] != text]

    first = values(wait_page(driver, lambda page: all(values(page).values())))
    assert len(first) >= 4
    wait_page(driver, moved)  # the demo's values move every second; the page reads them every two
    assert driver.execute_script("return window.notReloaded === true;"), "the page reloaded instead of updating"


def test_bars_are_labelled_meters_with_the_configured_ranges(demo: Server, browser: Browser) -> None:
    driver = browser()
    open_live_page(driver, demo.url)
    page = wait_all_live(driver)
    ranges = demo.api_state()["page"]
    meters = [m for c in page["cards"] for m in c["meters"]]
    assert len(meters) >= 5  # a voltage bar per device, state of charge, PV power, AC output
    for meter in meters:
        assert meter["label"], meter
        assert meter["text"], meter
        assert meter["now"] is not None, meter
        assert meter["min"] <= meter["now"] <= meter["max"], meter
    for shown in page["cards"]:
        voltage = [m for m in shown["meters"] if m["label"] == "Battery voltage"]
        if "V" in shown["fields"]:
            assert len(voltage) == 1
            assert voltage[0]["min"] == ranges["battery_voltage_min"]
            assert voltage[0]["max"] == ranges["battery_voltage_max"]
            assert voltage[0]["text"] == shown["fields"]["V"]["value"]
        pv = [m for m in shown["meters"] if m["label"] == "PV power"]
        if "PPV" in shown["fields"]:
            assert (pv[0]["min"], pv[0]["max"]) == (0, ranges["pv_power_max"])
        soc = [m for m in shown["meters"] if m["label"] == "State of charge"]
        if "SOC" in shown["fields"]:
            assert (soc[0]["min"], soc[0]["max"]) == (0, 100)


def test_french_from_accept_language_and_the_switch_back_to_english(demo: Server, browser: Browser) -> None:
    driver = browser(lang="fr-FR")
    assert driver.execute_script("return navigator.languages[0];").startswith("fr")
    open_live_page(driver, demo.url)
    page = wait_all_live(driver)
    assert page["lang"] == "fr"
    assert driver.title == "PvMonit — en direct"
    for words in ("Tension batterie", "État de charge", "Puissance solaire", "Dernier bloc il y a",
                  "Puissance de sortie AC", "En direct"):
        assert words in page["body"], words
    assert "Battery voltage" not in page["body"]
    assert "Last block" not in page["body"]
    inverter = next(c for c in page["cards"] if c["kind"] == "inverter")
    assert inverter["badge"] not in CHARGE_STATES.values(), "the state of operation must be in French"
    assert re.search(r"\d+,\d\d\xa0V", inverter["fields"]["V"]["value"]), "a French decimal comma"

    driver.find_element("css selector", "button[data-lang=en]").click()
    wait_for(lambda: (p := read_page(driver))["lang"] == "en" and "Battery voltage" in p["body"], timeout=DEADLINE)
    assert driver.find_element("css selector", "button[data-lang=en]").get_attribute("aria-pressed") == "true"
    page = open_live_page(driver, demo.url)  # a new visit keeps the choice
    assert page["lang"] == "en"
    assert "Tension batterie" not in read_page(driver)["body"]
    driver.find_element("css selector", "button[data-lang=fr]").click()
    wait_for(lambda: "Tension batterie" in read_page(driver)["body"], timeout=DEADLINE)


def test_english_browser_gets_english(demo: Server, browser: Browser) -> None:
    driver = browser(lang="en-GB")
    page = open_live_page(driver, demo.url)
    assert page["lang"] == "en"
    assert "Live · updated at" in page["statusText"]
    assert "Tension" not in page["body"]


def test_no_request_leaves_127_0_0_1_and_no_console_error(demo: Server, browser: Browser) -> None:
    driver = browser()
    driver.get("about:blank")
    driver.get_log("performance")  # the browser's own start page is not ours: count from here
    driver.get_log("browser")
    open_live_page(driver, demo.url)
    driver.find_element("css selector", "button[data-lang=fr]").click()
    requests: list[str] = []

    def seen_refreshes() -> bool:
        for entry in driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                requests.append(message["params"]["request"]["url"])
        return sum(urlsplit(url).path == "/api/state" for url in requests) >= 3

    wait_for(seen_refreshes, timeout=DEADLINE, interval=0.5)
    outside = [url for url in requests if not url.startswith("http://127.0.0.1:")]
    assert not outside, f"requests left 127.0.0.1: {outside}"
    assert {urlsplit(url).netloc for url in requests} == {urlsplit(demo.url).netloc}
    assert {urlsplit(url).path for url in requests} >= {"/", "/static/app.js", "/static/style.css", "/static/icon.svg",
                                                         "/api/state"}
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


CONTRAST = """
// WCAG relative luminance and contrast of every text against the card or page behind it, and of bar fills.
const rgb = (color) => color.match(/[\\d.]+/g).map(Number);
const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
const lin = (c) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
const ratio = (a, b) => {
  const [x, y] = [lum(rgb(a)), lum(rgb(b))].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
};
const background = (node) => {
  for (; node; node = node.parentElement) {
    const color = getComputedStyle(node).backgroundColor;
    if (rgb(color).length === 3 || rgb(color)[3] > 0) return color;
  }
  return "rgb(255, 255, 255)";
};
const bad = [];
for (const node of document.querySelectorAll("body *")) {
  const own = [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim());
  if (!own || node.closest("noscript") || !node.getClientRects().length) continue;
  const style = getComputedStyle(node);
  const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
  const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
  const value = ratio(style.color, background(node));
  const what = `${node.tagName}.${node.className} "${node.textContent.trim().slice(0, 30)}"`;
  if (value < needed) bad.push(`${what} ${value.toFixed(2)}`);
}
for (const fill of document.querySelectorAll("[role=meter] .fill")) {
  const value = ratio(getComputedStyle(fill).backgroundColor, background(fill.parentElement));
  if (value < 3) bad.push(`bar ${fill.className} ${value.toFixed(2)}`);
}
return bad;
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_and_bars_have_enough_contrast(demo: Server, browser: Browser, scheme: str) -> None:
    driver = browser()
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                           {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
    open_live_page(driver, demo.url)
    wait_all_live(driver)
    assert driver.execute_script(f"return matchMedia('(prefers-color-scheme: {scheme})').matches;")
    assert driver.execute_script(CONTRAST) == []


def _layout(driver: Any, width: int, height: int) -> dict[str, Any]:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    return wait_for(lambda: driver.execute_script("""
        const cards = [...document.querySelectorAll('#cards article.card')];
        return window.innerWidth === arguments[0] && cards.length && {
          lefts: [...new Set(cards.map((c) => Math.round(c.getBoundingClientRect().left)))],
          overflow: document.documentElement.scrollWidth - window.innerWidth,
          smallest: Math.min(...[...document.querySelectorAll('body *')].filter((n) => n.getClientRects().length
            && [...n.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim()))
            .map((n) => parseFloat(getComputedStyle(n).fontSize))),
        };""", width), timeout=DEADLINE)


def test_one_column_on_a_phone_several_on_a_desktop(demo: Server, browser: Browser, tmp_path: Path) -> None:
    driver = browser()
    open_live_page(driver, demo.url)
    phone = _layout(driver, 390, 844)
    assert len(phone["lefts"]) == 1, phone
    assert phone["overflow"] <= 0, "the page scrolls sideways on a phone"
    assert phone["smallest"] >= 12, "text too small to read on a phone"
    desktop = _layout(driver, 1280, 900)
    assert len(desktop["lefts"]) >= 3, desktop
    assert desktop["overflow"] <= 0
    # docs/live-page.png comes from here: PVMONIT_SCREENSHOT=1 pytest tests/web -k desktop
    wait_all_live(driver)
    wait_for(lambda: driver.execute_script("return document.querySelectorAll('figure.chart').length >= 3;"),
             timeout=DEADLINE)
    height = driver.execute_script("return Math.ceil(document.querySelector('footer').getBoundingClientRect().bottom);")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False})
    target = ROOT / "docs" / "live-page.png" if os.environ.get("PVMONIT_SCREENSHOT") else tmp_path / "live-page.png"
    target.parent.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(target))
    assert target.stat().st_size > 10_000


class SendingDevice:
    """A pseudo-terminal on which a device sends `block` every 0.2 s until `silence()`."""

    def __init__(self, block: dict[str, str]) -> None:
        self.port = FakeDevicePort()
        # Never block the test when nobody reads (before the exporter opens the port, after it stops).
        fcntl.fcntl(self.port.master, fcntl.F_SETFL, fcntl.fcntl(self.port.master, fcntl.F_GETFL) | os.O_NONBLOCK)
        self.frame = encode_block(block)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            with contextlib.suppress(BlockingIOError):
                self.port.write(self.frame)

    def silence(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def sending_device() -> Iterator[Callable[[dict[str, str]], SendingDevice]]:
    devices: list[SendingDevice] = []

    def make(block: dict[str, str]) -> SendingDevice:
        devices.append(SendingDevice(block))
        return devices[-1]

    yield make
    for device in devices:
        device.silence()
        device.port.close()


@pytest.fixture
def never_seen_port() -> Iterator[FakeDevicePort]:
    port = FakeDevicePort()
    yield port
    port.close()


def run_exporter(tmp_path: Path, ports: dict[str, str]) -> Server:
    """`pvmonit-exporter run` on these devices (name → port), with a 1 s stale timeout."""
    config = tmp_path / "config.yaml"
    lines = ["stale_timeout: 1", "devices:"] + [f"  - {{name: {name}, port: {path}}}" for name, path in ports.items()]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return start_exporter(["run", "--config.file", str(config)], tmp_path / "run.log")


NUMBER_WITH_UNIT = re.compile(r"\d\s?(V|A|W|VA|kWh|Ah|%|°C)\b")


def stale_age(shown: dict[str, Any]) -> int:
    """N from "Stale — last data N s ago"; fails the test when the card does not say it."""
    match = re.search(r"Stale — last data (\d+)\xa0s ago", shown["text"])
    assert match, shown["text"]
    return int(match[1])


def test_a_device_that_went_silent_is_shown_stale_with_its_age_and_no_numbers(
    tmp_path: Path, browser: Browser, sending_device: Callable[[dict[str, str]], SendingDevice],
    never_seen_port: FakeDevicePort,
) -> None:
    silent_device = sending_device(MPPT)
    server = run_exporter(tmp_path, {"garage_mppt": silent_device.port.path, "unplugged": never_seen_port.path})
    try:
        driver = browser()
        open_live_page(driver, server.url)
        live = wait_card(driver, "garage_mppt", lambda c: c["up"] == "true")
        assert live["fields"]["V"]["value"] == "26.18\xa0V"  # the block's 26180 mV
        assert live["badge"] == "Bulk"
        never = card(read_page(driver), "unplugged")
        assert never["up"] == "false"
        assert "Never seen" in never["text"]
        assert not NUMBER_WITH_UNIT.search(never["text"])
        assert not never["meters"]

        silent_device.silence()
        stale = wait_card(driver, "garage_mppt", lambda c: c["up"] == "false")
        assert stale["badge"] == "Stale"
        assert "stale" in stale["classes"]
        assert "BlueSolar MPPT" in stale["product"], "who it is stays known"
        assert not stale["fields"], stale
        assert not stale["meters"], stale
        assert not NUMBER_WITH_UNIT.search(stale["text"]), stale["text"]
        assert "26.18" not in stale["text"]
        first_age = stale_age(stale)
        assert first_age >= 1  # stale_timeout: 1
        # The age keeps counting up while the device stays silent.
        wait_card(driver, "garage_mppt", lambda c: stale_age(c) >= first_age + 2)

        # The exporter itself goes away: the page says so and stops showing numbers that look current.
        assert server.stop() == 0
        gone = wait_page(driver, lambda page: page["status"] == "offline")
        assert "No connection to the exporter" in gone["statusText"]
        assert all(c["up"] == "false" for c in gone["cards"])
        assert not any(NUMBER_WITH_UNIT.search(c["text"]) for c in gone["cards"])
    finally:
        status = server.stop()
    assert status == 0, server.output()


def test_errors_alarms_and_off_reasons_in_words_highlighted(
    tmp_path: Path, browser: Browser, sending_device: Callable[[dict[str, str]], SendingDevice]
) -> None:
    alarm = sending_device(BMV_MAIN)  # AR 5: low voltage and low SOC, Alarm ON; T "---"
    fault = sending_device({**MPPT, "CS": "0", "ERR": "2", "OR": "0x00000011"})
    server = run_exporter(tmp_path, {"battery": alarm.port.path, "roof_mppt": fault.port.path})
    try:
        driver = browser()
        open_live_page(driver, server.url)
        page = wait_all_live(driver)
        battery, roof = card(page, "battery"), card(page, "roof_mppt")
        assert battery["alerts"] == ["Alarm: Low voltage, Low SOC"]
        assert "T" not in battery["fields"], "a temperature the device sends as --- is not shown"
        assert roof["alerts"] == ["Error: Battery voltage too high", "Off reason: No input power, Protection active"]
        assert roof["badge"] == "Off"
        highlighted = driver.execute_script("""
            return [...document.querySelectorAll('.alert')].map((a) => getComputedStyle(a).backgroundColor);""")
        assert all(color not in ("rgba(0, 0, 0, 0)", "transparent") for color in highlighted), highlighted
        assert "alerting" in battery["classes"]
        assert "alerting" in roof["classes"]

        driver.find_element("css selector", "button[data-lang=fr]").click()
        page = wait_page(driver, lambda p: p["lang"] == "fr" and card(p, "battery")["alerts"] != battery["alerts"])
        assert card(page, "battery")["alerts"] == ["Alarme\u202f: Tension basse, État de charge bas"]
        assert card(page, "roof_mppt")["alerts"] == [
            "Erreur\u202f: Tension batterie trop haute",
            "Raison de l'arrêt\u202f: Pas de puissance en entrée, Protection active",
        ]
        assert card(page, "roof_mppt")["badge"] == "Arrêt"
    finally:
        status = server.stop()
    assert status == 0, server.output()


def test_a_temperature_keeps_the_tenths_a_bluetooth_advert_gives(
    tmp_path: Path, browser: Browser, sending_device: Callable[[dict[str, str]], SendingDevice]
) -> None:
    """A Smart Battery Sense's 22.5 °C is not rounded to 22 (a VE.Direct cable's whole degrees stay whole)."""
    sense = sending_device({**BMV_MAIN, "T": "22.5"})
    whole = sending_device({**BMV_MAIN, "T": "25"})
    server = run_exporter(tmp_path, {"sense": sense.port.path, "cabled": whole.port.path})
    try:
        driver = browser()
        open_live_page(driver, server.url)
        page = wait_all_live(driver)
        assert card(page, "sense")["fields"]["T"]["value"] == "22.5\xa0°C"
        assert card(page, "cabled")["fields"]["T"]["value"] == "25\xa0°C"
    finally:
        status = server.stop()
    assert status == 0, server.output()


def test_the_forwarder_corner_shows_a_growing_backlog_while_emoncms_is_unreachable(
    tmp_path: Path, browser: Browser, sending_device: Callable[[dict[str, str]], SendingDevice]
) -> None:
    """With emoncms down, rows pile up in the queue: the corner shows the backlog, "never" sent, and warns."""
    device = sending_device(MPPT)
    config = tmp_path / "config.yaml"
    config.write_text(
        "devices:\n"
        f"  - {{name: garage_mppt, port: {device.port.path}}}\n"
        "emoncms:\n"
        f"  url: http://127.0.0.1:{REFUSED_PORT}/emoncms\n"
        "  apikey: 0123456789abcdef0123456789abcdef\n"
        f"  queue_dir: {tmp_path / 'queue'}\n"
        "  interval: 1\n",
        encoding="utf-8",
    )
    server = start_exporter(["run", "--config.file", str(config)], tmp_path / "run.log")
    try:
        driver = browser()
        open_live_page(driver, server.url)
        corner = "const f = document.getElementById('forwarder'); return [f.className, f.innerText];"

        def backlog() -> tuple[str, str] | None:
            classes, text = driver.execute_script(corner)
            match = re.search(r"Backlog\s+(\d+) rows", text)
            return (classes, text) if match and int(match[1]) >= 4 else None

        classes, text = wait_for(backlog, timeout=DEADLINE, interval=0.3)
        assert re.search(r"Last send\s+never", text), text
        assert "Last error" in text
        assert "0123456789abcdef" not in text
        assert "warn" in classes.split()  # the oldest row is older than three intervals
        assert server.api_state()["forwarder"]["queue_rows"] >= 4
    finally:
        status = server.stop()
    assert status == 0, server.output()


READ_DAYS = """
const card = document.querySelector(`#cards article.card[data-name="${arguments[0]}"]`);
if (!card) return null;
const bars = [...card.querySelectorAll(".day-bar")];
const figures = card.querySelector(".day-figures");
return {
  bars: bars.map((bar) => ({days_ago: Number(bar.dataset.daysAgo), pressed: bar.getAttribute("aria-pressed"),
                            label: bar.getAttribute("aria-label"), height: bar.firstChild.style.height})),
  title: card.querySelector(".day-title") && card.querySelector(".day-title").textContent,
  shown: figures ? Number(figures.dataset.daysAgo) : null,
  figures: figures ? Object.fromEntries([...figures.querySelectorAll(".day-row")].map(
    (row) => [row.dataset.field, row.querySelector("dd").textContent])) : {},
};
"""


def test_a_charger_shows_30_days_of_yield_and_a_tapped_day_s_figures(demo: Server, browser: Browser) -> None:
    """The demo's MPPT answers HEX: its month of history becomes a bar chart; a tap shows that day."""
    driver = browser()
    open_live_page(driver, demo.url)
    name = next(d["name"] for d in demo.api_state()["devices"] if d["kind"] == "mppt")
    days = wait_for(lambda: (driver.execute_script(READ_DAYS, name) or {}).get("bars") and
                    driver.execute_script(READ_DAYS, name), timeout=DEADLINE)
    assert [bar["days_ago"] for bar in days["bars"]] == list(range(30, -1, -1))  # oldest on the left
    assert days["shown"] == 1
    assert days["title"] == "Yesterday"
    history = next(d for d in demo.api_state()["devices"] if d["name"] == name)["history"]
    assert days["figures"]["yield_kwh"] == f"{history[1]['yield_kwh']:.2f}\xa0kWh"
    tallest = max(history, key=lambda day: day["yield_kwh"] or 0)["days_ago"]
    assert next(bar["height"] for bar in days["bars"] if bar["days_ago"] == tallest) == "100%"

    driver.execute_script(
        f'document.querySelector(`[data-name="{name}"] .day-bar[data-days-ago="3"]`).click();')
    chosen = wait_for(lambda: (days := driver.execute_script(READ_DAYS, name)) and days["shown"] == 3 and days,
                      timeout=DEADLINE)
    assert chosen["title"] == "3 days ago"
    assert chosen["figures"]["yield_kwh"] == f"{history[3]['yield_kwh']:.2f}\xa0kWh"
    assert chosen["figures"]["bulk_min"] == f"{history[3]['bulk_min']}\xa0min"
    assert [bar["days_ago"] for bar in chosen["bars"] if bar["pressed"] == "true"] == [3]
    assert driver.execute_script("return document.activeElement.dataset.daysAgo;") == "3"  # focus kept
    time.sleep(2.5)  # a refresh redraws the card: the chosen day stays
    assert driver.execute_script(READ_DAYS, name)["shown"] == 3
