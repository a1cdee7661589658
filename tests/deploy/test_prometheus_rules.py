"""deploy/prometheus and deploy/grafana: promtool's rule tests, and metric names that
the collector really exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from cbcontrol.instrumentation import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yaml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "cbcontrol-dashboard.json"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run Debian's promtool (make test installs it) in deploy/prometheus."""
    return subprocess.run(
        ["promtool", *args],
        cwd=RULES.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def metric_names(expr: str) -> set[str]:
    """The cbcontrol metric names a PromQL expression uses."""
    return set(re.findall(r"\bcircuit_breaker_[a-z0-9_]+", expr))


def rules() -> list[dict[str, Any]]:
    """The alert rules."""
    document = YAML(typ="safe").load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_promtool_rule_tests_pass() -> None:
    """`promtool test rules` passes: each alert fires when, and only when, it should."""
    result = promtool("test", "rules", RULE_TESTS.name)

    assert 0 == result.returncode, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_accepts_the_rules() -> None:
    """`promtool check rules` accepts the file."""
    result = promtool("check", "rules", RULES.name)

    assert 0 == result.returncode, result.stdout + result.stderr


def test_the_alerts_are_there() -> None:
    """The article's two alerts, a config error alert and a change-not-applied alert."""
    assert [
        "CircuitBreakerOpen",
        "HighFallbackRate",
        "CircuitBreakerConfigRejected",
        "CircuitBreakerChangeNotApplied",
    ] == [rule["alert"] for rule in rules()]


def test_every_alert_is_tested() -> None:
    """Each alert has at least one promtool test case."""
    tests = YAML(typ="safe").load(RULE_TESTS.read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}

    assert {rule["alert"] for rule in rules()} == tested


def test_rules_use_exported_metrics() -> None:
    """Every metric an alert queries is one the collector exports."""
    used = {name for rule in rules() for name in metric_names(rule["expr"])}

    assert used
    assert set() == used - set(METRIC_NAMES)


def test_dashboard_uses_exported_metrics() -> None:
    """The Grafana dashboard queries only exported metrics; its panel ids are unique."""
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    exprs = [target["expr"] for panel in panels for target in panel["targets"]]
    exprs.append(dashboard["templating"]["list"][1]["definition"])
    used = {name for expr in exprs for name in metric_names(expr)}

    assert set() == used - set(METRIC_NAMES)
    assert len(panels) == len({panel["id"] for panel in panels})
    assert {
        "circuit_breaker_state",
        "circuit_breaker_fallbacks_total",
        "circuit_breaker_cache_hits_total",
        "circuit_breaker_cache_misses_total",
    } <= used


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every dashboard query (Grafana's variables filled in)."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [
        target["expr"]
        .replace("$__rate_interval", "1m")
        .replace('=~"$service"', '=~".*"')
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query{i}", "expr": expr}
                    for i, expr in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.json"
    path.write_text(json.dumps(rules))

    result = promtool("check", "rules", str(path))

    assert all("$" not in expr for expr in exprs)
    assert 0 == result.returncode, result.stdout + result.stderr
