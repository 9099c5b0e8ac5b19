"""Library sources: a folder and files held in memory build, check and gate the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import write_files

from tallinn.gates.runner import run_gates
from tallinn.gates.security import audit
from tallinn.library import LibraryError, load_library
from tallinn.library.files import MemoryFiles
from tallinn.library.loader import build_library
from tallinn.library.prompttests import load_tests, run_tests
from tallinn.library.source import FilesSource, FolderSource, LibrarySource, as_source

STARTER = Path(__file__).resolve().parents[2] / "src" / "tallinn" / "starter"
# Figures a gate measures with a clock, or of the objects in memory (a library held in
# memory holds its files' bytes too): they differ between any two runs.
MEASURED = {"perf", "tests"}

GREET = """\
---
description: Greet someone
arguments:
  - name: who
    required: true
---
<include component="parts/polite"/>
Hello {{who}}.
"""
POLITE = """\
---
description: Be polite
---
Please be polite.
"""


def folder_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_files_source_builds_the_library_a_folder_builds() -> None:
    """The starter library built from its bytes in memory equals the one built from its folder."""
    folder = build_library(FolderSource(STARTER))
    memory = build_library(FilesSource(folder_bytes(STARTER), label="release 1 (f830a9)"))
    assert memory.content_hash == folder.content_hash
    assert memory.commands == folder.commands
    assert memory.components == folder.components
    assert memory.templates == folder.templates
    assert memory.diagnostics == folder.diagnostics
    assert memory.config == folder.config
    assert memory.root is None
    assert folder.root == STARTER.resolve()
    assert memory.label == "release 1 (f830a9)"
    assert isinstance(memory.source, LibrarySource)


def test_every_gate_reports_the_same_on_a_folder_and_on_its_bytes() -> None:
    """Each gate gives the same status, findings, accepted risks and figures on both sources."""
    folder = run_gates(build_library(FolderSource(STARTER)))
    memory = run_gates(build_library(FilesSource(folder_bytes(STARTER), label="release 1")))
    assert memory.library.path == "release 1"
    assert folder.library.path == str(STARTER.resolve())
    for field in ("name", "content_hash", "commands", "components", "categories",
                  "test_files", "load_errors", "load_warnings"):
        assert getattr(memory.library, field) == getattr(folder.library, field), field
    assert folder.library.test_files > 0
    assert [r.gate for r in memory.results] == [r.gate for r in folder.results]
    for mine, theirs in zip(memory.results, folder.results, strict=True):
        assert mine.status == theirs.status, mine.gate
        assert mine.findings == theirs.findings, mine.gate
        assert mine.accepted == theirs.accepted, mine.gate
        assert [m.name for m in mine.metrics] == [m.name for m in theirs.metrics], mine.gate
        if mine.gate not in MEASURED:
            assert mine.metrics == theirs.metrics, mine.gate
            assert mine.details == theirs.details, mine.gate
            assert mine.data == theirs.data, mine.gate
    assert memory.verdict == folder.verdict


def test_gates_find_the_same_problems_in_both_sources(tmp_path: Path) -> None:
    """A library with errors gives the same findings from a folder and from its bytes."""
    root = write_files(tmp_path / "lib", {
        "commands/a/greet.md": GREET.replace("{{who}}", "{{whom}}"),
        "commands/a/README.md": "# notes\n",
        "components/parts/polite.md": POLITE + "token: ghp_" + "a" * 36 + "\n",
        "components/parts/broken.md": "---\ndescription: [\n---\nx\n",
        "tests/a.yaml": "- command: greet\n  vars: {who: Ada}\n  assert:\n"
                        "    - {type: contains, value: Hello}\n",
    })
    (root / "commands/a/latin1.md").write_bytes(b"---\ndescription: caf\xe9\n---\nx\n")
    folder = run_gates(build_library(FolderSource(root)))
    memory = run_gates(build_library(FilesSource(folder_bytes(root), label="release 2")))
    assert folder.library.load_errors > 0
    for mine, theirs in zip(memory.results, folder.results, strict=True):
        assert (mine.gate, mine.status, mine.findings) == (theirs.gate, theirs.status,
                                                            theirs.findings)
    codes = {f.code for r in folder.results for f in r.findings}
    assert {"V100", "V301"} <= codes


@pytest.mark.parametrize(("path", "reason"), [
    ("/etc/passwd", "absolute"),
    ("C:/windows/x.md", "absolute"),
    ("commands/../../etc/x.md", "outside the library"),
    ("commands\\a.md", "backslash"),
    ("commands/a\0.md", "NUL"),
    ("", "names no file"),
    ("./", "names no file"),
])
def test_hostile_paths_are_findings_never_files(path: str, reason: str) -> None:
    """A hostile path is a V111 problem of the library, and no reader can read it."""
    source = FilesSource({path: b"secret", "commands/a/greet.md": GREET.encode(),
                          "components/parts/polite.md": POLITE.encode()})
    library = build_library(source)
    problems = [d for d in library.diagnostics if d.code == "V111"]
    assert len(problems) == 1
    assert reason in problems[0].message
    assert "\0" not in str(problems[0])
    assert list(library.commands) == ["greet"]
    reader = source.files()
    assert all(reader.read_bytes(rel) != b"secret" for rel in ("etc/passwd", "etc/x.md", path))
    assert source.identity(path) is None


def test_duplicates_after_normalisation_keep_the_first_path() -> None:
    """`commands//./a/greet.md` and `commands/a/greet.md` name one file: the second is refused."""
    source = FilesSource({"commands/a/greet.md": GREET.encode(),
                          "commands//./a/greet.md": b"---\ndescription: other\n---\nx\n",
                          "components/parts/polite.md": POLITE.encode()})
    library = build_library(source)
    assert library.commands["greet"].description == "Greet someone"
    [problem] = [d for d in library.diagnostics if d.code == "V111"]
    assert "given already" in problem.message
    assert problem.path == "commands//./a/greet.md"


def test_a_path_that_is_a_file_and_a_folder_is_refused() -> None:
    """`commands/a` given as a file beside `commands/a/greet.md` is refused, not guessed."""
    library = build_library(FilesSource({
        "commands/a": b"x", "commands/a/greet.md": GREET.encode(),
        "components/parts/polite.md": POLITE.encode(),
    }))
    [problem] = [d for d in library.diagnostics if d.code == "V111"]
    assert problem.path == "commands/a"
    assert "a file and a folder" in problem.message
    assert list(library.commands) == ["greet"]


def test_files_source_rejects_what_is_not_bytes() -> None:
    """Text where bytes belong is API misuse: a TypeError, not a finding."""
    with pytest.raises(TypeError, match="str paths to bytes"):
        FilesSource({"commands/a.md": "text"})  # type: ignore[dict-item]


def test_memory_files_apply_the_limits_of_the_one_read_path() -> None:
    """A file over max_file_bytes is V112 and a folder is not a file, as in a folder."""
    library = build_library(FilesSource({
        "tallinn.toml": b"[limits]\nmax_file_bytes = 200\n",
        "commands/a/greet.md": GREET.encode() + b"x" * 300,
        "commands/a/ok.md": b"---\ndescription: ok\n---\nfine\n",
    }))
    assert [d.code for d in library.diagnostics] == ["V112"]
    assert list(library.commands) == ["ok"]
    reader = MemoryFiles({"commands/a/x.md": b"x"})
    folder_read = reader.read_bytes("commands/a")
    assert not isinstance(folder_read, bytes)
    assert "directory" in folder_read.message
    assert reader.names("") == ["commands"]
    assert reader.names("commands") == ["a"]
    assert reader.exists("commands/a")
    assert not reader.exists("commands/b")
    assert not reader.stays_inside("commands/a/x.md")


def test_walk_in_memory_skips_hidden_names_and_skipped_folders() -> None:
    """Hidden files and folders are not listed, nor folders the caller skips, as on disk."""
    reader = MemoryFiles({"commands/a/x.md": b"", "commands/.hidden/y.md": b"",
                          "commands/a/.z.md": b"", "commands/skip/w.md": b"",
                          "components/q.md": b""})
    paths, problems = reader.walk("commands", lambda name: name.endswith(".md"),
                                  frozenset({"skip"}))
    assert (paths, problems) == (["commands/a/x.md"], [])


def test_an_empty_source_is_not_a_library() -> None:
    """Files with neither commands/ nor components/ raise LibraryError naming the label."""
    with pytest.raises(LibraryError, match="release 9 is not a library"):
        build_library(FilesSource({"README.md": b"# hi"}, label="release 9"))
    with pytest.raises(LibraryError, match="library folder not found"):
        load_library("/nonexistent/library")


def test_folder_identity_changes_with_an_edit_and_is_none_when_gone(tmp_path: Path) -> None:
    """A folder file's identity is its stat, and none once the file is gone."""
    root = write_files(tmp_path / "lib", {"commands/a/greet.md": GREET})
    path = root / "commands/a/greet.md"
    import os

    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    source = FolderSource(root)
    before = source.identity("commands/a/greet.md")
    assert before == source.identity("commands/a/greet.md")
    path.write_text(GREET + "more\n")
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert source.identity("commands/a/greet.md") != before
    path.unlink()
    assert source.identity("commands/a/greet.md") is None


