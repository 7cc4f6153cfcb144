"""The Prometheus alert rules and scrape snippet, checked and unit-tested by promtool.

`promtool test rules prometheus/alerts_test.yml` shows each alert firing when it should and quiet when it
should not; the mutation test below proves every alert's firing case is really exercised.
"""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import require_tool
from tests.ops import ALERTS, ALERTS_TEST, SCRAPE_CONFIG, alert_rules, load_yaml

NEVER = "vector(0) > 1"


def _promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("promtool"), *map(str, args)], capture_output=True, text=True,
                          timeout=60, cwd=cwd, check=False)


def _test_cases() -> list[dict[str, Any]]:
    return [case for test in load_yaml(ALERTS_TEST)["tests"] for case in test.get("alert_rule_test", [])]


@pytest.mark.slow
def test_rules_are_valid() -> None:
    result = _promtool("check", "rules", ALERTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


@pytest.mark.slow
def test_rules_unit_tests_pass() -> None:
    result = _promtool("test", "rules", ALERTS_TEST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = _test_cases()
    for rule in alert_rules():
        mine = [case for case in cases if case["alertname"] == rule["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{rule['alert']}: no case where it fires"
        assert any(not case["exp_alerts"] for case in mine), f"{rule['alert']}: no case where it stays quiet"
    names = {rule["alert"] for rule in alert_rules()}
    assert {case["alertname"] for case in cases} <= names, "a test names an alert that does not exist"


def test_every_alert_is_labelled_and_explained() -> None:
    rules = alert_rules()
    assert {"PvmonitExporterDown", "VictronDeviceDown", "BatteryStateOfChargeLow", "VictronChargerError",
            "EmoncmsBacklogGrowing", "EmoncmsNoSuccess", "VeDirectChecksumErrorsRising"} <= {r["alert"] for r in rules}
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]


@pytest.mark.slow
@pytest.mark.parametrize("alert", [rule["alert"] for rule in alert_rules()])
def test_unit_tests_notice_an_alert_that_never_fires(alert: str, tmp_path: Path) -> None:
    """Break one alert (its expression never matches): `promtool test rules` must fail."""
    document = load_yaml(ALERTS)
    for group in document["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = NEVER
    (tmp_path / ALERTS.name).write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    shutil.copy(ALERTS_TEST, tmp_path / ALERTS_TEST.name)
    result = _promtool("test", "rules", ALERTS_TEST.name, cwd=tmp_path)
    assert result.returncode != 0, f"the unit tests still pass with {alert} disabled"
    assert f"alertname: {alert}," in result.stdout + result.stderr


@pytest.mark.slow
def test_scrape_config_loads_the_rules(tmp_path: Path) -> None:
    """The snippet is a valid configuration on its own, naming the rules file where the README puts it."""
    config = load_yaml(SCRAPE_CONFIG)
    (rule_file,) = config["rule_files"]
    shutil.copy(SCRAPE_CONFIG, tmp_path / "prometheus.yml")
    shutil.copy(ALERTS, tmp_path / rule_file)
    result = _promtool("check", "config", tmp_path / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_exporter_down_alert_names_the_scrape_job() -> None:
    (job,) = load_yaml(SCRAPE_CONFIG)["scrape_configs"]
    down = next(rule for rule in alert_rules() if rule["alert"] == "PvmonitExporterDown")
    assert f'job="{job["job_name"]}"' in down["expr"]
    targets = job["static_configs"][0]["targets"]
    assert targets == ["localhost:9737"], "the exporter's default port"


SITE_PREFIX = "{{ with $labels.site }}[{{ . }}] {{ end }}"


def test_every_summary_names_the_site_when_there_is_one() -> None:
    """At the central store every alert carries its site; on a single site (no label) the summary is as before."""
    for rule in alert_rules():
        assert rule["annotations"]["summary"].startswith(SITE_PREFIX), rule["alert"]


def test_rules_keep_sites_apart() -> None:
    """An aggregation or a match on instance alone would mix two sites whose exporters share an address
    (localhost:9737 on every Pi): each keeps `site`."""
    for rule in alert_rules():
        for clause in re.findall(r"\b(?:by|on)\s*\(([^()]*)\)", rule["expr"]):
            labels = {label.strip() for label in clause.split(",")}
            assert "site" in labels, f"{rule['alert']}: ({clause}) drops the site"
