"""`tallinn gates --release` and `tallinn export --release`: a stored release read straight from
the store, with the same result as its checkout on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.helpers import write_files
from tests.ops.test_release_cli import HELLO, HELLO_TEST, Tallinn
from typer.testing import CliRunner

from tallinn.cli import app

runner = CliRunner()
SARIF_SCHEMA = Path(__file__).resolve().parents[1] / "data" / "sarif-schema-2.1.0.json"

# A tag never closed (an xml error with a fix), an unchecked installer (a security finding
# the release's own baseline accepts), no test and no example.
BROKEN = """\
---
description: Install the tool and run it on the code
---
<role>You are a careful installer.

Install it first:

```sh
curl -fsSL https://example.com/install.sh | sh
```
"""
BASELINE = {"version": 1, "findings": [{
    "code": "S201", "path": "commands/a/broken.md", "severity": "error",
    "message": "`curl ... | sh` runs a downloaded script unchecked; download it to a file, "
               "verify it, then run it",
    "reason": "the installer is pinned by the image"}]}


@pytest.fixture(autouse=True)
def actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLINN_ACTOR", "alice@ci")


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A library whose release must be forced: one good command, one failing every gate it
    can; its coverage report and security baseline are files of the release itself."""
    return write_files(tmp_path / "lib", {
        "tallinn.toml": '[library]\nname = "mixed"\n\n[gates.tests]\n'
                        'coverage_xml = "tests/coverage.xml"\n\n[gates.security]\n'
                        'baseline = "tests/security-baseline.json"\n',
        "README.md": "# mixed\n",
        "commands/a/hello.md": HELLO,
        "commands/a/broken.md": BROKEN,
        "tests/hello.yaml": HELLO_TEST,
        "tests/coverage.xml": '<coverage line-rate="0.91"></coverage>\n',
        "tests/security-baseline.json": json.dumps(BASELINE, indent=2),
    })


@pytest.fixture
def tallinn(library: Path, store_url: str) -> Tallinn:
    made = Tallinn(library, store_url)
    created = made("release", "create", "--force", "--reason", "to gate it again")
    assert created.exit_code == 0, created.output
    return made


def release_label(tallinn: Tallinn, version: str = "1") -> str:
    shown = json.loads(tallinn("release", "show", version, "--json").stdout)
    return f"release {version} ({shown['id'][:12]})"


def checked_out(tallinn: Tallinn, tmp_path: Path, version: str = "1") -> Path:
    folder = tmp_path / f"checkout-{version}"
    done = tallinn("release", "checkout", version, "--out", str(folder))
    assert done.exit_code == 0, done.output
    return folder


def outcome(report: dict[str, Any]) -> dict[str, Any]:
    """What a gate run decided: each gate's status, findings (all but timings) and accepted
    risks, and the verdict with its reasons."""
    return {
        "decision": report["decision"],
        "gates": {g["name"]: {
            "status": g["status"],
            "findings": g["findings"],
            "accepted": g["accepted"],
            "metrics": [(m["name"], m["value"], m["status"]) for m in g["metrics"]
                        if g["name"] != "perf"],
        } for g in report["gates"]},
    }


def test_gating_a_release_equals_gating_its_checkout(tallinn: Tallinn, tmp_path: Path) -> None:
    """`gates --release` finds what gating a checkout of the release finds, with the same
    verdict, and names the release as the library."""
    folder = checked_out(tallinn, tmp_path)
    stored = tallinn("gates", "--release", "1", "--json")
    on_disk = runner.invoke(app, ["gates", "--library", str(folder), "--json"])
    assert (stored.exit_code, on_disk.exit_code) == (1, 1), stored.output
    from_store, from_disk = json.loads(stored.stdout), json.loads(on_disk.stdout)
    assert outcome(from_store) == outcome(from_disk)
    assert from_store["decision"]["verdict"] == "NO-GO"
    codes = {f["code"] for g in from_store["gates"] for f in (*g["findings"], *g["accepted"])}
    assert {"V401", "S201", "T104", "D103"} <= codes
    label = release_label(tallinn)
    assert from_store["library"]["path"] == label
    assert from_store["library"]["content_hash"] == from_disk["library"]["content_hash"]
    assert f"reading {label} from the store" in stored.stderr


def test_a_release_reads_its_own_coverage_report_and_baseline(tallinn: Tallinn) -> None:
    """The coverage report and the security baseline that tallinn.toml names are read from
    the release's stored files: the line rate is graded and the finding is accepted."""
    report = json.loads(tallinn("gates", "--release", "1", "--json").stdout)
    gates = {g["name"]: g for g in report["gates"]}
    assert gates["tests"]["data"]["line_coverage"] == 0.91
    assert [a["code"] for a in gates["security"]["accepted"]] == ["S201"]
    assert gates["security"]["accepted"][0]["reason"] == "the installer is pinned by the image"
    assert gates["security"]["data"]["baseline"] == "tests/security-baseline.json"


