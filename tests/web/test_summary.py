"""The summary at the top of the live page (PvMonit's "Divers" box) and its 24-hour charts, in headless Chromium:
values against the device cards of the same redraw, colours at PvMonit's thresholds, a 360 px phone with a long
emoncms error, the corner when the exporter is lost, French."""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REFUSED_PORT, wait_for
from tests.vedirect_samples import BMV_MAIN
from tests.web.conftest import Browser, Server, start_exporter
from tests.web.test_live_page import DEADLINE, READ_PAGE, SendingDevice, card, open_live_page, sending_device

pytestmark = pytest.mark.slow
__all__ = ["sending_device"]  # the fixture, imported to be used here

READ_SUMMARY = """
const text = (node) => (node ? node.textContent.trim() : null);
const section = document.getElementById("summary");
return {
  hidden: section.hidden,
  order: [...section.querySelectorAll(".tile")].map((tile) => tile.dataset.summary),
  labels: [...section.querySelectorAll(".tile dt")].map(text),
  chartOrder: [...section.querySelectorAll("figure.chart")].map((chart) => chart.dataset.series),
  lang: document.documentElement.lang,
  status: document.getElementById("status").dataset.state,
  forwarder: text(document.getElementById("forwarder")),
  tiles: Object.fromEntries([...section.querySelectorAll(".tile")].map((tile) => [tile.dataset.summary, {
    label: text(tile.querySelector("dt")), value: text(tile.querySelector(".value")), tone: tile.dataset.tone,
    fill: tile.querySelector(".fill") ? getComputedStyle(tile.querySelector(".fill")).backgroundColor : null,
    meter: tile.querySelector("[role=meter]") ? {
      min: Number(tile.querySelector("[role=meter]").getAttribute("aria-valuemin")),
      max: Number(tile.querySelector("[role=meter]").getAttribute("aria-valuemax"))} : null,
  }])),
  charts: Object.fromEntries([...section.querySelectorAll("figure.chart")].map((chart) => [chart.dataset.series, {
    points: Number(chart.dataset.points), label: chart.querySelector("svg").getAttribute("aria-label"),
    path: chart.querySelector("path").getAttribute("d")}])),
  chartsTitle: text(section.querySelector(".charts h3")),
  summaryTop: section.getBoundingClientRect().top,
  firstCardTop: document.querySelector("#cards article.card")?.getBoundingClientRect().top ?? null,
  cards: arguments[0] ? (() => { READ_PAGE })().cards : null,
};
""".replace("READ_PAGE", READ_PAGE)


def read_summary(driver: Any, with_cards: bool = False) -> dict[str, Any]:
    summary: dict[str, Any] = driver.execute_script(READ_SUMMARY, with_cards)
    return summary


def wait_summary(driver: Any, condition: Callable[[dict[str, Any]], object], with_cards: bool = False
                 ) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []

    def probe() -> bool:
        summary = read_summary(driver, with_cards)
        seen.append(summary)
        return bool(condition(summary))

    wait_for(probe, timeout=DEADLINE, interval=0.2)
    return seen[-1]


def number(text: str, lang: str = "en") -> float:
    """`2,000.5 W` (English) or `2 000,5 W` (French, narrow spaces) → 2000.5."""
    digits = text.split("\xa0", maxsplit=1)[0].replace("\u202f", "")
    return float(digits.replace(",", ".") if lang == "fr" else digits.replace(",", ""))


def all_values(summary: dict[str, Any]) -> bool:
    return bool(summary["tiles"]) and all(t["tone"] != "none" for t in summary["tiles"].values())


# PvMonit's colours (www/index.php): the fill of each tone, as style.css paints it in the light scheme.
GREEN, ORANGE, RED = "rgb(21, 128, 61)", "rgb(161, 98, 7)", "rgb(185, 28, 28)"
FILL = {"good": GREEN, "mid": ORANGE, "low": RED}


