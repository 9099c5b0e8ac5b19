"""Limits: YAML nodes, aliases and depth, include depth, arguments and placeholders are bounded
while parsing and composing, and each excess is a finding at its file, line and column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tallinn.gates.runner import run_gates, select
from tallinn.library import load_library
from tallinn.library.files import Limits
from tallinn.library.prompttests import load_tests
from tallinn.library.yamlsafe import LimitedLoader, YamlLimitError, load


def write(root: Path, files: dict[str, str]) -> Path:
    """Write files exactly as given (no dedent): positions in these tests are exact."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def laughs(levels: int, width: int = 9) -> str:
    """Front matter whose aliases stand for width**levels values."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return "\n".join(lines)


def command(front: str, body: str = "Say hello.") -> str:
    return f"---\ndescription: d\n{front}\n---\n{body}\n"


# --- YAML ---------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [4, 6, 9])
def test_alias_expansion_stops_at_the_node_limit(levels: int) -> None:
    """Composing a billion-laughs document stops once the expanded count passes the limit."""
    limits = Limits(max_yaml_nodes=1_000, max_yaml_aliases=10_000)
    loader = LimitedLoader(laughs(levels), limits)
    try:
        with pytest.raises(YamlLimitError, match="max_yaml_nodes"):
            loader.get_single_node()
        # One alias at most goes past the limit, and what it names was within it.
        assert limits.max_yaml_nodes < loader.nodes <= 2 * limits.max_yaml_nodes
    finally:
        loader.dispose()


def test_the_node_count_is_the_expanded_size() -> None:
    """An alias counts as every node of what it names, so the count is the expanded size."""
    loader = LimitedLoader("a: &a [1, 2, 3]\nb: *a\nc: [*a, *a]\n", Limits())
    try:
        loader.get_single_node()
        # mapping 1 + keys 3 + a's list 4 + b's alias 4 + c's list 1 + two aliases 8
        assert loader.nodes == 21
    finally:
        loader.dispose()


def test_too_many_aliases_stop_composing() -> None:
    """Small aliases, many of them: the alias limit stops composing."""
    text = "a: &a x\nb: [" + ", ".join(["*a"] * 50) + "]\n"
    with pytest.raises(YamlLimitError, match="max_yaml_aliases"):
        load(text, Limits(max_yaml_aliases=20))
    _node, data = load(text, Limits(max_yaml_aliases=50))
    assert data["b"] == ["x"] * 50


@pytest.mark.parametrize("depth", [51, 500, 20_000])
def test_deep_nesting_is_refused_without_recursion(depth: int) -> None:
    """Nesting past the depth limit is a YAML error, never a RecursionError."""
    for text in ("[" * depth + "]" * depth, "{a: " * depth + "1" + "}" * depth):
        # libyaml refuses 1,000 levels itself; below that, the limit does.
        with pytest.raises(yaml.YAMLError, match=r"max_yaml_depth|maximum nesting depth"):
            load(text, Limits())
        with pytest.raises(yaml.YAMLError, match=r"max_yaml_depth|maximum nesting depth"):
            load(text, Limits(max_yaml_depth=10))


def test_nesting_at_the_limit_loads() -> None:
    """A nesting exactly as deep as the limit is accepted."""
    _node, data = load("[" * 50 + "]" * 50, Limits())
    for _ in range(49):
        data = data[0]
    assert data == []


def test_a_recursive_alias_is_an_error() -> None:
    """An alias inside the node it names is undefined: no recursive data is ever built."""
    with pytest.raises(yaml.YAMLError, match="undefined alias"):
        load("a: &a [*a]\n", Limits())


def test_duplicate_anchors_and_several_documents_are_errors() -> None:
    """As PyYAML's own composer: one anchor name once, one document."""
    with pytest.raises(yaml.YAMLError, match="duplicate anchor"):
        load("a: &x 1\nb: &x 2\n", Limits())
    with pytest.raises(yaml.YAMLError, match="single document"):
        load("a: 1\n---\nb: 2\n", Limits())


