"""What a whole `tallinn gates` run finds stays what it found: the JSON report of a synthetic
library with findings of every gate, and of the 2025 corpus, against the reports recorded in
`tests/data/gates-findings/`.

Everything a run reports is compared but what depends on the clock or the machine (durations,
timed figures, memory sizes). A change that means to change what the gates find records the
new reports with `TALLINN_RECORD_FINDINGS=1 uv run pytest tests/gates/test_gates_findings.py`
and shows the difference in review.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tallinn.cli import app

HERE = Path(__file__).resolve().parent
CASES = HERE.parent / "cases"
RECORDED = HERE.parent / "data" / "gates-findings"
CORPUS = HERE.parents[1].parent / "shared" / "corpora" / "tallinn-2025-07"

# What a run reports that depends on the clock or the machine, not on the library.
_VOLATILE_TOP = ("generated_at", "duration_s", "tool")
_VOLATILE_PERF = ("reference_render_us", "render_cost", "library_mb")
_TIMED_METRICS = frozenset({"compose+render cost (costliest)", "library memory"})

SHELL_AND_PYTHON = (
    "\n```bash\nrm -rf \"${OUT:?}\"/build && curl -fsSLo x.sh https://e.com/x.sh\n```\n"
    "```python\nimport json\nprint(json.loads(data))\n```\nState: !`git status`\n"
)


def synthetic_library(root: Path, commands: int = 40) -> Path:
    """A library with findings of every gate: the rule cases of tests/cases as prompt files,
    commands with shell and Python, passing and failing prompt tests, broken files."""
    files: dict[str, str] = {"tallinn.toml": '[library]\nname = "findings"\n'}
    for case in sorted(CASES.glob("*.md")):
        text = case.read_text(encoding="utf-8")
        if case.stem.startswith("S"):  # security cases: loaded, with permissions to check
            text = (f"---\ndescription: The rule cases of {case.stem}, flagged and clean\n"
                    "allowed-tools: Read, Bash(git diff:*)\n---\n" + text)
        files[f"commands/cases/{case.stem.lower()}.md"] = text
    for index in range(10):
        nested = (f'<include component="shared/part-{index + 1}"/>\n'
                  if index % 3 == 0 and index < 9 else "")
        description = "Short" if index == 4 else f"Shared guidance number {index} for commands"
        files[f"components/shared/part-{index}.md"] = (
            f"---\ndescription: {description}\n---\n<guidance>\nRead the code first.\n"
            f"{nested}</guidance>\n")
    cases = []
    for index in range(commands):
        name = f"cmd-{index:03d}"
        hint = "" if index % 7 == 0 else 'argument-hint: "<target> [depth]"\n'
        example = ("" if index % 5 == 0 else
                   "examples:\n  - {description: Work on the parser, args: {target: a.py}}\n")
        files[f"commands/group-{index % 4}/{name}.md"] = (
            f"---\ndescription: Synthetic command {index} for the findings comparison\n"
            f"{hint}arguments:\n  - {{name: target, description: What to work on, "
            f"required: true}}\n  - {{name: depth, type: enum, enum: [quick, deep], "
            f"default: quick}}\n{example}---\n"
            f"<instructions>\nWork on `{{{{target}}}}` at {{{{depth}}}} depth.\n"
            f"</instructions>\n<include component=\"shared/part-{index % 10}\"/>\n"
            + (SHELL_AND_PYTHON if index % 2 else "")
            + ("<unclosed>\n" if index % 13 == 5 else ""))
        if index % 6 == 0:
            continue  # untested
        expected = "src/other.py" if index % 11 == 3 else f"src/{name}.py"
        budget = 5 if index % 17 == 2 else 2000
        cases.append(
            f"  - command: {name}\n    description: {name} names its target\n"
            f"    vars: {{target: src/{name}.py}}\n"
            f"    assert: [{{type: contains, value: {expected}}}, "
            f"{{type: regex, value: 'at (quick|deep) depth'}}, "
            f"{{type: max-tokens, value: {budget}}}]\n")
    files["tests/cases.yaml"] = "tests:\n" + "".join(cases) + (
        "  - command: no-such-command\n    description: names a command that is missing\n"
        "    assert: [{type: contains, value: x}]\n")
    files["tests/broken.yaml"] = "tests:\n  - description: [unclosed\n"
    files["commands/broken/bad-front-matter.md"] = (
        "---\ndescription: a: b\n---\n<role>Body of a broken file\n"
        '<include component="shared/missing"/>\n')
    files["README.md"] = "A library for the findings comparison. token: ghp_" + "a1B2" * 9 + "\n"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what depends on the clock or the machine."""
    kept = {k: v for k, v in report.items() if k not in _VOLATILE_TOP}
    # Where the library is, and the loader's hash of it (the loader's to define), aside.
    kept["library"] = {k: v for k, v in report["library"].items()
                       if k not in ("path", "content_hash")}
    gates = []
    for gate in report["gates"]:
        gate = {k: v for k, v in gate.items() if k != "duration_s"}
        gate["metrics"] = [
            {k: v for k, v in m.items() if k not in ("value", "display")}
            if m["name"] in _TIMED_METRICS else m
            for m in gate["metrics"]
        ]
        data = dict(gate["data"])
        if gate["name"] == "perf":
            for key in _VOLATILE_PERF:
                data.pop(key, None)
            gate["details"] = [d for d in gate["details"]
                               if not d.startswith(("reference render", "library memory",
                                                    "compose+render"))]
        if gate["name"] == "tests":
            data["cases"] = [{k: v for k, v in c.items() if k != "duration_ms"}
                             for c in data["cases"]]
            gate["details"] = [d.split(" (", 1)[0] if " in " in d and " ms)" in d else d
                               for d in gate["details"]]
        gate["data"] = data
        gates.append(gate)
    kept["gates"] = gates
    return kept


