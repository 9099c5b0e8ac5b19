"""`validate --fix` reaches a fixed point, and a broken front matter hides no body finding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.gates import xml
from tallinn.gates.fix import fix_files, judge
from tallinn.library import Diagnostic, Edit, Fix, load_library

runner = CliRunner()
RULES = "---\ndescription: Rules every review follows\n---\nBe precise.\n"
# Tabs in the front matter (V102), so the loader leaves the file out; in the body an include
# written as a 2025 path (V201) and an unquoted attribute (V404): three fixes.
SEVERAL = (
    "---\n"
    "description: Review a file for several kinds of problems\n"
    "arguments:\n"
    "\t- {name: path, description: the file to review, required: true}\n"
    "---\n"
    "Review {{path}} with <note kind=brief>care</note>.\n"
    '<include component="components/shared/rules.md"/>\n'
)


def findings_of(root: Path) -> list[tuple[str, int, str]]:
    return [(f.path, f.line, f.code) for f in xml.check(load_library(root)).findings]


def test_a_broken_front_matter_hides_no_body_finding(write_library: Any) -> None:
    """With the front matter broken, the body's tags, includes and placeholder syntax are
    still reported; the placeholders' declarations wait for the front matter."""
    root = write_library({
        "components/shared/rules.md": RULES,
        "commands/a/broken.md": (
            "---\ndescription: Broken\narguments:\n\t- {name: path}\n---\n"
            "Check {{path}} and {{ 3 }} <a>\n"
            '<include component="shared/rulez"/>\n<include component=x>\n'),
    })
    assert findings_of(root) == [
        ("commands/a/broken.md", 4, "V102"),
        ("commands/a/broken.md", 6, "V303"),
        ("commands/a/broken.md", 6, "V401"),
        ("commands/a/broken.md", 7, "V201"),
        ("commands/a/broken.md", 8, "V202"),
    ]
    messages = {f.code: f.message for f in xml.check(load_library(root)).findings}
    assert messages["V201"] == "component 'shared/rulez' not found (did you mean 'shared/rules'?)"


def test_a_file_without_front_matter_is_checked_whole(write_library: Any) -> None:
    """No front matter at all: the whole file is the body, and its includes are checked."""
    root = write_library({"commands/a/bare.md": 'Text <include component="nowhere/x"/>\n'})
    assert findings_of(root) == [("commands/a/bare.md", 1, "V101"),
                                 ("commands/a/bare.md", 1, "V201")]


def test_several_fixes_reach_a_fixed_point_in_one_run(write_library: Any) -> None:
    """Three fixable problems in one file, one behind a broken front matter: one run of
    --fix --unsafe-fixes fixes all three, and a second run has nothing left to do."""
    root = write_library({"components/shared/rules.md": RULES, "commands/a/x.md": SEVERAL})
    first = runner.invoke(app, ["validate", "-L", str(root), "--fix", "--unsafe-fixes"])
    assert first.exit_code == 0, first.output
    lines = first.stderr.splitlines()
    assert [line.split(": ", 1)[0] for line in lines if line.startswith("fixed ")] == [
        "fixed commands/a/x.md:4:1", "fixed commands/a/x.md:6:33",
        "fixed commands/a/x.md:7:1"]
    assert "undone" not in first.stderr
    assert lines[-1] == ("2 files checked: 0 findings in 0 files, 0 errors; 3 fixes applied "
                         "in 1 file")
    assert (root / "commands/a/x.md").read_text() == SEVERAL.replace("\t", "  ").replace(
        "kind=brief", 'kind="brief"').replace("components/shared/rules.md", "shared/rules")
    second = runner.invoke(app, ["validate", "-L", str(root), "--fix", "--unsafe-fixes"])
    assert second.exit_code == 0
    assert second.stderr.splitlines() == [
        "2 files checked: 0 findings in 0 files, 0 errors; 0 fixes applied in 0 files"]