def test_billion_laughs_in_front_matter_is_v113_and_the_cache_stays_small(tmp_path: Path) -> None:
    """Front matter past the node limit is V113 at its line; the cache holds no expansion."""
    root = write(tmp_path / "lib", {
        "commands/ok.md": command(""),
        "commands/lol.md": command(laughs(9)),
    })
    cache = tmp_path / "cache"
    lib = load_library(root, cache_dir=cache)
    assert sorted(lib.commands) == ["ok"]
    found = [(d.path, d.code, d.line) for d in lib.diagnostics]
    assert found == [("commands/lol.md", "V113", 7)]  # l4: where the count passed the limit
    assert (cache / "frontmatter.json").stat().st_size < 10_000
    assert "l8" not in json.loads((cache / "frontmatter.json").read_text())


def test_a_lower_limit_is_not_bypassed_by_the_cache(tmp_path: Path) -> None:
    """Front matter cached under generous limits is parsed again under lower ones."""
    root = write(tmp_path / "lib", {"commands/x.md": command(laughs(3))})
    cache = tmp_path / "cache"
    assert "V113" not in {d.code for d in load_library(root, cache_dir=cache).diagnostics}
    (root / "tallinn.toml").write_text("[limits]\nmax_yaml_nodes = 100\n")
    assert [d.code for d in load_library(root, cache_dir=cache).diagnostics] == ["V113"]


def test_test_files_are_parsed_within_the_limits(tmp_path: Path) -> None:
    """A test file past the YAML limits is a T101 finding, and other test files still load."""
    root = write(tmp_path / "lib", {
        "commands/x.md": command(""),
        "tests/lol.yaml": laughs(9) + "\ntests: []\n",
        "tests/ok.yaml": "command: x\ntests:\n  - description: d\n    assert: []\n",
    })
    suite = load_tests(root)
    assert [(d.path, d.code) for d in suite.diagnostics] == [("tests/lol.yaml", "T101")]
    assert "max_yaml_nodes" in suite.diagnostics[0].message
    assert [t.path for t in suite.tests] == ["tests/ok.yaml"]


# --- bytes the parser chokes on --------------------------------------------------------------


@pytest.mark.parametrize("char", ["\x01", "\x00", "\x08", "\x1b", "\x7f", "\ufffe", "\x0b"])
def test_a_control_character_in_front_matter_is_a_finding(tmp_path: Path, char: str) -> None:
    """A character YAML refuses gives V102 at its place; the rest of the library loads."""
    root = write(tmp_path / "lib", {
        "commands/ok.md": command(""),
        "commands/bad.md": f"---\ndescription: a{char}b\n---\nbody\n",
    })
    lib = load_library(root)
    assert sorted(lib.commands) == ["ok"]
    assert [(d.path, d.code, d.line, d.col) for d in lib.diagnostics] == [
        ("commands/bad.md", "V102", 2, 15)]
    assert f"U+{ord(char):04X}" in lib.diagnostics[0].message


def test_a_control_character_does_not_abort_the_gates(tmp_path: Path) -> None:
    """Every gate runs on a library with a control character in one file's front matter."""
    root = write(tmp_path / "lib", {
        "commands/ok.md": command(""),
        "commands/bad.md": "---\ndescription: \x01\n---\nbody\n",
        "tests/t.yaml": "command: ok\ntests:\n  - description: \x02\n    assert: []\n",
    })
    lib = load_library(root)
    readiness = run_gates(lib, select("xml,tests,security,docs"))
    codes = {f.code for result in readiness.results for f in result.findings}
    assert {"V102", "T101"} <= codes


@pytest.mark.parametrize(("newline", "name"), [
    ("\r", "cr"), ("\r\n", "crlf"), ("\n", "lf"),
])
def test_yaml_errors_are_placed_the_same_with_any_newline(tmp_path: Path, newline: str,
                                                          name: str) -> None:
    """CR, CRLF and LF files give a YAML error the same line and column."""
    text = newline.join(["---", "description: d", "tags: [a, b", "---", "body", ""])
    root = tmp_path / name
    (root / "commands").mkdir(parents=True)
    (root / "commands/x.md").write_bytes(text.encode())
    lib = load_library(root)
    assert [(d.code, d.line) for d in lib.diagnostics] == [("V102", 3)]


