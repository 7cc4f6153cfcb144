"""The Grafana dashboard and its provisioning files, statically: importable through the UI and by provisioning,
portable (no data source of ours hard-coded), units everywhere, and only metrics the exporter produces.

test_end_to_end.py runs every query against a real Prometheus scraping the exporter, test_many_sites.py
against the central store that several sites push to.
"""

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from pvmonit_exporter.vedirect.enums import CHARGE_STATES, CHARGER_ERRORS
from tests.ops import (
    DASHBOARD_SCHEMA,
    PROMETHEUS_SYNTHETIC,
    PROVISIONING,
    alert_rules,
    content_panels,
    exporter_metric_names,
    iter_panels,
    load_dashboard,
    load_yaml,
    metric_names,
    panel_queries,
    selectors,
    substitute_macros,
)

DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


def _walk(node: object, path: str = "") -> Iterator[tuple[str, object]]:
    """(json path, value) for every value in the document."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")


def _panel_by_title(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    matches = [panel for panel in content_panels(dashboard) if panel.get("title") == title]
    assert len(matches) == 1, f"expected one panel titled {title!r}"
    return matches[0]


# --- the PromQL helper itself: the checks below are only as good as it ------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('rate(vedirect_blocks_total{device=~"$device"}[$__rate_interval])', {"vedirect_blocks_total"}),
        ("sum by (reason) (rate(x_total[5m] offset 1h)) / on (a) group_left (b) y * 3.6e6",
         {"x_total", "y"}),
        ('label_replace(vector(1), "state", "Bulk", "", "") or up and bool inf', {"up"}),
        ("(time() - a > 3 * 3600) and on (instance, job) (time() - b > 10)", {"a", "b"}),
        ('max by (device) ((m{state="x"} == 1) * on (state) group_left ()'
         ' (label_replace(vector(0), "s", "t", "", "")))', {"m"}),
    ],
)
def test_metric_names_parser(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_substitute_macros_refuses_unknown_variables() -> None:
    assert substitute_macros('r{d=~"$device"}[${__rate_interval}]', {"device": ".+", "__rate_interval": "10s"}) \
        == 'r{d=~".+"}[10s]'
    with pytest.raises(KeyError):
        substitute_macros("x[$__range]", {})


# --- importable both ways, portable ---------------------------------------------------------------------------


def test_dashboard_identity(dashboard: dict[str, Any]) -> None:
    assert dashboard["id"] is None, "an id makes UI import and provisioning clash with existing dashboards"
    assert dashboard["uid"] == "pvmonit-exporter", "a fixed uid keeps links and provisioning updates stable"
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    assert "__inputs" not in dashboard, "data sources come from the `datasource` variable, not import inputs"
    ids = [panel["id"] for panel in iter_panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_datasource_variable_is_used_everywhere(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"
    for panel in content_panels(dashboard):
        assert panel["datasource"] == DATASOURCE_REF, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target.get("datasource", DATASOURCE_REF) == DATASOURCE_REF, panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE_REF, variable["name"]


def test_no_datasource_uid_is_hard_coded(dashboard: dict[str, Any]) -> None:
    for path, value in _walk(dashboard):
        if path == ".uid":
            continue  # the dashboard's own uid
        if path.endswith((".uid", ".datasource")):
            if isinstance(value, str):
                assert value in ("${datasource}", "$datasource"), f"{path} = {value!r}"
            elif path.endswith(".datasource"):
                assert isinstance(value, dict), f"{path} = {value!r}"


def _variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in dashboard["templating"]["list"]}


def test_menus_narrow_down_site_exporter_device(dashboard: dict[str, Any]) -> None:
    """Site, then exporter (instance) within the sites, then device within those: each menu lists what the
    ones before it leave."""
    variables = _variables(dashboard)
    assert list(variables) == ["datasource", "site", "instance", "device"]
    assert variables["site"]["query"] == "label_values(pvmonit_exporter_build_info, site)"
    assert variables["instance"]["query"] == 'label_values(pvmonit_exporter_build_info{site=~"$site"}, instance)'
    assert variables["device"]["query"] == 'label_values(vedirect_up{site=~"$site", instance=~"$instance"}, device)'
    for name in ("site", "instance", "device"):
        variable = variables[name]
        assert variable["type"] == "query", name
        assert variable["multi"] is True, name
        assert variable["includeAll"] is True, name
        assert variable["current"]["value"] == ["$__all"], f"{name}: opens on All"


def test_site_all_matches_a_single_sites_prometheus(dashboard: dict[str, Any]) -> None:
    """A single site's own Prometheus has no `site` label: "All" must be a regex that matches the empty value
    (`.*`, not Grafana's default alternation of the listed values, which is empty there)."""
    variables = _variables(dashboard)
    assert variables["site"]["allValue"] == ".*"
    assert variables["instance"]["allValue"] == ".*"
    assert re.fullmatch(variables["site"]["allValue"], "")


_FILTERS = ('site=~"$site"', 'instance=~"$instance"')


def test_every_exporter_metric_is_filtered_by_site_and_instance(dashboard: dict[str, Any]) -> None:
    checked = 0
    for query in panel_queries(dashboard):
        for name in metric_names(query.expr):
            found = selectors(query.expr, name)
            assert found, f"{query}: no selector of {name}"
            for metric, matchers in found:
                for wanted in _FILTERS:
                    assert wanted in matchers, f"{query}: {metric} is not filtered by {wanted}"
                if metric.startswith("vedirect_"):
                    assert 'device=~"$device"' in matchers, f"{query}: {metric} is not filtered by $device"
                checked += 1
    assert checked >= 40


_AGGREGATION = re.compile(
    r"\b(sum|min|max|avg|count|stddev|stdvar|group|topk|bottomk|quantile)\s*(\bby\s*\(([^()]*)\))?\s*\("
)
_MATCHING = re.compile(r"\b(on|ignoring)\s*\(([^()]*)\)")


def test_aggregations_keep_sites_apart(dashboard: dict[str, Any]) -> None:
    """Against the central store, a sum or max over all series would mix sites: every aggregation keeps `site`
    (and `instance`, but for a site's total), and every one-to-one match includes it."""
    aggregations = 0
    for query in panel_queries(dashboard):
        for match in _AGGREGATION.finditer(query.expr):
            assert match.group(2), f"{query}: {match.group(1)} without `by`"
            assert "site" in {label.strip() for label in match.group(3).split(",")}, f"{query}: {match.group(0)}"
            aggregations += 1
        for match in _MATCHING.finditer(query.expr):
            labels = {label.strip() for label in match.group(2).split(",")}
            if match.group(1) == "on" and labels & {"instance", "job"}:
                assert "site" in labels, f"{query}: {match.group(0)}"
    assert aggregations >= 4


def test_aggregation_check_notices_a_site_mixing_query() -> None:
    mixing = 'sum(vedirect_panel_power_watts{site=~"$site"})'
    assert [m.group(2) for m in _AGGREGATION.finditer(mixing)] == [None]
    assert [m.group(3) for m in _AGGREGATION.finditer("max by (site, device) (x)")] == ["site, device"]


def test_legends_name_the_site(dashboard: dict[str, Any]) -> None:
    for panel in content_panels(dashboard):
        for target in panel["targets"]:
            legend = target.get("legendFormat", "__auto")
            assert legend == "__auto" or "{{site}}" in legend, f"{panel['title']!r}: legend {legend!r}"


# --- Grafana's own dashboard model ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grafana_schema() -> jsonschema.Draft7Validator:
    schema = json.loads(DASHBOARD_SCHEMA.read_text(encoding="utf-8"))
    assert "@grafana/schema@" in schema["$comment"], "the schema names its origin"
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_dashboard_follows_grafanas_schema(dashboard: dict[str, Any],
                                           grafana_schema: jsonschema.Draft7Validator) -> None:
    errors = [f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
              for error in grafana_schema.iter_errors(dashboard)]
    assert not errors, "\n".join(errors)


def _misspelt_panel_key(dashboard: dict[str, Any]) -> None:
    panel = content_panels(dashboard)[0]
    panel["gridpos"] = panel.pop("gridPos")


def _variable_without_name(dashboard: dict[str, Any]) -> None:
    del dashboard["templating"]["list"][1]["name"]


def _text_as_schema_version(dashboard: dict[str, Any]) -> None:
    dashboard["schemaVersion"] = "39"


def _unknown_variable_type(dashboard: dict[str, Any]) -> None:
    dashboard["templating"]["list"][1]["type"] = "querry"


@pytest.mark.parametrize("damage", [_misspelt_panel_key, _variable_without_name, _text_as_schema_version,
                                    _unknown_variable_type])
def test_grafanas_schema_rejects_a_damaged_dashboard(dashboard: dict[str, Any],
                                                     grafana_schema: jsonschema.Draft7Validator,
                                                     damage: Any) -> None:
    damaged = copy.deepcopy(dashboard)
    damage(damaged)
    assert not grafana_schema.is_valid(damaged)


def test_every_panel_has_a_unit(dashboard: dict[str, Any]) -> None:
    panels = content_panels(dashboard)
    assert len(panels) >= 20
    for panel in panels:
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        assert isinstance(unit, str), f"panel {panel['title']!r} has no unit"
        assert unit, f"panel {panel['title']!r} has no unit"


# Metric suffix → the Grafana units a panel showing only such metrics may use.
_UNITS = {
    "_volts": {"volt"}, "_amperes": {"amp"}, "_watts": {"watt", "kwatt"}, "_ratio": {"percentunit"},
    "_celsius": {"celsius"}, "_voltamperes": {"voltamp"}, "_joules": {"kwatth"}, "_coulombs": {"amph"},
    "_bytes": {"bytes", "decbytes"},
}


def test_units_match_the_metrics(dashboard: dict[str, Any]) -> None:
    checked = 0
    for panel in content_panels(dashboard):
        names = {name for target in panel["targets"] for name in metric_names(target["expr"])}
        names -= {"pvmonit_exporter_build_info"}  # used only to pick the exporter's process metrics
        suffixes = {suffix for name in names for suffix in _UNITS if name.endswith(suffix)}
        if len(suffixes) != 1 or not all(any(n.endswith(s) for s in suffixes) for n in names):
            continue
        suffix = suffixes.pop()
        assert panel["fieldConfig"]["defaults"]["unit"] in _UNITS[suffix], panel["title"]
        checked += 1
        for target in panel["targets"]:
            if suffix == "_joules":  # energies are exported in joules and shown in kWh
                assert "/ 3600000" in target["expr"], panel["title"]
            if suffix == "_coulombs":  # charges are exported in coulombs and shown in Ah
                assert "/ 3600" in target["expr"], panel["title"]
    assert checked >= 15


def test_rates_use_rate_interval(dashboard: dict[str, Any]) -> None:
    functions = re.compile(r"\b(rate|irate|increase|delta|idelta|deriv|\w+_over_time)\s*\(")
    found = 0
    for query in panel_queries(dashboard):
        for window in re.findall(r"\[([^\]]*)\]", query.expr):
            assert window == "$__rate_interval", f"{query}: range [{window}]"
        for match in functions.finditer(query.expr):
            found += 1
            assert "[$__rate_interval]" in query.expr[match.end():], f"{query}: {match.group(1)} without a window"
    assert found >= 5


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


# --- the metrics exist -------------------------------------------------------------------------------------------


def test_every_dashboard_metric_exists(dashboard: dict[str, Any]) -> None:
    known = exporter_metric_names()
    for query in panel_queries(dashboard):
        names = metric_names(query.expr)
        assert names, f"{query}: names no metric"
        unknown = names - known
        assert not unknown, f"{query}: the exporter does not produce {sorted(unknown)}"


def test_every_alert_metric_exists() -> None:
    known = exporter_metric_names() | PROMETHEUS_SYNTHETIC
    rules = alert_rules()
    assert rules
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= known, f"{rule['alert']}: unknown metrics {sorted(names - known)}"


def test_what_a_solar_owner_looks_at_is_there(dashboard: dict[str, Any]) -> None:
    used = {name for query in panel_queries(dashboard) for name in metric_names(query.expr)}
    wanted = {
        "vedirect_battery_voltage_volts", "vedirect_battery_current_amperes", "vedirect_state_of_charge_ratio",
        "vedirect_panel_power_watts", "vedirect_panel_voltage_volts", "vedirect_yield_today_joules",
        "vedirect_yield_total_joules", "vedirect_charge_state", "vedirect_charger_error_code", "vedirect_alarm_on",
        "vedirect_alarm_reason", "vedirect_ac_output_voltage_volts", "vedirect_ac_output_apparent_power_voltamperes",
        "pvmonit_temperature_celsius", "pvmonit_power_watts", "vedirect_up", "vedirect_checksum_errors_total",
        "pvmonit_emoncms_queue_rows", "pvmonit_emoncms_last_success_timestamp_seconds",
    }
    assert wanted <= used, sorted(wanted - used)
    assert _panel_by_title(dashboard, "Charge state")["type"] == "state-timeline"


def _mapping_texts(panel: dict[str, Any]) -> dict[int, str]:
    texts: dict[int, str] = {}
    for mapping in panel["fieldConfig"]["defaults"]["mappings"]:
        assert mapping["type"] == "value"
        texts.update({int(code): entry["text"] for code, entry in mapping["options"].items()})
    return texts


def test_charge_state_codes_and_names_follow_the_protocol(dashboard: dict[str, Any]) -> None:
    panel = _panel_by_title(dashboard, "Charge state")
    (target,) = panel["targets"]
    codes = {int(code): name for code, name in
             re.findall(r'label_replace\(vector\((\d+)\), "state", "([^"]*)", "", ""\)', target["expr"])}
    assert codes == dict(CHARGE_STATES), "the query's code for each state name"
    assert _mapping_texts(panel) == dict(CHARGE_STATES), "the value mappings that name each code"


def test_charger_error_names_follow_the_protocol(dashboard: dict[str, Any]) -> None:
    assert _mapping_texts(_panel_by_title(dashboard, "Charger errors")) == dict(CHARGER_ERRORS)


# --- provisioning ---------------------------------------------------------------------------------------------


def test_datasource_provisioning() -> None:
    files = sorted((PROVISIONING / "datasources").glob("*.yaml"))
    assert files
    for path in files:
        document = load_yaml(path)
        assert document["apiVersion"] == 1
        (source,) = document["datasources"]
        assert source["type"] == "prometheus"
        assert source["access"] == "proxy"
        assert re.fullmatch(r"https?://[^/\s]+(/\S*)?", source["url"])


def test_dashboard_provisioning() -> None:
    files = sorted((PROVISIONING / "dashboards").glob("*.yaml"))
    assert files
    for path in files:
        document = load_yaml(path)
        assert document["apiVersion"] == 1
        (provider,) = document["providers"]
        assert provider["type"] == "file"
        assert provider["options"]["path"].startswith("/")
        # The instructions in the file copy the dashboard to where the provider looks.
        assert f"{provider['options']['path']}/" in path.read_text(encoding="utf-8").split("apiVersion")[0]