def test_the_summary_comes_first_and_agrees_with_the_cards(demo: Server, browser: Browser) -> None:
    driver = browser()
    open_live_page(driver, demo.url)
    shown = wait_summary(driver, lambda s: all_values(s) and s["cards"] and all(c["up"] == "true" for c in s["cards"]),
                         with_cards=True)
    tiles = shown["tiles"]
    assert shown["order"] == ["soc", "voltage", "pv", "consumption", "temperature"]
    assert shown["summaryTop"] < shown["firstCardTop"], "the summary is above the device cards"
    # One redraw: the summary says what the cards say (the battery monitor speaks for the battery).
    bmv, mppt = card(shown, "bmv"), card(shown, "mppt")
    assert tiles["soc"]["value"] == bmv["fields"]["SOC"]["value"]
    assert tiles["voltage"]["value"] == bmv["fields"]["V"]["value"]
    assert tiles["pv"]["value"] == mppt["fields"]["PPV"]["value"]  # the demo's one charger: its power is the total
    assert tiles["consumption"]["value"] == card(shown, "house_consumption")["fields"]["consumption"]["value"]
    assert tiles["temperature"]["value"] == card(shown, "shed_temperature")["fields"]["temperature"]["value"]
    assert shown["labels"] == ["State of charge", "Battery voltage", "PV power", "Consumption", "Temperature"]
    # Gauges over the configured ranges (the demo: a 24 V bank, 600 W array, 250 W of consumption), PvMonit's 0-45 °C.
    assert tiles["voltage"]["meter"] == {"min": 22, "max": 30}
    assert tiles["pv"]["meter"] == {"min": 0, "max": 600}
    assert tiles["consumption"]["meter"] == {"min": 0, "max": 250}
    assert tiles["temperature"]["meter"] == {"min": 0, "max": 45}
    watts, celsius = number(tiles["consumption"]["value"]), number(tiles["temperature"]["value"])
    assert tiles["consumption"]["tone"] == ("low" if watts > 200 else "mid" if watts > 125 else "good")
    assert tiles["temperature"]["tone"] == ("low" if not 5 < celsius < 30 else "mid" if not 10 < celsius < 26
                                            else "good")
    assert tiles["consumption"]["fill"] == FILL[tiles["consumption"]["tone"]]


def test_the_last_24_hours_are_drawn_from_the_exporters_5_minute_points(demo: Server, browser: Browser) -> None:
    driver = browser()
    open_live_page(driver, demo.url)
    shown = wait_summary(driver, lambda s: len(s["charts"]) == 3)
    assert shown["chartsTitle"] == "Last 24 hours"
    assert shown["chartOrder"] == ["battery_soc", "pv_power", "consumption"]
    history = demo.api_state()["history"]
    assert history["interval_seconds"] == 300
    assert history["columns"] == ["time", "battery_soc", "battery_voltage", "pv_power", "consumption"]
    assert history["points"], "the slot in progress is a point"
    for series in shown["charts"].values():
        assert series["points"] >= 1
        assert series["path"].startswith("M")
        assert "last 24 hours: from" in series["label"]


# (watts, °C) → the colours PvMonit gave them, with consumption_max 1000 W.
THRESHOLDS = [
    (500, 10.5, "good", "good"),  # 50 % of 1000 W is not above 50 %; 10.5 °C is inside 10-26
    (501, 10, "mid", "mid"),  # above 50 %: orange; at 10 °C: orange
    (800, 26, "mid", "mid"),
    (801, 30, "low", "low"),  # above 80 %: red; at 30 °C: red
    (120, 5, "good", "low"),
    (120, 5.1, "good", "mid"),
    (120, 25.9, "good", "good"),
    (2000, -3, "low", "low"),  # beyond the gauge: a full bar, the number shown
]