def test_line_separators_do_not_end_lines(tmp_path: Path) -> None:
    """U+2028, U+2029 and U+0085 are characters of a line, for YAML errors and for tags."""
    root = write(tmp_path / "lib", {
        "commands/a.md": "---\ndescription: 'x\u2028y\x85z'\nbad: [\n---\nbody\n",
        "commands/b.md": "---\ndescription: x\n---\none\u2028two <open>\n",
    })
    lib = load_library(root)
    a = next(d for d in lib.diagnostics if d.path == "commands/a.md")
    assert (a.code, a.line) == ("V102", 3)
    from tallinn.gates.xml import check

    unclosed = [f for f in check(lib).findings if f.code == "V401"]
    assert [(f.path, f.line, f.col) for f in unclosed] == [("commands/b.md", 4, 9)]


def test_an_invalid_date_is_a_finding_not_a_traceback(tmp_path: Path) -> None:
    """A value PyYAML's constructor cannot build (`2001-13-45`) is V102 for that file."""
    root = write(tmp_path / "lib", {"commands/x.md": command("when: 2001-13-45")})
    lib = load_library(root)
    assert [d.code for d in lib.diagnostics] == ["V102"]


# --- includes, arguments, placeholders -------------------------------------------------------


def chain(root: Path, length: int, cycle: bool = False) -> Path:
    files = {"commands/top.md": command("", '<include component="c/n0"/>')}
    for index in range(length):
        nxt = index + 1 if index + 1 < length else (0 if cycle else None)
        body = f'<include component="c/n{nxt}"/>' if nxt is not None else "end"
        files[f"components/c/n{index}.md"] = command("", body)
    return write(root, files)


@pytest.mark.parametrize("length", [33, 300, 2_000])
def test_a_long_include_chain_is_v206_without_recursion(tmp_path: Path, length: int) -> None:
    """A chain of includes past the depth limit is V206 at the command's include."""
    lib = load_library(chain(tmp_path / "lib", length))
    assert "top" not in lib.commands
    deep = [(d.path, d.line, d.col) for d in lib.diagnostics if d.code == "V206"]
    assert ("commands/top.md", 5, 1) in deep


def test_a_chain_at_the_limit_composes(tmp_path: Path) -> None:
    """A chain exactly `max_include_depth` deep composes."""
    lib = load_library(chain(tmp_path / "lib", 32))
    assert "top" in lib.commands
    assert not [d for d in lib.diagnostics if d.code == "V206"]


def test_the_include_limit_is_a_setting(tmp_path: Path) -> None:
    """`[limits] max_include_depth` moves the limit."""
    root = chain(tmp_path / "lib", 5)
    (root / "tallinn.toml").write_text("[limits]\nmax_include_depth = 4\n")
    assert "top" not in load_library(root).commands
    (root / "tallinn.toml").write_text("[limits]\nmax_include_depth = 5\n")
    assert "top" in load_library(root).commands


@pytest.mark.parametrize("length", [2, 300, 2_000])
def test_a_long_include_cycle_is_v204_without_recursion(tmp_path: Path, length: int) -> None:
    """A cycle of includes of any length is reported, never a RecursionError."""
    lib = load_library(chain(tmp_path / "lib", length, cycle=True))
    assert "top" not in lib.commands
    codes = {d.code for d in lib.diagnostics}
    assert codes & {"V204", "V206"}


def test_too_many_arguments_is_v114(tmp_path: Path) -> None:
    """Declaring more than `max_arguments` arguments is V114 at `arguments:`."""
    args = "\n".join(f"  - name: a{i}" for i in range(101))
    body = " ".join(f"{{{{a{i}}}}}" for i in range(101))
    root = write(tmp_path / "lib", {"commands/x.md": command(f"arguments:\n{args}", body)})
    lib = load_library(root)
    assert [(d.code, d.line, d.col) for d in lib.diagnostics] == [("V114", 3, 1)]
    (root / "tallinn.toml").write_text("[limits]\nmax_arguments = 101\n")
    assert load_library(root).diagnostics == ()


