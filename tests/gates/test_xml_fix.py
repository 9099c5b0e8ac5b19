"""Applying fixes: edits, overlaps, newline styles, and never making a file worse."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tallinn.gates import xml
from tallinn.gates.fix import apply_edits, fix_files, select_fixes
from tallinn.library import Diagnostic, Edit, Fix, load_library


def hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def checker(root: Path):  # type: ignore[no-untyped-def]
    def check() -> list[Diagnostic]:
        return list(xml.check(load_library(root)).findings)

    return check


def test_apply_edits_in_order_and_refuses_overlaps() -> None:
    assert apply_edits("abcdef", [Edit(4, 5, "E"), Edit(0, 1, "A"), Edit(2, 2, "+")]) == \
        "Ab+cdEf"
    with pytest.raises(ValueError, match="overlaps"):
        apply_edits("abcdef", [Edit(0, 3, ""), Edit(2, 4, "")])
    with pytest.raises(ValueError, match="outside"):
        apply_edits("abc", [Edit(2, 9, "")])


def test_select_fixes_keeps_the_first_of_overlapping_fixes() -> None:
    first = Fix("a", (Edit(0, 3, "x"),))
    second = Fix("b", (Edit(2, 4, "y"),))
    third = Fix("c", (Edit(3, 3, "z"), Edit(5, 6, "w")))
    same_point = Fix("d", (Edit(3, 3, "q"),))
    assert select_fixes([first, second, third, same_point]) == [first, third]


def test_safe_fixes_apply_and_other_files_stay_byte_identical(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({
        "commands/a/colon.md": "---\ndescription: Review code: carefully\n---\nBody\n",
        "commands/a/hint.md": "---\ndescription: Hint\nargument-hint: [path]\n---\nBody\n",
        "commands/a/clean.md": "---\ndescription: Clean\n---\n<a>unclosed\n",
        "components/x/y.md": "---\ndescription: Y\n---\nY\n",
    })
    before = hashes(root)
    report = fix_files(root, checker(root))
    after = hashes(root)
    changed = {p for p in before if before[p] != after[p]}
    assert changed == {"commands/a/colon.md", "commands/a/hint.md"}
    assert report.changed == ("commands/a/colon.md", "commands/a/hint.md")
    assert [a.code for a in report.applied] == ["V102", "V103"]
    assert str(report.applied[0]) == ("commands/a/colon.md:2:25: V102 quote the value of "
                                      "'description'")
    assert (root / "commands/a/colon.md").read_text() == (
        '---\ndescription: "Review code: carefully"\n---\nBody\n')
    assert [f.code for f in report.remaining] == ["V401"]  # unsafe: left for --unsafe-fixes
    assert report.restored == ()
    assert report.skipped == ()


def test_unsafe_fixes_only_when_asked(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({"commands/a/x.md": "---\ndescription: X\n---\n<a>unclosed\n"})
    report = fix_files(root, checker(root), unsafe=True)
    assert (root / "commands/a/x.md").read_text().endswith("<a>unclosed</a>\n")
    assert report.remaining == ()


def test_fixes_repeat_while_they_reveal_more(write_library) -> None:  # type: ignore[no-untyped-def]
    """YAML stops at its first error; the next round fixes the next one."""
    root = write_library({"commands/a/x.md": (
        "---\ndescription: a: b\nargument-hint: [p] [q]\n---\nBody\n")})
    report = fix_files(root, checker(root))
    assert len(report.applied) == 2
    assert (root / "commands/a/x.md").read_text() == (
        '---\ndescription: "a: b"\nargument-hint: "[p] [q]"\n---\nBody\n')
    assert report.remaining == ()


def test_a_fix_that_makes_a_file_worse_is_undone(tmp_path: Path) -> None:
    path = tmp_path / "commands/a/x.md"
    path.parent.mkdir(parents=True)
    original = b"---\ndescription: X\n---\nbody\n"
    path.write_bytes(original)
    broken = Diagnostic("V999", "bad", "commands/a/x.md", 4, 1,
                        fix=Fix("break it", (Edit(0, 3, "oops"),)))
    calls = iter([[broken], [broken, broken.__class__("V101", "worse", broken.path)], [broken]])

    def check() -> list[Diagnostic]:
        return next(calls)

    report = fix_files(tmp_path, check)
    assert path.read_bytes() == original
    assert report.restored == ("commands/a/x.md",)
    assert report.applied == ()


def test_crlf_and_bom_are_kept_and_mixed_newlines_skipped(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({"commands/a/x.md": "x", "commands/a/y.md": "y"})
    crlf = root / "commands/a/x.md"
    crlf.write_bytes("\ufeff---\r\ndescription: a: b\r\n---\r\nBody\r\n".encode())
    mixed = root / "commands/a/y.md"
    mixed_bytes = b"---\r\ndescription: a: b\n---\nBody\n"
    mixed.write_bytes(mixed_bytes)
    report = fix_files(root, checker(root))
    assert crlf.read_bytes() == "\ufeff---\r\ndescription: \"a: b\"\r\n---\r\nBody\r\n".encode()
    assert mixed.read_bytes() == mixed_bytes
    assert report.skipped == (("commands/a/y.md", "the file mixes CRLF and LF newlines"),)


def test_unreadable_and_no_op_fixes_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "gone.md").write_bytes(b"\xff")
    (tmp_path / "same.md").write_text("abc")
    findings = [
        Diagnostic("V1", "x", "gone.md", fix=Fix("f", (Edit(0, 0, "a"),))),
        Diagnostic("V1", "x", "same.md", fix=Fix("f", (Edit(0, 1, "a"),))),
    ]
    report = fix_files(tmp_path, lambda: findings)
    reasons = dict(report.skipped)
    assert reasons["gone.md"].startswith("cannot read the file")
    assert reasons["same.md"] == "the fixes change nothing"


def test_a_fix_that_comes_back_is_not_applied_twice(tmp_path: Path) -> None:
    """A fix whose finding is still there afterwards is undone once and not tried again."""
    (tmp_path / "x.md").write_text("abc")
    offer = [Diagnostic("V1", "x", "x.md", fix=Fix("f", (Edit(0, 1, "z"),)))]
    calls = 0

    def check() -> list[Diagnostic]:
        nonlocal calls
        calls += 1
        return offer

    report = fix_files(tmp_path, check, rounds=5)
    assert (tmp_path / "x.md").read_text() == "abc"
    assert report.applied == ()
    assert [str(r) for r in report.rejected] == [
        "x.md:1:1: V1 f: its finding is still there (V1 x)"]
    assert calls == 3  # the findings, the check after the fix, the check after undoing it
    assert not report.unfinished


def test_fixes_that_undo_each_other_stop(tmp_path: Path) -> None:
    (tmp_path / "x.md").write_text("abc")
    offers = iter([
        [Diagnostic("V1", "x", "x.md", fix=Fix("to z", (Edit(0, 1, "z"),)))],
        [Diagnostic("V1", "y", "x.md", fix=Fix("to a", (Edit(0, 1, "a"),)))],
        [Diagnostic("V1", "x", "x.md", fix=Fix("to z", (Edit(0, 1, "z"),)))],
    ])
    report = fix_files(tmp_path, lambda: next(offers))
    assert (tmp_path / "x.md").read_text() == "zbc"
    assert report.skipped == (("x.md", "the fixes undo each other"),)
