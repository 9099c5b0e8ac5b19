"""The real Claude Code CLI accepts what the Claude Code targets write:
`claude plugin validate --strict` on the plugin, its marketplace, skills and commands.

Claude Code is pinned in tests/interop/package.json and installed by scripts/node.sh, as for
the interop tests; TALLINN_SKIP_NODE=1 skips these tests.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tallinn.export import TARGETS, write_export
from tallinn.export._claude import VERSION
from tallinn.library import Library

pytestmark = [pytest.mark.node, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT = 900.0
VALIDATE_TIMEOUT = 120.0


@pytest.fixture(scope="session")
def claude(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The `claude` binary scripts/node.sh installed, and an environment with a scratch HOME."""
    if os.environ.get("TALLINN_SKIP_NODE") == "1":
        pytest.skip("TALLINN_SKIP_NODE=1: Claude Code's CLI is not installed")
    done = subprocess.run(
        ["bash", "-c", f'eval "$(bash {ROOT}/scripts/node.sh)" && printf %s "$TALLINN_NODE22"'],
        cwd=ROOT, capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
        stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        pytest.fail(f"scripts/node.sh failed:\n{done.stderr}", pytrace=False)
    cache = Path(done.stdout).parents[1]  # <cache>/bin/node
    binary = cache / "node_modules/@anthropic-ai/claude-code/bin/claude.exe"
    assert binary.is_file(), f"scripts/node.sh did not install Claude Code at {binary}"
    home = tmp_path_factory.mktemp("claude-home")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "NO_COLOR": "1",
           "DISABLE_AUTOUPDATER": "1"}
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                             timeout=VALIDATE_TIMEOUT, env=env, cwd=home)
    assert version.stdout.startswith(VERSION), version.stdout
    return binary, env


def _validate(claude: tuple[Path, dict[str, str]], path: Path) -> tuple[int, dict[str, Any]]:
    """Run `claude plugin validate --strict --json PATH`; return its exit code and report,
    whose `contents` lists each file with an error or a warning."""
    binary, env = claude
    done = subprocess.run([str(binary), "plugin", "validate", "--strict", "--json", str(path)],
                          capture_output=True, text=True, timeout=VALIDATE_TIMEOUT, env=env,
                          cwd=env["HOME"], stdin=subprocess.DEVNULL)
    return done.returncode, json.loads(done.stdout)


@pytest.mark.parametrize(("target", "validated"), [
    ("claude-plugin", "."),
    ("claude-plugin", ".claude-plugin/marketplace.json"),
    ("claude-skills", ".claude"),
    ("claude-commands", ".claude"),
])
def test_claude_code_validates_the_export_strictly(
        claude: tuple[Path, dict[str, str]], source: Library, tmp_path: Path, target: str,
        validated: str) -> None:
    """`claude plugin validate --strict` passes on the export, warnings counted as errors, and
    the plugin provides one skill per command and the Tallinn MCP server."""
    exporter = TARGETS[target]
    write_export(exporter, source, exporter.build(source), tmp_path)
    code, report = _validate(claude, tmp_path / validated)
    assert (code, report["success"], report["contents"]) == (0, True, []), report
    if validated == ".":
        provides = report["provides"]
        assert len(provides["skills"]) == len(source.commands)
        assert [server["name"] for server in provides["mcpServers"]] == ["tallinn"]


def test_claude_code_refuses_a_skill_without_description(claude: tuple[Path, dict[str, str]],
                                            edge: Library, tmp_path: Path) -> None:
    """The check can fail: a skill without a description is refused under --strict."""
    exporter = TARGETS["claude-skills"]
    write_export(exporter, edge, exporter.build(edge), tmp_path)
    (tmp_path / ".claude/skills/top/SKILL.md").write_text("---\nname: top\n---\nHello.\n",
                                                         encoding="utf-8")
    code, report = _validate(claude, tmp_path / ".claude")
    assert code != 0
    assert [item["file"].rsplit("/", 2)[-2] for item in report["contents"]] == ["top"]
