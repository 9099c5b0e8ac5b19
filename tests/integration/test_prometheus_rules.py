"""examples/prometheus/alerts.yml: valid for Prometheus, right by its own unit tests, and about
series a real server exposes (Debian's promtool, installed by scripts/promtool.sh)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tallinn.serve._metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "examples" / "prometheus"
SCRAPE_LABELS = {"job", "instance"}  # added by Prometheus to every series it scrapes


@pytest.fixture(scope="module")
def promtool() -> str:
    done = subprocess.run(["bash", str(ROOT / "scripts" / "promtool.sh")], capture_output=True,
                          text=True, timeout=900, check=False)
    assert done.returncode == 0, f"scripts/promtool.sh failed: {done.stderr}"
    return done.stdout.strip()


def test_the_rules_are_valid(promtool: str) -> None:
    """`promtool check rules` accepts every rule."""
    done = subprocess.run([promtool, "check", "rules", "alerts.yml"], cwd=RULES,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 4 rules found" in done.stdout


def test_the_rules_pass_their_unit_tests(promtool: str) -> None:
    """`promtool test rules`: each alert fires on the series it is for, and only then."""
    done = subprocess.run([promtool, "test", "rules", "alerts.test.yml"], cwd=RULES,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_use_only_series_and_labels_the_server_exposes() -> None:
    """Every tallinn_* series a rule names is one the server's metrics define, with the labels
    the rule uses: the rules cannot drift from the code unnoticed."""
    groups = yaml.safe_load((RULES / "alerts.yml").read_text(encoding="utf-8"))["groups"]
    assert exposed([rule["expr"] for group in groups for rule in group["rules"]]) >= 5


def exposed(expressions: list[str]) -> int:
    """Check every tallinn_* series named in `expressions` against the server's metrics;
    return how many were named."""
    metrics = Metrics()
    # prometheus_client keeps each metric's declared label names and exposed series names
    # on the collector and the registry; nothing public gives both.
    labels_of: dict[str, set[str]] = {}
    for collector, names in metrics.registry._collector_to_names.items():
        for name in names:
            labels_of[name] = set(getattr(collector, "_labelnames", ()))
    used = 0
    for expr in expressions:
        for name, selector in re.findall(r"(tallinn_[a-z_]+)(\{[^}]*\})?", expr):
            assert name in labels_of, f"{name} is not a series of the server"
            for label in re.findall(r"([a-z_]+)\s*=~?", selector or ""):
                assert label in labels_of[name] | SCRAPE_LABELS, f"{name} has no label {label}"
            used += 1
    return used


DASHBOARD = ROOT / "examples" / "grafana" / "tallinn.json"
PANELS = {  # title -> the series its query must read
    "Requests per second, by release": "tallinn_mcp_requests_total",
    "Error rate, by release": "tallinn_mcp_requests_total",
    "p95 latency, by release": "tallinn_mcp_request_duration_seconds_bucket",
    "Satisfaction (4-5 stars), by release": "tallinn_ratings_total",
    "Candidate share": "tallinn_rollout_share",
    "Rollout paused": "tallinn_rollout_phase",
    "Replicas ready": "tallinn_ready",
    "Releases served": "tallinn_release_info",
    "Security events per second, by kind": "tallinn_security_events_total",
}


def test_the_grafana_dashboard_queries_parse_and_read_the_right_series(
    promtool: str, tmp_path: Path,
) -> None:
    """examples/grafana/tallinn.json is valid JSON with the expected panels; each panel's
    query reads the series it is about, and every query is valid PromQL (promtool checks it
    as a recording rule, with the dashboard's `$channel` variable set to all channels)."""
    import json

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = {panel["title"]: panel for panel in dashboard["panels"]}
    assert set(panels) == set(PANELS)
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(panels)
    rules = []
    for title, series in PANELS.items():
        (target,) = panels[title]["targets"]
        assert series in target["expr"], title
        rules.append({"record": f"tallinn:panel_{panels[title]['id']}",
                      "expr": target["expr"].replace("$channel", ".*")})
    (tmp_path / "panels.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}), encoding="utf-8")
    done = subprocess.run([promtool, "check", "rules", "panels.yml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(PANELS)} rules found" in done.stdout
    assert exposed([rule["expr"] for rule in rules]) >= len(PANELS)
