"""Gate 5 (documentation coverage) and `tallinn docs-coverage`, on libraries written to disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import WriteLibrary
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.gates import docs
from tallinn.gates.base import RULES, GateContext, Status
from tallinn.library import load_library
from tallinn.settings import starter_path

runner = CliRunner()

DOCUMENTED = """
    ---
    description: Review a file for correctness and security
    argument-hint: "<path>"
    arguments:
      - name: path
        description: File to review
        required: true
    examples:
      - {description: Review app.py, args: {path: app.py}}
    ---
    Review {{path}}.
"""
# Line numbers below are those of this file as written (dedented, first newline dropped).
UNDOCUMENTED = """
    ---
    description: Review it
    tags: [review]
    arguments:
      - name: path
        required: true
      - name: depth
        description: How deep to go
        type: integer
        default: 1
    ---
    Review {{path}} to depth {{depth}}.
"""
FREEFORM = """
    ---
    description: Repeat the words that the user typed
    examples:
      - {description: Say hi, args: {}}
    ---
    You said: $ARGUMENTS
"""
COMPONENT = """
    ---
    description: Short
    ---
    Be brief.
"""


def run_gate(root: Path):  # type: ignore[no-untyped-def]
    messages: list[str] = []
    result = docs.run(GateContext(root, load_library(root), {}, messages.append))
    assert messages
    return result


def test_fully_documented_library_passes(write_library: WriteLibrary) -> None:
    root = write_library({"commands/review/review.md": DOCUMENTED})
    result = run_gate(root)
    assert result.status is Status.PASSED
    (metric,) = result.metrics
    assert (metric.name, metric.value, metric.threshold, metric.floor, metric.unit) == (
        "documentation coverage", 100.0, 95.0, 80.0, "%")
    assert result.findings == ()
    # description, argument, example, argument-hint
    assert (result.data["required"], result.data["met"]) == (4, 4)


def test_every_missing_item_is_found_at_its_key(write_library: WriteLibrary) -> None:
    """Each gap is a WARNING at the front-matter key concerned, or where a key would go."""
    root = write_library({
        "commands/review/review.md": DOCUMENTED,
        "commands/review/lazy.md": UNDOCUMENTED,
        "commands/misc/echo.md": FREEFORM,
        "components/style/brief.md": COMPONENT,
    })
    result = run_gate(root)
    found = sorted(str(f) for f in result.findings)
    assert found == [
        "commands/misc/echo.md:5:1: D104 command 'echo' takes arguments but has no "
        "'argument-hint'; add one such as argument-hint: \"<text>\"",
        "commands/review/lazy.md:11:1: D103 command 'lazy' has no example; add one under "
        "'examples:'",
        "commands/review/lazy.md:2:1: D101 the description of command 'lazy' has 9 characters; "
        "write at least 20 that say what it does",
        "commands/review/lazy.md:4:1: D104 command 'lazy' takes arguments but has no "
        "'argument-hint'; add one such as argument-hint: \"<path> [depth]\"",
        "commands/review/lazy.md:5:5: D102 argument 'path' of command 'lazy' has no description",
        "components/style/brief.md:2:1: D105 the description of component 'style/brief' has 5 "
        "characters; write at least 20 that say what it is for",
    ]
    assert {f.severity.value for f in result.findings} == {"warning"}
    # review 4 + lazy (description, 2 arguments, example, hint) 5 + echo 3 + component 1
    assert (result.data["required"], result.data["met"]) == (13, 7)
    assert result.metrics[0].value == pytest.approx(100 * 7 / 13)
    assert result.status is Status.FAILED  # 53.8% is under the 80% floor
    assert result.data["by_rule"]["D102"] == {"required": 3, "met": 2}
    assert "D101: 2 of 3" in result.details


def test_settings_change_the_grade(write_library: WriteLibrary) -> None:
    files = {"commands/review/review.md": DOCUMENTED, "commands/review/lazy.md": UNDOCUMENTED}
    strict = write_library({**files, "tallinn.toml": "[gates.docs]\nmin_description_length = 60\n"})
    assert sum(f.code == "D101" for f in run_gate(strict).findings) == 2
    lenient = write_library({**files, "tallinn.toml":
                             "[gates.docs]\nmin_coverage = 0.5\ncoverage_floor = 0.4\n"})
    assert run_gate(lenient).status is Status.PASSED  # 5 of 9
    partial = write_library({**files, "tallinn.toml":
                             "[gates.docs]\nmin_coverage = 0.9\ncoverage_floor = 0.5\n"})
    assert run_gate(partial).status is Status.PARTIAL


def test_empty_library_is_skipped(write_library: WriteLibrary) -> None:
    root = write_library({"commands/.keep": ""})
    assert run_gate(root).status is Status.SKIPPED


def test_rules_are_registered_with_docs() -> None:
    for code in ("D101", "D102", "D103", "D104", "D105"):
        rule = RULES[code]
        assert rule.gate == "docs"
        assert "## What it does" in rule.doc
        assert "## Use instead" in rule.doc


@pytest.mark.skipif(not (starter_path() / "tests").is_dir(),
                    reason="the starter library has no prompt tests yet")
def test_starter_library_is_documented() -> None:
    """The bundled starter library meets the 95% documentation threshold."""
    result = run_gate(starter_path())
    assert result.metrics[0].value >= 95.0, [str(f) for f in result.findings]
    assert result.status is Status.PASSED


def test_cli_lists_gaps_and_exits_1_when_under_threshold(write_library: WriteLibrary) -> None:
    root = write_library({"commands/review/lazy.md": UNDOCUMENTED})
    result = runner.invoke(app, ["docs-coverage", "--library", str(root)])
    assert result.exit_code == 1
    assert "commands/review/lazy.md:5:5: D102 argument 'path'" in result.stdout
    assert "documentation coverage" in result.stderr


def test_cli_json(write_library: WriteLibrary) -> None:
    root = write_library({"commands/review/review.md": DOCUMENTED})
    result = runner.invoke(app, ["docs-coverage", "-L", str(root), "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "PASSED"
    assert data["metrics"][0]["value"] == 100.0
    assert data["data"]["missing"] == []
