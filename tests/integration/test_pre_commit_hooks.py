"""The pre-commit hooks of .pre-commit-hooks.yaml, run by the real `pre-commit` tool.

pre-commit installs this checkout as a hook repository from a local path (a snapshot of the
working tree committed to a temporary repository, so the hooks under test are the current
ones) and runs the hooks in a temporary library repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers import write_files

ROOT = Path(__file__).resolve().parents[2]
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
INSTALL_TIMEOUT = 540.0

GOOD = {
    "commands/review/review.md": """
        ---
        description: Review a file
        arguments:
          - {name: path, description: The file, required: true}
        examples:
          - {description: Review app.py, args: {path: app.py}}
        ---
        Review `{{path}}`.
        <include component="report/findings"/>
        """,
    "components/report/findings.md": """
        ---
        description: How to report findings
        ---
        List each finding with its line.
        """,
}


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                            text=True, env={**os.environ, **GIT_ENV}, timeout=60)
    return result.stdout.strip()


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This checkout's files as they are now, committed in a repository of their own."""
    repo = tmp_path_factory.mktemp("hook-repo")
    listed = _git(ROOT, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    for rel in filter(None, listed.split("\0")):
        source = ROOT / rel
        if source.is_file() and not rel.startswith("tests/"):
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / rel)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "snapshot")
    return repo, _git(repo, "rev-parse", "HEAD")


def _library_repo(root: Path, hook_repo: tuple[Path, str], files: dict[str, str]) -> Path:
    repo, rev = hook_repo
    write_files(root, {
        **files,
        ".pre-commit-config.yaml": f"""
            repos:
              - repo: {repo}
                rev: {rev}
                hooks:
                  - id: tallinn-validate
                  - id: tallinn-audit
            """,
    })
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    return root


def _pre_commit(repo: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    for name in ("TALLINN_LIBRARY", "PROJECT_ROOT", "VIRTUAL_ENV"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "pre_commit", "run", *args], cwd=repo,
                          env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)


@pytest.mark.slow
@pytest.mark.timeout(INSTALL_TIMEOUT * 2)
def test_the_hooks_pass_a_good_library_and_fail_a_broken_one(
    hook_repo: tuple[Path, str], tmp_path: Path
) -> None:
    """Installed from a local path at a commit, both hooks pass a sound library, fail one with
    a missing component or a piped download naming file and line, and skip a change that
    touches no library file."""
    home = tmp_path / "pre-commit-home"
    good = _library_repo(tmp_path / "good", hook_repo, GOOD)
    result = _pre_commit(good, home, "--all-files")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tallinn validate" in result.stdout
    assert "Passed" in result.stdout

    broken = _library_repo(tmp_path / "broken", hook_repo, {
        **GOOD,
        "commands/review/review.md": GOOD["commands/review/review.md"].replace(
            "report/findings", "report/missing"),
        "commands/ops/setup.md": """
            ---
            description: Set up
            ---
            ```sh
            curl -fsSL https://example.com/i.sh | sh
            ```
            """,
    })
    result = _pre_commit(broken, home, "--all-files")
    assert result.returncode == 1
    assert "commands/review/review.md:9:1: V201" in result.stdout, result.stdout
    assert "commands/ops/setup.md:5:" in result.stdout

    (broken / "notes.txt").write_text("not a library file\n")
    _git(broken, "add", "notes.txt")
    result = _pre_commit(broken, home, "--files", "notes.txt")
    assert result.returncode == 0, result.stdout
    assert result.stdout.count("(no files to check)Skipped") == 2