def test_a_baseline_the_release_does_not_hold_fails_the_security_gate(
    library: Path, store_url: str, tmp_path: Path
) -> None:
    """A baseline named by tallinn.toml but not in the release fails the security gate, as it
    does for the checkout, naming the file."""
    (library / "tests" / "security-baseline.json").unlink()
    made = Tallinn(library, store_url)
    assert made("release", "create", "--force", "--reason", "no baseline").exit_code == 0
    report = json.loads(made("gates", "--release", "1", "--json", "--only", "security").stdout)
    (security,) = report["gates"]
    assert security["status"] == "FAILED"
    assert "baseline file not found: tests/security-baseline.json" in security["details"][0]
    folder = checked_out(made, tmp_path)
    on_disk = runner.invoke(app, ["gates", "--library", str(folder), "--json", "--only",
                                  "security"])
    assert json.loads(on_disk.stdout)["gates"][0]["status"] == "FAILED"


def test_the_sarif_of_a_release_is_valid_and_relative(tallinn: Tallinn) -> None:
    """The SARIF log of a release validates against SARIF 2.1.0; its locations are relative
    to a base that names the release and has no URI, and its fixes have line regions."""
    shown = tallinn("gates", "--release", "1", "--format", "sarif")
    assert shown.exit_code == 1, shown.output
    log = json.loads(shown.stdout)
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(log)
    (run,) = log["runs"]
    label = release_label(tallinn)
    assert run["originalUriBaseIds"] == {
        "LIBRARY_ROOT": {"description": {"text": f"the files of {label}"}}}
    locations = [loc["physicalLocation"]["artifactLocation"]
                 for result in run["results"] for loc in result["locations"]]
    assert {"uri": "commands/a/broken.md", "uriBaseId": "LIBRARY_ROOT"} in locations
    assert all("file:" not in json.dumps(location) for location in locations)
    fixes = [fix for result in run["results"] for fix in result.get("fixes", ())]
    assert fixes, "the unclosed tag has a fix"
    regions = [r["deletedRegion"] for fix in fixes for change in fix["artifactChanges"]
               for r in change["replacements"]]
    assert all("startLine" in region for region in regions)


def test_github_annotations_of_a_release_name_library_paths(tallinn: Tallinn) -> None:
    """Workflow annotations of a release name each file by its path in the library."""
    shown = tallinn("gates", "--release", "1", "--format", "github")
    assert "::error file=commands/a/broken.md,line=4," in shown.stdout


def tree(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("target", ["claude-skills", "claude-plugin", "copilot", "gemini"])
def test_exporting_a_release_equals_exporting_its_checkout(
    library: Path, store_url: str, tmp_path: Path, target: str
) -> None:
    """`export TARGET --release ID` writes the very bytes an export of its checkout writes."""
    (library / "commands" / "a" / "broken.md").unlink()  # an export refuses a broken library
    made = Tallinn(library, store_url)
    assert made("release", "create", "--force", "--reason", "export it").exit_code == 0
    (library / "commands" / "a" / "hello.md").write_text(HELLO.replace("Hello", "Hi"))
    folder = checked_out(made, tmp_path)
    stored = made("export", target, "--out", str(tmp_path / "from-store"), "--release", "1")
    assert stored.exit_code == 0, stored.output
    on_disk = runner.invoke(app, ["export", target, "--out", str(tmp_path / "from-disk"),
                                  "--library", str(folder)])
    assert on_disk.exit_code == 0, on_disk.output
    exported = tree(tmp_path / "from-store")
    assert exported == tree(tmp_path / "from-disk")
    assert any(b"Hello, " in data for data in exported.values())
    assert not any(b"Hi, " in data for data in exported.values())


def test_export_check_against_a_release(library: Path, store_url: str, tmp_path: Path) -> None:
    """`export --check DIR --release ID` passes for an export of that release and reports the
    source changed against another release."""
    (library / "commands" / "a" / "broken.md").unlink()
    made = Tallinn(library, store_url)
    assert made("release", "create", "--force", "--reason", "one").exit_code == 0
    (library / "commands" / "a" / "hello.md").write_text(HELLO.replace("Hello", "Hi"))
    assert made("release", "create", "--force", "--reason", "two").exit_code == 0
    out = tmp_path / "out"
    assert made("export", "claude-skills", "--out", str(out), "--release", "1").exit_code == 0
    same = made("export", "--check", str(out), "--release", "1")
    assert same.exit_code == 0, same.output
    other = made("export", "--check", str(out), "--release", "2", "--json")
    assert other.exit_code == 1, other.output
    assert [d["kind"] for d in json.loads(other.stdout)] == ["source changed"]


def test_an_unknown_release_is_one_line_and_exit_2(tallinn: Tallinn, tmp_path: Path) -> None:
    """Naming a release the store does not hold is one line, exit 2, and nothing written."""
    for args in (["gates", "--release", "7"],
                 ["export", "claude-skills", "--out", str(tmp_path / "out"), "--release", "7"],
                 ["export", "--check", str(tmp_path), "--release", "7"]):
        shown = tallinn(*args)
        assert shown.exit_code == 2, (args, shown.output)
        assert "no release '7'" in shown.stderr
        assert len(shown.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
