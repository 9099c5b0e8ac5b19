"""The readiness report: JSON data, Markdown and text templates rendered from one run."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from tests.gates.readiness_factory import finding, readiness, sample_results

from tallinn.gates.base import GateResult, Status
from tallinn.gates.report import (
    SCHEMA_VERSION,
    Format,
    environment,
    md,
    md_cell,
    plural,
    render,
    report_data,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_json_report_has_a_stable_versioned_shape() -> None:
    """The JSON report carries schema_version and the documented top-level keys."""
    data = json.loads(render(readiness(), "json"))
    assert data["schema_version"] == SCHEMA_VERSION == 1
    assert list(data) == [
        "schema_version", "tool", "generated_at", "duration_s", "library", "settings",
        "options", "status", "decision", "summary", "gates", "accepted_risks", "known_issues",
    ]
    assert data["generated_at"] == "2025-07-01T12:00:00+00:00"
    assert data["library"]["content_hash"] == "ab" * 32
    assert data["options"] == {"baseline": "baseline.json", "coverage_xml": None, "load": False}
    assert data["settings"] == {"allow_partial": False}


def test_json_report_validates_against_the_documented_schema() -> None:
    """docs/report.schema.json describes the JSON report exactly (no undocumented keys)."""
    schema = json.loads((DOCS / "report.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(render(readiness(), "json")), schema)
    empty = readiness(results=(), not_run=("xml",))
    jsonschema.validate(json.loads(render(empty, "json")), schema)


def test_json_report_states_the_decision_and_counts() -> None:
    """Status, verdict, reasons and counts follow the gate results."""
    data = report_data(readiness())
    assert data["status"] == "NOT READY"
    assert data["decision"]["verdict"] == "NO-GO"
    assert data["decision"]["reasons"] == [
        "perf PARTIAL and allow_partial = false: render p95 = 1.4 ms (threshold <= 1 ms)",
        "security FAILED: 1 blocking finding",
        "docs SKIPPED: no docs configured",
    ]
    assert data["summary"] == {
        "gates_run": 5, "passed": 2, "partial": 1, "failed": 1, "skipped": 1, "not_run": [],
        "findings": {"error": 2, "warning": 1, "info": 1}, "blocking": 1, "accepted": 1,
    }


def test_json_gate_entries_carry_figures_findings_and_accepted_risks() -> None:
    """Each gate lists its metrics with display text, findings worst first, accepted risks."""
    gates = {g["name"]: g for g in report_data(readiness())["gates"]}
    perf = gates["perf"]["metrics"][0]
    assert perf == {
        "name": "render p95", "value": 1.4, "threshold": 1, "floor": 2, "unit": "ms",
        "comparison": "<=", "higher_is_better": False, "status": "PARTIAL",
        "display": {"value": "1.4 ms", "threshold": "<= 1 ms", "floor": "<= 2 ms"},
    }
    security = gates["security"]
    assert [f["code"] for f in security["findings"]] == ["Q102", "S101", "S300"]
    assert security["findings"][0]["blocking"] is False  # accepted by the baseline
    assert security["findings"][1]["blocking"] is True
    assert security["blocking"][0]["location"] == "commands/a/x.md:3:5"
    assert security["accepted"][0]["reason"] == "documented test key"
    assert security["data"] == {"scanned": 12, "path": "a/b", "ratio": None}
    assert gates["xml"]["findings"][0]["fix"] == {"description": "quote the value", "safe": True}


def test_json_accepted_risks_and_known_issues() -> None:
    """Accepted risks keep their reason and source; known issues are the non-errors."""
    data = report_data(readiness())
    assert data["accepted_risks"] == [{
        "gate": "security", "code": "Q102", "rule": None, "severity": "error",
        "path": "commands/a/x.md", "line": 3, "col": 5, "location": "commands/a/x.md:3:5",
        "message": "example key in docs", "blocking": False, "accepted": True, "fix": None,
        "reason": "documented test key", "source": "baseline",
    }]
    assert [(i["gate"], i["code"]) for i in data["known_issues"]] == [
        ("xml", "X201"), ("security", "S300")]


def test_markdown_report_is_a_production_readiness_summary() -> None:
    """The Markdown report has every section of a readiness summary, in order."""
    text = render(readiness(), Format.MARKDOWN)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Executive summary",
        "## XML and structure (`xml`): PASSED",
        "## Prompt tests (`tests`): PASSED",
        "## Performance (`perf`): PARTIAL",
        "## Security audit (`security`): FAILED",
        "## Documentation (`docs`): SKIPPED",
        "## Accepted risks",
        "## Known issues",
        "## Decision: NO-GO",
    ]
    assert text.startswith("# Production readiness: acme-prompts\n")
    assert "**Status: ❌ NOT READY** · Decision: **NO-GO**" in text
    assert "| Content hash | `" + "ab" * 32 + "` |" in text
    assert "| Contents | 3 commands, 2 components, 1 category, 1 test file |" in text
    assert "| render p95 | 1.4 ms | <= 1 ms | <= 2 ms | PARTIAL |" in text
    assert "| `commands/a/x.md:3:5` | S101 | error (blocking) | secret-like token in body |" in text
    assert "| security | `commands/a/x.md:3:5` | Q102 | example key in docs | baseline |" in text
    assert "- perf PARTIAL and allow_partial = false" in text
    assert "- perf is PARTIAL: render p95 = 1.4 ms (threshold <= 1 ms)" in text
    assert "| `commands/a/x.md:3:5` | Q102 | error (accepted) | example key in docs |" in text
    assert "PARTIAL gates block (`[gates] allow_partial = false`, the default)." in text
    assert "The library may not ship" in text
    assert text.endswith("\n")
    assert not text.endswith("\n\n")


def test_markdown_escapes_finding_text() -> None:
    """Messages cannot break a table or inject HTML: pipes and angle brackets are escaped."""
    text = render(readiness(), "markdown")
    assert "tag \\| &lt;b> not closed *(fix: quote the value)*" in text
    assert "<b>" not in text


def test_markdown_report_when_ready() -> None:
    """A clean run says READY, has no accepted risks or known issues, and may ship."""
    clean = (GateResult("xml", "XML", Status.PASSED),)
    text = render(readiness(clean, not_run=("docs",)), "markdown")
    assert "**Status: ✅ READY** · Decision: **GO**" in text
    assert "None: no finding is accepted" in text
    assert "- Gates not run: docs." in text
    assert "Not run: docs; this decision covers only the gates that ran." in text
    assert "No findings." in text
    assert "The library may ship." in text


def test_markdown_lists_only_the_top_findings() -> None:
    """A gate with many findings shows the first ten and says so."""
    many = tuple(finding("D1", line=i, message=f"m{i}") for i in range(1, 13))
    result = GateResult("docs", "Docs", Status.FAILED, findings=many)
    text = render(readiness((result,)), "markdown")
    assert "12 findings (12 error, 0 warning, 0 info), the first 10:" in text
    assert "m10 |" in text
    assert "m11" not in text


def test_markdown_notes_allowed_partial() -> None:
    """With allow_partial, the decision section says PARTIAL gates are allowed."""
    partial = (GateResult("perf", "Perf", Status.PARTIAL),)
    text = render(readiness(partial, allow_partial=True), "markdown")
    assert "PARTIAL gates are allowed (`[gates] allow_partial = true`)." in text
    assert "- perf is PARTIAL" in text
    assert "## Decision: GO" in text


def test_text_report_lists_gates_findings_and_decision() -> None:
    """The text report is plain: no Markdown, one line per figure and finding."""
    text = render(readiness(), "text")
    assert text.splitlines()[:2] == ["Production readiness: acme-prompts",
                                     "Status: NOT READY (NO-GO)"]
    assert "== Performance (perf): PARTIAL in 1.0 s" in text
    assert "   PARTIAL render p95 = 1.4 ms (threshold <= 1 ms, floor <= 2 ms)" in text
    assert "   commands/a/x.md:3:5: S101 [error, blocking] secret-like token in body" in text
    assert ("   commands/a/x.md:3:5: Q102 example key in docs "
            "(accepted by baseline: documented test key)") in text
    assert "   commands/a/x.md:3:5: Q102 [error, accepted] example key in docs" in text
    assert text.rstrip().endswith(" - docs SKIPPED: no docs configured")
    assert "**" not in text


def test_text_report_says_how_many_findings_are_not_shown() -> None:
    """Past ten findings a gate says how many more there are."""
    many = tuple(finding("D1", line=i) for i in range(1, 13))
    text = render(readiness((GateResult("docs", "Docs", Status.FAILED, findings=many),)), "text")
    assert "   ... and 2 more" in text


def test_sarif_is_one_of_the_formats() -> None:
    """render(..., 'sarif') gives the SARIF log as JSON text."""
    log = json.loads(render(readiness(), "sarif"))
    assert log["version"] == "2.1.0"


def test_unknown_format_is_an_error() -> None:
    """Only the four formats exist."""
    with pytest.raises(ValueError, match="html"):
        render(readiness(), "html")


def test_templates_are_strict_about_missing_data() -> None:
    """A template using a key the data lacks fails loudly instead of printing nothing."""
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        environment().get_template("report.txt.j2").render(report={}, top=10)


@pytest.mark.parametrize(
    ("function", "given", "expected"),
    [
        (md, "a <include/> & b <= c", "a &lt;include/> & b <= c"),
        (md, "&amp; &#60; </x> <!-- c -->", "&amp;amp; &amp;#60; &lt;/x> &lt;!-- c -->"),
        (md_cell, "a | b\r\nc", "a \\| b c"),
    ],
)
def test_markdown_filters(function: object, given: str, expected: str) -> None:
    """Free text is made safe for Markdown prose and for table cells."""
    assert function(given) == expected  # type: ignore[operator]


def test_plural() -> None:
    """Counts read naturally, irregular plurals included."""
    assert plural(1, "gate") == "1 gate"
    assert plural(0, "gate") == "0 gates"
    assert plural(2, "category", "categories") == "2 categories"


def test_sample_has_one_of_each_status() -> None:
    """The sample run used here covers every status (a guard on the test data itself)."""
    assert {r.status for r in sample_results()} == set(Status)


def test_gate_data_and_figures_become_plain_json() -> None:
    """Gate data of any shape and non-finite figures are made JSON-safe, never an error."""
    import dataclasses
    from enum import Enum

    from tallinn.gates.base import Metric

    class Colour(Enum):
        RED = "red"

    @dataclasses.dataclass
    class Point:
        x: int

    result = GateResult("perf", "Perf", Status.FAILED,
                        metrics=(Metric("p95", float("inf"), 1.0, "ms", higher_is_better=False),),
                        data={"set": {"b", "a"}, "colour": Colour.RED, "point": Point(1),
                              "other": object, 3: (1.5, float("-inf"))})
    data = json.loads(render(readiness((result,)), "json"))
    gate = data["gates"][0]
    assert gate["metrics"][0]["value"] is None
    assert gate["metrics"][0]["display"]["value"] == "inf ms"
    assert gate["data"] == {"set": ["a", "b"], "colour": "red", "point": {"x": 1},
                            "other": "<class 'object'>", "3": [1.5, None]}
