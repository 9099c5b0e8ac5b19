"""SARIF 2.1.0 output: valid against the OASIS schema, with rules, fixes and suppressions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.gates.readiness_factory import finding, readiness, sample_results

from tallinn.gates.base import AcceptedRisk, Confidence, GateResult, Rule, Status
from tallinn.gates.sarif import fingerprint, level, to_sarif
from tallinn.library import Edit, Fix, Severity

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "sarif-schema-2.1.0.json"

DOC = """Flags secrets.

    ## What it does
    Finds tokens that look like API keys.

    ## Why is this bad?
    A prompt is sent to a model and logged.
"""
RULES = {
    "S101": Rule("S101", "hardcoded-secret", "security", Severity.ERROR,
                 "A secret-like token in a prompt", Confidence.MEDIUM, False, DOC),
    "X201": Rule("X201", "unclosed-tag", "xml", Severity.WARNING, "A tag is not closed",
                 Confidence.HIGH, True, ""),
    "D900": Rule("D900", "unused-rule", "docs", Severity.INFO, "Never found", Confidence.LOW),
}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.fixture
def library_root(tmp_path: Path) -> Path:
    (tmp_path / "commands" / "a").mkdir(parents=True)
    (tmp_path / "commands" / "a" / "x.md").write_text("ab\r\ncd: value\r\n", encoding="utf-8")
    return tmp_path


def log_of(root: Path, results: tuple[GateResult, ...] | None = None) -> dict[str, Any]:
    return to_sarif(readiness(results, root=root), RULES)


def results_of(log: dict[str, Any]) -> list[dict[str, Any]]:
    return list(log["runs"][0]["results"])


def test_the_log_is_valid_sarif_2_1_0(validator: jsonschema.Draft4Validator,
                                      library_root: Path) -> None:
    """The whole log validates against the official OASIS SARIF 2.1.0 schema."""
    log = log_of(library_root)
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert [f"{list(e.absolute_path)}: {e.message}" for e in errors] == []
    assert log["version"] == "2.1.0"
    assert json.loads(json.dumps(log)) == log  # plain JSON data


def test_an_empty_run_is_valid_sarif(validator: jsonschema.Draft4Validator,
                                     library_root: Path) -> None:
    """A run with no findings is a valid log with no results."""
    log = log_of(library_root, (GateResult("xml", "XML", Status.PASSED),))
    validator.validate(log)
    assert results_of(log) == []


def test_the_driver_lists_rules_with_levels_and_precision(library_root: Path) -> None:
    """tool.driver.rules come from the registry: ids, names, texts, levels, precision."""
    driver = log_of(library_root)["runs"][0]["tool"]["driver"]
    assert driver["name"] == "tallinn"
    rules = {r["id"]: r for r in driver["rules"]}
    secret = rules["S101"]
    assert secret["name"] == "hardcoded-secret"
    assert secret["shortDescription"] == {"text": "A secret-like token in a prompt"}
    assert secret["fullDescription"] == {"text": "Finds tokens that look like API keys."}
    assert "\n## Why is this bad?\nA prompt is sent" in secret["help"]["markdown"]  # dedented
    assert secret["defaultConfiguration"] == {"level": "error"}
    assert secret["properties"] == {"tags": ["security"], "precision": "medium",
                                    "security-severity": "8.0"}
    assert rules["X201"]["fullDescription"] == {"text": "A tag is not closed"}
    assert rules["X201"]["properties"] == {"tags": ["xml"], "precision": "high"}
    assert rules["D900"]["defaultConfiguration"] == {"level": "note"}
    # Codes without a registered rule still get a descriptor, so ruleIndex always resolves.
    assert rules["Q102"] == {"id": "Q102", "name": "Q102"}


def test_results_carry_rule_level_location_and_fingerprint(library_root: Path) -> None:
    """Each finding is a result: rule id and index, level, message, relative location."""
    log = log_of(library_root)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    by_rule = {r["ruleId"]: r for r in results_of(log)}
    secret = by_rule["S101"]
    assert rules[secret["ruleIndex"]]["id"] == "S101"
    assert secret["level"] == "error"
    assert secret["message"] == {"text": "secret-like token in body"}
    assert secret["locations"] == [{"physicalLocation": {
        "artifactLocation": {"uri": "commands/a/x.md", "uriBaseId": "LIBRARY_ROOT"},
        "region": {"startLine": 3, "startColumn": 5},
    }}]
    assert secret["partialFingerprints"] == {"tallinn/v1": fingerprint(finding())}
    assert secret["properties"] == {"gate": "security"}
    assert by_rule["S300"]["level"] == "note"
    assert by_rule["X201"]["level"] == "warning"
    base = log["runs"][0]["originalUriBaseIds"]["LIBRARY_ROOT"]["uri"]
    assert base == library_root.resolve().as_uri() + "/"


def test_fingerprints_ignore_line_numbers() -> None:
    """A finding keeps its fingerprint when its line moves, not when its message changes."""
    assert fingerprint(finding(line=3)) == fingerprint(finding(line=40, col=2))
    assert fingerprint(finding()) != fingerprint(finding(message="another"))
    assert fingerprint(finding()) != fingerprint(finding(path="commands/b/y.md"))
    assert len(fingerprint(finding())) == 32


def test_accepted_findings_are_suppressed_with_their_reason(library_root: Path) -> None:
    """A baseline entry is an external suppression; an inline one is in source."""
    inline = finding("S101", message="inline one")
    results = (*sample_results()[:3], GateResult(
        "security", "S", Status.PASSED,
        findings=(inline,),
        accepted=(AcceptedRisk(inline, "fixture", "inline"),
                  AcceptedRisk(finding("S102", message="only in baseline"), "old", "baseline")),
    ))
    by_message = {r["message"]["text"]: r for r in results_of(log_of(library_root, results))}
    assert by_message["inline one"]["suppressions"] == [
        {"kind": "inSource", "status": "accepted", "justification": "fixture"}]
    # An accepted finding that the gate did not also list is still reported, suppressed.
    assert by_message["only in baseline"]["suppressions"] == [
        {"kind": "external", "status": "accepted", "justification": "old"}]
    assert "suppressions" not in by_message["tag | <b> not closed"]


def test_fixes_become_replacements_with_line_and_column_regions(library_root: Path) -> None:
    """Character offsets of an edit become a region (after CRLF is normalised) and charOffset."""
    fix = Fix("quote the value", (Edit(7, 12, "'value'"),), safe=False)
    result = GateResult("xml", "XML", Status.PASSED, findings=(finding(fix=fix),))
    (sarif_result,) = results_of(log_of(library_root, (result,)))
    assert sarif_result["fixes"] == [{
        "description": {"text": "quote the value"},
        "artifactChanges": [{
            "artifactLocation": {"uri": "commands/a/x.md", "uriBaseId": "LIBRARY_ROOT"},
            "replacements": [{
                "deletedRegion": {"startLine": 2, "startColumn": 5, "endLine": 2,
                                  "endColumn": 10, "charOffset": 7, "charLength": 5},
                "insertedContent": {"text": "'value'"},
            }],
        }],
        "properties": {"safe": False},
    }]


def test_fixes_on_unreadable_files_use_character_offsets(library_root: Path) -> None:
    """Without the file's text, a replacement gives charOffset and charLength only."""
    fix = Fix("drop it", (Edit(3, 8, ""),))
    gone = finding(path="commands/a/gone.md", fix=fix)
    empty = finding(path="commands/a/x.md", fix=Fix("nothing", ()))
    result = GateResult("xml", "XML", Status.PASSED, findings=(gone, empty))
    first, second = results_of(log_of(library_root, (result,)))
    replacement = first["fixes"][0]["artifactChanges"][0]["replacements"][0]
    assert replacement["deletedRegion"] == {"charOffset": 3, "charLength": 5}
    assert "fixes" not in second  # a fix without edits is no SARIF fix