def gates_report(library: Path, *, cache: bool = False) -> dict[str, Any]:
    done = CliRunner().invoke(app, ["gates", "--library", str(library), "--format", "json"],
                              env={"TALLINN_NO_CACHE": "" if cache else "1", "COLUMNS": "200"})
    assert done.exit_code in (0, 1), done.output
    report: dict[str, Any] = json.loads(done.stdout)
    return comparable(report)


def compare(name: str, report: dict[str, Any]) -> None:
    recorded = RECORDED / f"{name}.json"
    if os.environ.get("TALLINN_RECORD_FINDINGS"):
        recorded.parent.mkdir(parents=True, exist_ok=True)
        recorded.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n",
                            encoding="utf-8")
    expected = json.loads(recorded.read_text(encoding="utf-8"))
    for got, want in zip(report["gates"], expected["gates"], strict=True):
        assert got["findings"] == want["findings"], got["name"]
        assert got == want, got["name"]
    assert report == expected


def test_a_synthetic_library_reports_what_it_reported(tmp_path: Path) -> None:
    """A run of the five gates on a synthetic library with findings of every gate reports
    the very findings, figures and data recorded before."""
    library = synthetic_library(tmp_path / "lib")
    report = gates_report(library)
    assert {g["name"]: g["status"] for g in report["gates"]} == {
        "xml": "FAILED", "tests": "FAILED", "perf": "PASSED", "security": "FAILED",
        "docs": "FAILED"}
    assert all(g["findings"] for g in report["gates"])
    compare("synthetic", report)


def test_the_front_matter_cache_changes_no_finding(tmp_path: Path) -> None:
    """A run that writes the front-matter cache and a run that reads it back report what a
    run without the cache reports."""
    library = synthetic_library(tmp_path / "lib")
    without = gates_report(library)
    writing = gates_report(library, cache=True)
    assert (library / ".tallinn" / "cache").is_dir()
    assert writing == without
    assert gates_report(library, cache=True) == without


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")
def test_the_2025_corpus_reports_what_it_reported(tmp_path: Path) -> None:
    """A run of the five gates on the 2025 corpus reports the very findings, figures and
    data recorded before."""
    copy = shutil.copytree(CORPUS, tmp_path / "corpus")
    compare("corpus-2025", gates_report(copy))
