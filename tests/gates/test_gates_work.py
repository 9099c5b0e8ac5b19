"""What one run of the gates costs, counted, not timed: each file read and scanned once, each
front matter and each prompt-test file parsed once, each estimate made once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from tests.gates.test_gates_findings import synthetic_library
from tests.helpers import count_calls
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.gates import docs, perf, security
from tallinn.gates import tests as tests_gate
from tallinn.gates.base import RENDERS, GateContext
from tallinn.gates.rules.security import _python, _shell
from tallinn.gates.rules.security._source import PYTHON_LANGS, SHELL_LANGS
from tallinn.library import Diagnostic, files, frontmatter, load_library, yamlsafe


@pytest.fixture(scope="module")
def library_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_library(tmp_path_factory.mktemp("work") / "lib")


def test_the_docs_gate_parses_front_matter_only_for_its_findings(
    library_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The docs gate parses the front matter of a file only when one of its requirements is
    unmet and needs a position: once per file with findings, never for the others."""
    library = load_library(library_root)
    parses = count_calls(monkeypatch, yamlsafe.LimitedLoader, "get_single_node")
    result = docs.run(GateContext(library.root, library))
    with_findings = {f.path for f in result.findings}
    assert 0 < len(with_findings) < len(library.commands) + len(library.components)
    assert parses() == len(with_findings)


def test_a_run_parses_each_front_matter_once(
    library_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole `tallinn gates` run (the load, the audit and every other gate) parses each
    valid front matter once, however many gates read it."""
    reference = _front_matters(t for r, t in perf.REFERENCE_FILES.items() if r.endswith(".md"))
    distinct = _front_matters(p.read_text(encoding="utf-8") for p in library_root.rglob("*.md"))
    parsed: list[str] = []
    original = frontmatter._parse_yaml

    def recording(yaml_text: str, *args: Any) -> Any:
        result = original(yaml_text, *args)
        if isinstance(result, frontmatter.Parsed):
            parsed.append(yaml_text)
        return result

    monkeypatch.setattr(frontmatter, "_parse_yaml", recording)
    done = CliRunner().invoke(app, ["gates", "--library", str(library_root), "--format",
                                    "json"], env={"TALLINN_NO_CACHE": "1"})
    assert done.exit_code == 1, done.output
    assert set(parsed) - reference == distinct
    distinct |= set(parsed) & reference  # the perf gate's own, once a process
    assert len(parsed) == len(distinct)


def _front_matters(texts: Iterable[str]) -> set[str]:
    """The YAML of each text's front matter, when it has valid front matter."""
    found = set()
    for text in texts:
        parts = frontmatter.split(text, "x.md")
        if not isinstance(parts, Diagnostic) and isinstance(
                frontmatter.parse(text, "x.md"), frontmatter.Parsed):
            found.add(parts[0])
    return found


def test_the_perf_gate_renders_no_command_the_tests_gate_rendered(
    library_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the tests gate, the perf gate takes the text of a command with a test from the
    tests gate's renders: it renders (before timing) only the commands without one."""
    library = load_library(library_root)
    context = GateContext(library.root, library)
    tests_gate.run(context)
    rendered = context.shared[RENDERS]
    cases = perf.cases_by_command(context.prompt_tests())
    renders = count_calls(monkeypatch, perf, "render")
    chosen = {name: perf.first_render(library, command, cases.get(name, ()), rendered)
              for name, command in library.commands.items()}
    from_tests = [n for n, c in chosen.items()
                  if not isinstance(c, str) and c[0].source.startswith("test: ")]
    assert len(from_tests) > 10
    assert renders() == len(library.commands) - len(from_tests)
    for name in from_tests:
        found = chosen[name]
        assert not isinstance(found, str)
        assert found[1] == perf.render(library, library.commands[name], found[0].arguments,
                                       found[0].raw)


def test_a_json_report_needs_no_template_engine(library_root: Path) -> None:
    """`tallinn gates --format json`, in a process of its own, never imports Jinja2: only the
    text and Markdown reports are rendered from templates."""
    script = ("import runpy, sys\nsys.argv = ['tallinn', *sys.argv[1:]]\n"
              "try:\n    runpy.run_module('tallinn', run_name='__main__')\n"
              "finally:\n    print('jinja2' in sys.modules, file=sys.stderr)\n")
    done = subprocess.run(
        [sys.executable, "-c", script, "gates", "--library", str(library_root), "--format",
         "json"], capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "TALLINN_NO_CACHE": "1"},
    )
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["decision"]["go"] is False
    assert done.stderr.rstrip().splitlines()[-1] == "False"


def test_the_security_gate_reads_only_the_files_the_loader_did_not_load(
    library_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The security gate audits each loaded document in the text the loader read, and reads
    from disk only the other files (tests, tallinn.toml, README, files left out)."""
    library = load_library(library_root)
    loaded = {d.path for d in (*library.commands.values(), *library.components.values())}
    reads: list[str] = []
    original = files.LibraryFiles.read_text

    def recording(self: files.LibraryFiles, rel: str) -> Any:
        reads.append(rel)
        return original(self, rel)

    monkeypatch.setattr(files.LibraryFiles, "read_text", recording)
    result = security.run(GateContext(library.root, library))
    assert result.data["files"] == len(reads) + len(loaded)
    assert not set(reads) & loaded
    assert {"tallinn.toml", "README.md", "tests/cases.yaml"} <= set(reads)


def test_the_audit_reads_and_parses_each_file_and_block_once(
    library_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The security audit reads each library file once, parses each shell snippet and each
    Python block once, however many rules look at them."""
    library = load_library(library_root)
    reads = count_calls(monkeypatch, files.LibraryFiles, "read_text")
    shell = count_calls(monkeypatch, _shell, "parse")
    trees = count_calls(monkeypatch, _python, "_from_tree")
    fragments = count_calls(monkeypatch, _python, "_from_tokens")
    audited = security.audit(library_root, limits=library.config.limits)
    snippets = [s for f in audited.files
                for s in (*f.snippets(SHELL_LANGS), *f.bang_commands)]
    blocks = [s for f in audited.files for s in f.snippets(PYTHON_LANGS)]
    assert len(snippets) > 20
    assert len(blocks) > 20
    assert reads() == len(audited.files)
    assert shell() == len(snippets)
    assert fragments() > 0
    assert trees() + fragments() == len(blocks)