def test_a_finding_without_a_path_is_anchored_to_tallinn_toml(
    validator: jsonschema.Draft4Validator, library_root: Path
) -> None:
    """Library-wide findings point at tallinn.toml: GitHub rejects results without a location."""
    result = GateResult("tests", "T", Status.FAILED, findings=(finding(path="", line=1, col=1),))
    log = log_of(library_root, (result,))
    validator.validate(log)
    (sarif_result,) = results_of(log)
    assert sarif_result["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "tallinn.toml", "uriBaseId": "LIBRARY_ROOT"}
    assert sarif_result["properties"] == {"gate": "tests", "libraryWide": True}


def test_absolute_paths_become_file_uris(library_root: Path) -> None:
    """A finding about a file outside the library (a coverage report) keeps its own URI."""
    outside = library_root.parent / "coverage.xml"
    result = GateResult("tests", "T", Status.FAILED, findings=(finding(path=str(outside)),))
    (sarif_result,) = results_of(log_of(library_root, (result,)))
    location = sarif_result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": outside.as_uri()}


def test_uris_are_percent_encoded(library_root: Path) -> None:
    """A path with spaces is a valid relative URI."""
    result = GateResult("xml", "X", Status.PASSED, findings=(finding(path="commands/a b/é.md"),))
    (sarif_result,) = results_of(log_of(library_root, (result,)))
    uri = sarif_result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "commands/a%20b/%C3%A9.md"


def test_crashed_gates_are_tool_notifications(
    validator: jsonschema.Draft4Validator, library_root: Path
) -> None:
    """A gate that crashed makes the invocation unsuccessful, with a notification."""
    crashed = GateResult("perf", "Perf", Status.FAILED, details=("gate 'perf' crashed: boom",),
                         data={"error": {"type": "RuntimeError", "message": "boom"}})
    log = log_of(library_root, (crashed,))
    validator.validate(log)
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["startTimeUtc"] == "2025-07-01T12:00:00Z"
    assert invocation["toolExecutionNotifications"] == [{
        "level": "error", "message": {"text": "gate 'perf' crashed: boom"},
        "descriptor": {"id": "perf"}}]
    assert log["runs"][0]["properties"]["verdict"] == "NO-GO"


def test_levels_follow_severity() -> None:
    """error is error, warning is warning, info is note."""
    assert [level(s) for s in Severity] == ["error", "warning", "note"]


def test_the_registry_is_the_default_rule_source(library_root: Path) -> None:
    """Without explicit rules, every registered rule is described."""
    from tallinn.gates.base import RULES as REGISTRY

    log = to_sarif(readiness(root=library_root))
    ids = {r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]}
    assert set(REGISTRY) <= ids


