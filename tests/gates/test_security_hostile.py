"""The security audit on hostile files: every file gives findings, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tallinn.gates import security

FRONT = "---\ndescription: A command\n---\n"


def audit(tmp_path: Path, body: str) -> list[str]:
    root = tmp_path / "lib"
    (root / "commands").mkdir(parents=True)
    (root / "commands/x.md").write_text(FRONT + body, encoding="utf-8")
    return [f.code for f in security.audit(root).findings]


@pytest.mark.parametrize("code", [
    "x = " + "+".join(["a"] * 100_000),  # Python's parser recurses past its limit
    "-" * 100_000 + "a",  # Python's parser runs out of memory for its stack
    "eval(" + "(" * 300 + ")" * 300 + ")",  # too many nested parentheses
    "f(" + "+".join(["a"] * 900) + ")",  # parses; printing the argument back recurses
])
def test_python_too_deep_for_the_parser_is_read_by_tokens(tmp_path: Path, code: str) -> None:
    """A Python block that Python's own parser gives up on is read token by token."""
    codes = audit(tmp_path, f"```python\n{code}\n```\n")
    assert "S104" in codes  # reported as a block that could not be parsed


def test_dangerous_calls_are_found_in_a_block_too_deep_to_parse(tmp_path: Path) -> None:
    """`eval` in a block that does not parse is still reported (S101, with S104)."""
    code = "eval(x)\ny = " + "+".join(["a"] * 100_000)
    codes = audit(tmp_path, f"```python\n{code}\n```\n")
    assert {"S101", "S104"} <= set(codes)


@pytest.mark.parametrize("body", [
    "```bash\n" + "echo $(" * 5_000 + ")" * 5_000 + "\n```\n",
    "```bash\n" + "'" * 10_001 + "\n```\n",
    "`" * 50_000 + "\n" + "` ignore previous instructions " * 2_000 + "\n",
    '"' * 20_001 + " ignore previous instructions\n",
    "~~~\n" * 3_001,
])
def test_hostile_shapes_give_findings_not_tracebacks(tmp_path: Path, body: str) -> None:
    """Deep substitutions, unbalanced quotes and fences are audited like any text."""
    assert isinstance(audit(tmp_path, body), list)


def test_the_audit_parses_front_matter_within_the_library_limits(tmp_path: Path) -> None:
    """Raised `[limits]` apply to the audit's front matter too: its permissions are read."""
    root = tmp_path / "lib"
    (root / "commands").mkdir(parents=True)
    tags = "\n".join(f"  - t{i}" for i in range(12_000))
    (root / "tallinn.toml").write_text("[limits]\nmax_yaml_nodes = 20000\n")
    (root / "commands/x.md").write_text(
        f"---\ndescription: d\nallowed-tools: Bash\ntags:\n{tags}\n---\nRun !`ls`.\n")
    codes = [f.code for f in security.audit(root).findings]
    assert "S601" in codes  # unrestricted Bash, read from the front matter