def test_colours_at_pvmonits_thresholds(tmp_path: Path, browser: Browser) -> None:
    watts_file, celsius_file = tmp_path / "watts", tmp_path / "celsius"
    watts_file.write_text("0\n")
    celsius_file.write_text("20\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"""
web:
  consumption_max: 1000
probes:
  - {{name: meter, type: file, path: {watts_file}, quantity: power, interval: 1}}
  - {{name: room, type: file, path: {celsius_file}, quantity: temperature, interval: 1}}
""", encoding="utf-8")
    server = start_exporter(["run", "--config.file", str(config)], tmp_path / "run.log")
    try:
        driver = browser()
        open_live_page(driver, server.url)
        for watts, celsius, consumption, temperature in THRESHOLDS:
            watts_file.write_text(f"{watts}\n")
            celsius_file.write_text(f"{celsius}\n")
            def showing(summary: dict[str, Any], w: float = watts, c: float = celsius) -> bool:
                tiles = summary["tiles"]
                return all_values(summary) and (number(tiles["consumption"]["value"]),
                                                number(tiles["temperature"]["value"])) == (w, c)

            shown = wait_summary(driver, showing)["tiles"]
            row = (watts, celsius)
            assert (shown["consumption"]["tone"], shown["temperature"]["tone"]) == (consumption, temperature), row
            assert (shown["consumption"]["fill"], shown["temperature"]["fill"]) == (
                FILL[consumption], FILL[temperature]), row
        assert set(shown) == {"consumption", "temperature"}  # no device: no battery or PV tile
    finally:
        assert server.stop() == 0, server.output()


def test_thresholds_come_from_the_web_section(tmp_path: Path, browser: Browser) -> None:
    (tmp_path / "watts").write_text("300\n")
    (tmp_path / "celsius").write_text("19\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"""
web:
  consumption_max: 400
  consumption_warning_ratio: 0.6
  consumption_alarm_ratio: 0.7
  temperature_warning_low: 20
  temperature_alarm_low: 18
probes:
  - {{name: meter, type: file, path: {tmp_path / "watts"}, quantity: power, interval: 1}}
  - {{name: room, type: file, path: {tmp_path / "celsius"}, quantity: temperature, interval: 1}}
""", encoding="utf-8")
    server = start_exporter(["run", "--config.file", str(config)], tmp_path / "run.log")
    try:
        driver = browser()
        open_live_page(driver, server.url)
        shown = wait_summary(driver, all_values)["tiles"]
        page = server.api_state()["page"]
    finally:
        assert server.stop() == 0, server.output()
    assert (shown["consumption"]["tone"], shown["temperature"]["tone"]) == ("low", "mid")  # 75 % of 400 W; 19 °C
    assert page["consumption_alarm_ratio"] == 0.7
    assert page["temperature_warning_low"] == 20


def test_an_ammeter_without_power_voltage_gives_no_consumption_gauge(tmp_path: Path, browser: Browser) -> None:
    (tmp_path / "amps").write_text("3.5\n")
    (tmp_path / "celsius").write_text("19\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"""
probes:
  - {{name: amps, type: file, path: {tmp_path / "amps"}, quantity: current, interval: 1}}
  - {{name: room, type: file, path: {tmp_path / "celsius"}, quantity: temperature, interval: 1}}
""", encoding="utf-8")
    server = start_exporter(["run", "--config.file", str(config)], tmp_path / "run.log")
    try:
        driver = browser()
        open_live_page(driver, server.url)
        shown = wait_summary(driver, lambda s: s["tiles"].get("temperature", {}).get("tone", "none") != "none",
                             with_cards=True)
        summary = server.api_state()["summary"]
    finally:
        assert server.stop() == 0, server.output()
    # Amperes alone are no watts: a consumption tile would say "unavailable" for ever.
    assert shown["order"] == ["temperature"]
    assert [c["name"] for c in shown["cards"]] == ["amps", "room"]
    assert (summary["consumption"], summary["consumption_probes"]) == (None, 0)


LONG_PATH = "/emoncms/" + "a-very-long-path-segment-without-any-space" * 8
# A probe's last error names its command or its port: a path with underscores, no hyphen, is one long word.
LONG_COMMAND = "/opt/temperv14/" + "a_thermometer_program_that_is_not_installed" * 4


def test_a_360_px_phone_never_scrolls_sideways_and_a_lost_exporter_is_unknown_in_two_languages(
    tmp_path: Path, browser: Browser, sending_device: Callable[[dict[str, str]], SendingDevice]
) -> None:
    device = sending_device(BMV_MAIN)
    config = tmp_path / "config.yaml"
    config.write_text(f"""
devices:
  - {{name: battery, port: {device.port.path}}}
probes:
  - {{name: shed, type: command, command: [{LONG_COMMAND}, -c], quantity: temperature, interval: 1}}
emoncms:
  url: http://127.0.0.1:{REFUSED_PORT}{LONG_PATH}
  apikey: 0123456789abcdef0123456789abcdef
  queue_dir: {tmp_path / "queue"}
  interval: 1
""", encoding="utf-8")
    server = start_exporter(["run", "--config.file", str(config)], tmp_path / "run.log")
    try:
        driver = browser(width=360, height=780)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 360, "height": 780, "deviceScaleFactor": 2, "mobile": True})
        open_live_page(driver, server.url)
        def long_errors_shown(summary: dict[str, Any]) -> bool:
            alerts = [alert for c in summary["cards"] or [] if c["name"] == "shed" for alert in c["alerts"]]
            return LONG_PATH in (summary["forwarder"] or "") and any(LONG_COMMAND in a for a in alerts) and all(
                summary["tiles"][tile]["tone"] != "none" for tile in ("soc", "voltage"))

        shown = wait_summary(driver, long_errors_shown, with_cards=True)
        assert set(shown["tiles"]) == {"soc", "voltage", "temperature"}
        assert shown["tiles"]["temperature"]["value"] == "Unavailable"
        widths = driver.execute_script("""
            const corner = document.getElementById('forwarder').getBoundingClientRect();
            const rights = [...document.querySelectorAll('body *')].map((n) => n.getBoundingClientRect().right);
            return {page: document.documentElement.scrollWidth, window: window.innerWidth, right: corner.right,
                    widest: Math.max(...rights)};""")
        assert widths["window"] == 360
        assert widths["page"] <= 360, widths
        assert widths["widest"] <= 360, widths
        assert widths["right"] <= 360, widths

        assert server.stop() == 0, server.output()
        lost = wait_summary(driver, lambda s: s["status"] == "offline")
        assert lost["forwarder"] == "emoncms: unknown"
        assert all(t["value"] == "Unavailable" for t in lost["tiles"].values())
        assert lost["charts"] == {}
        driver.find_element("css selector", "button[data-lang=fr]").click()
        french = wait_summary(driver, lambda s: s["lang"] == "fr")
        assert french["forwarder"] == "emoncms\u202f: inconnu"
        assert all(t["value"] == "Indisponible" for t in french["tiles"].values())
        assert driver.execute_script("return document.documentElement.scrollWidth") <= 360
    finally:
        server.stop()


def test_the_summary_in_french(demo: Server, browser: Browser) -> None:
    driver = browser(lang="fr-FR")
    open_live_page(driver, demo.url)
    shown = wait_summary(driver, lambda s: all_values(s) and s["charts"])
    assert shown["lang"] == "fr"
    assert shown["labels"] == [
        "État de charge", "Tension batterie", "Puissance solaire", "Consommation", "Température"]
    assert re.fullmatch(r"\d+,\d\xa0%", shown["tiles"]["soc"]["value"])  # decimal comma
    assert re.fullmatch(r"\d+,\d\d\xa0V", shown["tiles"]["voltage"]["value"])
    assert shown["chartsTitle"] == "Dernières 24 heures"
    assert all("dernières 24 heures" in c["label"] for c in shown["charts"].values())
    assert "Les courbes se remplissent" in driver.execute_script("return document.getElementById('summary').innerText")