def test_the_vendored_schema_is_the_oasis_one() -> None:
    """tests/data holds the OASIS SARIF 2.1.0 (errata 01) schema, unchanged."""
    import hashlib

    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == (
        "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert schema["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")


def test_a_library_held_in_memory_has_a_base_without_a_uri(
    validator: jsonschema.Draft4Validator,
) -> None:
    """A library with no folder gets relative locations under a base that only names it, and
    its fix regions are computed from the source's own text."""
    from tallinn.gates.runner import run_gates
    from tallinn.library import FilesSource, build_library

    source = FilesSource({
        "tallinn.toml": b'[library]\nname = "held"\n',
        "commands/a/x.md": b"---\ndescription: Review the file\n---\n<role>You review.\n\nGo.\n",
    }, label="release 3 (ab12cd34ef56)")
    log = to_sarif(run_gates(build_library(source), ["xml"]))
    assert list(validator.iter_errors(log)) == []
    (run,) = log["runs"]
    assert run["originalUriBaseIds"] == {
        "LIBRARY_ROOT": {"description": {"text": "the files of release 3 (ab12cd34ef56)"}}}
    (result,) = run["results"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "commands/a/x.md", "uriBaseId": "LIBRARY_ROOT"}
    (replacement,) = result["fixes"][0]["artifactChanges"][0]["replacements"]
    assert replacement["deletedRegion"]["startLine"] == 4
    assert replacement["insertedContent"] == {"text": "</role>"}
