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
    metrics = Metrics()
    # prometheus_client keeps each metric's declared label names and exposed series names
    # on the collector and the registry; nothing public gives both.
    labels_of: dict[str, set[str]] = {}
    for collector, names in metrics.registry._collector_to_names.items():
        for name in names:
            labels_of[name] = set(getattr(collector, "_labelnames", ()))
    groups = yaml.safe_load((RULES / "alerts.yml").read_text(encoding="utf-8"))["groups"]
    expressions = [rule["expr"] for group in groups for rule in group["rules"]]
    used = 0
    for expr in expressions:
        for name, selector in re.findall(r"(tallinn_[a-z_]+)(\{[^}]*\})?", expr):
            assert name in labels_of, f"{name} is not a series of the server"
            for label in re.findall(r"([a-z_]+)\s*=~?", selector or ""):
                assert label in labels_of[name], f"{name} has no label {label}"
            used += 1
    assert used >= 5