def test_without_unsafe_fixes_the_message_says_what_is_left(write_library: Any) -> None:
    """Safe fixes only: the two safe ones are kept, the unsafe one is named as left."""
    root = write_library({"components/shared/rules.md": RULES, "commands/a/x.md": SEVERAL})
    result = runner.invoke(app, ["validate", "-L", str(root), "--fix"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "2 files checked: 1 finding in 1 file, 1 error; 2 fixes applied in 1 file; "
        "1 more with --fix --unsafe-fixes")
    again = runner.invoke(app, ["validate", "-L", str(root), "--fix"])
    assert "0 fixes applied" in again.stderr
    assert "fixable with --fix;" not in again.stderr


def _synthetic(root: Path) -> list[Diagnostic]:
    """Findings of a one-line file: 'a' first is a V401, 'c' third a V402, 'y' third a V403."""
    text = (root / "x.md").read_text()
    found = []
    if text[0] == "a":
        found.append(Diagnostic("V401", "a first", "x.md", 1, 1,
                                fix=Fix("a to x", (Edit(0, 1, "x"),))))
    if text[2] == "c":
        found.append(Diagnostic("V402", "c third", "x.md", 1, 3,
                                fix=Fix("c to y", (Edit(2, 3, "y"),))))
    if text[2] == "y":
        found.append(Diagnostic("V403", "y third", "x.md", 1, 3))
    return found


def test_one_bad_fix_does_not_hold_back_the_others(tmp_path: Path) -> None:
    """Two fixes fail together; each is then tried alone: the good one is kept, the bad one
    undone with the error it added."""
    (tmp_path / "x.md").write_text("abc")
    report = fix_files(tmp_path, lambda: _synthetic(tmp_path))
    assert (tmp_path / "x.md").read_text() == "xbc"
    assert [str(a) for a in report.applied] == ["x.md:1:1: V401 a to x"]
    assert [str(r) for r in report.rejected] == [
        "x.md:1:3: V402 c to y: it added another V403 error (1:3: y third)"]
    assert [f.code for f in report.remaining] == ["V402"]


def test_judge_allows_what_a_broken_front_matter_hid() -> None:
    """New errors that need the front matter are uncovered, not caused; body ones are not."""
    fixed = Diagnostic("V102", "tabs", "x.md", 4, 1, fix=Fix("spaces", (Edit(0, 1, " "),)))
    schema = Diagnostic("V105", "critical must be a boolean", "x.md", 3, 1)
    tag = Diagnostic("V401", "<a> is never closed", "x.md", 6, 1)
    assert judge([fixed], [fixed], [schema]) is None
    assert judge([fixed], [fixed], [tag]) == (
        "it added another V401 error (6:1: <a> is never closed)")
    assert judge([fixed], [fixed], [fixed]) == "its finding is still there (V102 tabs)"


def test_the_rounds_of_fixes_are_a_setting_and_a_cut_run_says_so(write_library: Any) -> None:
    """With `fix_rounds = 1`, a file needing two rounds is fixed halfway, the message says to
    run again, and the second run finishes."""
    root = write_library({
        "tallinn.toml": "[gates.xml]\nfix_rounds = 1\n",
        "commands/a/x.md": "---\ndescription: a: b\nargument-hint: [p] [q]\n---\nBody\n",
    })
    first = runner.invoke(app, ["validate", "-L", str(root), "--fix"])
    assert ("stopped after 1 round of fixes with fixes still to try ([gates.xml] fix_rounds): "
            "run 'tallinn validate --fix' again") in first.stderr
    assert first.exit_code == 1
    second = runner.invoke(app, ["validate", "-L", str(root), "--fix"])
    assert second.exit_code == 0, second.output
    assert "stopped" not in second.stderr
    assert (root / "commands/a/x.md").read_text() == (
        '---\ndescription: "a: b"\nargument-hint: "[p] [q]"\n---\nBody\n')
