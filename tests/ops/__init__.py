"""Tests of the operations kit (Grafana dashboard, Prometheus rules, systemd and udev), and what they share:
where the files are, the dashboard's panel queries, Grafana's macros and the metric names a PromQL expression
reads."""

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import PROCESS_COLLECTOR

from pvmonit_exporter.collector.catalogue import ALL_METRICS

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "grafana" / "dashboards" / "pvmonit.json"
# Grafana's dashboard model as a JSON Schema (made by scripts/grafana-dashboard-schema: origin and licence inside).
DASHBOARD_SCHEMA = Path(__file__).resolve().parent / "data" / "grafana-dashboard.schema.json"
PROVISIONING = REPO / "grafana" / "provisioning"
PROMETHEUS = REPO / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
ALERTS_TEST = PROMETHEUS / "alerts_test.yml"
SCRAPE_CONFIG = PROMETHEUS / "scrape-config.yml"
AGENT_CONFIG = PROMETHEUS / "agent.yml"
SYSTEMD = REPO / "systemd"
UNIT = SYSTEMD / "pvmonit-exporter.service"
AGENT_UNIT = SYSTEMD / "pvmonit-agent.service"
UDEV_RULES = SYSTEMD / "99-vedirect.rules"

# What Prometheus adds to every target by itself; alert rules may use it, dashboards do not need to.
PROMETHEUS_SYNTHETIC = frozenset({"up"})


def exporter_metric_names() -> frozenset[str]:
    """Every series name the exporter can expose: the catalogue, the forwarder's and the process metrics."""
    names = {doc.name for doc in ALL_METRICS}
    names |= {sample.name for family in PROCESS_COLLECTOR.collect() for sample in family.samples}
    return frozenset(names)


# --- the dashboard -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    ref_id: str
    expr: str

    def __str__(self) -> str:
        return f"panel {self.panel!r} query {self.ref_id}: {self.expr}"


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def content_panels(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in iter_panels(dashboard) if panel.get("type") != "row"]


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    return [
        PanelQuery(panel.get("title", "?"), target.get("refId", "?"), target["expr"])
        for panel in content_panels(dashboard)
        for target in panel.get("targets", [])
        if not target.get("hide")
    ]


# Grafana's global variables a query may use, and what they become for a test against a 1 s scrape.
_MACRO = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def substitute_macros(expr: str, variables: Mapping[str, str]) -> str:
    """`expr` as Grafana sends it: `$var`, `${var}` and `${var:format}` replaced; an unknown one is an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"no value for Grafana variable ${name} in {expr!r}")
        return variables[name]

    return _MACRO.sub(replace, expr)


# --- PromQL --------------------------------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$:])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                       "group_left", "group_right", "inf", "nan", "atan2"})


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, keywords, labels and durations left out)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\b", " ", text)
    text = re.sub(r"\boffset\s+\S+", " ", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in _KEYWORDS}


def selectors(expr: str, prefix: str) -> list[tuple[str, str]]:
    """(metric, matchers) for every selector of a metric starting with `prefix`; matchers "" when there are none."""
    # Strings masked with placeholders of the same length: a name inside a string is no selector, and the
    # matchers are read back from the original text at the same place.
    masked = _STRING.sub(lambda m: '"' + "_" * (len(m.group(0)) - 2) + '"', expr)
    pattern = rf"(?<![\w:])({re.escape(prefix)}[A-Za-z0-9_:]*)\s*(?:\{{([^{{}}]*)\}})?"
    return [(m.group(1), expr[m.start(2):m.end(2)] if m.group(2) is not None else "")
            for m in re.finditer(pattern, masked)]


# --- Prometheus rules --------------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"] if "alert" in rule]