@pytest.mark.parametrize("token", ["{{a}}", "$ARGUMENTS", '<include component="c/x"/>'])
def test_too_many_placeholders_is_v304(tmp_path: Path, token: str) -> None:
    """A body with more slots and includes than `max_placeholders` is V304 at the first extra."""
    root = write(tmp_path / "lib", {
        "tallinn.toml": "[limits]\nmax_placeholders = 100\n",
        "commands/x.md": command("arguments:\n  - name: a", (token + " ") * 100 + "\n" + token),
        "components/c/x.md": command("", "x"),
    })
    lib = load_library(root)
    assert [(d.path, d.code, d.line, d.col) for d in lib.diagnostics] == [
        ("commands/x.md", "V304", 7, 1)]


def test_docs_gate_marks_count_lines_as_the_loader_does(tmp_path: Path) -> None:
    """A U+2028 inside a front-matter value does not move the docs gate's finding a line down."""
    from tallinn.gates import docs

    root = write(tmp_path / "lib", {
        "commands/x.md": "---\ndescription: 'A long enough description\u2028of it'\n"
                         "arguments:\n  - name: path\n---\n{{path}}\n",
    })
    lib = load_library(root)
    found = docs.requirements(lib, docs.DocsSettings())
    undocumented = [r.finding for r in found if r.code == "D102" and r.finding is not None]
    assert [(f.line, f.col) for f in undocumented] == [(4, 5)]


def test_a_2025_library_keeps_its_limits(tmp_path: Path) -> None:
    """`[limits]` of a 2025-format library apply to its files, as in a native one."""
    root = write(tmp_path / "lib", {
        "tallinn.toml": '[library]\nformat = "tallinn-2025"\n[limits]\nmax_file_bytes = 300\n',
        "commands/x.md": "---\ndescription: d\n---\n<command_file><metadata><name>/x</name>"
                         "</metadata></command_file>\n" + "x" * 400 + "\n",
    })
    lib = load_library(root)
    assert lib.config.limits.max_file_bytes == 300
    assert [(d.path, d.code) for d in lib.diagnostics] == [("commands/x.md", "V112")]


# --- How many files ----------------------------------------------------------------------


def test_a_folder_over_max_files_is_v116_and_stops_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commands/ folder holding more entries than `max_files` is V116 (an error, so the
    gates say NO-GO and a server keeps its last library), and listing stops at the limit:
    no more entries are looked at than the limit and one."""
    import os

    from tallinn.library import FilesSource, build_library

    root = write(tmp_path / "lib", {"tallinn.toml": "[limits]\nmax_files = 20\n",
                                    **{f"commands/c{i:03}.md": command("") for i in range(200)}})
    looked_at = [0]
    real_scandir = os.scandir

    class Counted:
        def __init__(self, path: str) -> None:
            self.listing = real_scandir(path)

        def __enter__(self) -> Counted:
            return self

        def __exit__(self, *_: object) -> None:
            self.listing.close()

        def __iter__(self) -> Counted:
            return self

        def __next__(self) -> os.DirEntry[str]:
            entry = next(self.listing)
            looked_at[0] += 1
            return entry

    monkeypatch.setattr(os, "scandir", Counted)
    lib = load_library(root)
    monkeypatch.undo()
    assert [(d.code, d.path) for d in lib.errors] == [("V116", "commands")]
    assert "more than 20 files and folders under commands/" in lib.errors[0].message
    assert looked_at[0] <= 21 + 5  # the limit and one, plus the library's top-level folders
    assert len(lib.commands) <= 20
    files = {p.relative_to(root).as_posix(): p.read_bytes()
             for p in root.rglob("*") if p.is_file()}
    in_memory = build_library(FilesSource(files))
    assert [(d.code, d.path) for d in in_memory.errors] == [("V116", "commands")]
    (root / "tallinn.toml").write_text("[limits]\nmax_files = 200\n")
    assert load_library(root).errors == ()
