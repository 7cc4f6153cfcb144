"""A site's agent configuration (prometheus/agent.yml): valid for Prometheus in agent mode, scraping the exporter
every 15 s under the job the alerts expect, labelling every series with its site, and pushing with queue settings
for a slow, intermittent link. test_many_sites.py runs it for real."""

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import require_tool
from tests.ops import AGENT_CONFIG, SCRAPE_CONFIG, load_yaml
from tests.ops.test_alert_rules import _promtool


@pytest.fixture(scope="module")
def agent() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(AGENT_CONFIG)
    return config


@pytest.mark.slow
def test_promtool_accepts_it_in_agent_mode() -> None:
    require_tool("promtool")
    result = _promtool("check", "config", "--agent", AGENT_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_promtool_would_notice_a_mistake(tmp_path: Path) -> None:
    broken = tmp_path / AGENT_CONFIG.name
    broken.write_text(AGENT_CONFIG.read_text(encoding="utf-8").replace("max_shards:", "max_shard:"),
                      encoding="utf-8")
    result = _promtool("check", "config", "--agent", broken)
    assert result.returncode != 0
    assert "max_shard" in result.stdout + result.stderr


def test_scrapes_the_exporter_like_a_single_site(agent: dict[str, Any]) -> None:
    assert agent["global"]["scrape_interval"] == "15s"
    (job,) = agent["scrape_configs"]
    (single_site_job,) = load_yaml(SCRAPE_CONFIG)["scrape_configs"]
    assert job["job_name"] == single_site_job["job_name"], "the alerts look for this job"
    assert job["static_configs"] == [{"targets": ["localhost:9737"]}]


def test_labels_every_series_with_its_site(agent: dict[str, Any]) -> None:
    assert set(agent["global"]["external_labels"]) == {"site"}
    assert agent["global"]["external_labels"]["site"]


def test_pushes_over_tls_with_a_password(agent: dict[str, Any]) -> None:
    (remote,) = agent["remote_write"]
    assert remote["url"].startswith("https://")
    assert set(remote["basic_auth"]) == {"username", "password_file"}, "the password never in the file itself"


def test_queue_suits_a_slow_intermittent_link(agent: dict[str, Any]) -> None:
    (remote,) = agent["remote_write"]
    queue = remote["queue_config"]
    assert queue["max_shards"] <= 2, "few connections on a thin link"
    assert queue["max_samples_per_send"] >= 1000, "big batches: fewer requests, better compression"
    assert queue["capacity"] >= 3 * queue["max_samples_per_send"]
    assert queue["retry_on_http_429"] is True
    assert queue["max_backoff"] == "1m", "a restored link is used again within a minute"
    # Every queue setting says why in a comment on the lines just above it.
    lines = AGENT_CONFIG.read_text(encoding="utf-8").splitlines()
    for key in queue:
        (index,) = [i for i, line in enumerate(lines) if line.strip().startswith(f"{key}:")]
        assert lines[index - 1].strip().startswith("#") or lines[index - 2].strip().startswith("#"), key