def test_a_file_written_just_now_has_no_identity_to_trust(tmp_path: Path) -> None:
    """A file modified within the racy window never equals itself: it is read again."""
    root = write_files(tmp_path / "lib", {"commands/a/greet.md": GREET})
    source = FolderSource(root)
    first = source.identity("commands/a/greet.md")
    assert first is not None
    assert first != source.identity("commands/a/greet.md")
    assert first != first


def test_files_source_identity_is_the_content_hash() -> None:
    """Two sources holding the same bytes give a file the same identity."""
    one = FilesSource({"commands/a.md": b"abc"})
    two = FilesSource({"commands/a.md": b"abc"}, label="other")
    assert one.identity("commands/a.md") == two.identity("commands/a.md")
    assert one.identity("commands/a.md") != FilesSource({"commands/a.md": b"abd"}).identity(
        "commands/a.md")


def test_prompt_tests_and_audit_read_through_the_source() -> None:
    """Prompt tests and the security audit find the same files in memory as in the folder."""
    memory = FilesSource(folder_bytes(STARTER))
    assert load_tests(memory).files == load_tests(STARTER).files
    assert audit(memory).findings == audit(STARTER).findings
    assert [f.path for f in audit(memory).files] == [f.path for f in audit(STARTER).files]
    library = build_library(memory)
    result = run_tests(library)
    assert result.failed == 0
    assert result.passed > 0
    assert as_source(STARTER).label == str(STARTER)


def test_the_library_package_exports_the_sources_and_the_builder() -> None:
    """`tallinn.library` names the sources and `build_library`, in a sorted `__all__`."""
    import tallinn.library as library

    assert library.__all__ == sorted(library.__all__)
    assert {"FilesSource", "FolderSource", "LibrarySource", "build_library"} <= set(
        library.__all__)
    assert all(hasattr(library, name) for name in library.__all__)
