"""The built wheel is the whole product: installed in a fresh environment, it serves the
bundled starter library from any folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTER = ROOT / "src" / "tallinn" / "starter"
TIMEOUT = 600.0


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "TALLINN_LIBRARY", "PROJECT_ROOT", "PYTHONPATH")}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    return result


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT * 3)
def test_the_wheel_installs_and_lists_the_starter_from_an_unrelated_folder(
    tmp_path: Path,
) -> None:
    """`uv build --wheel`, installed into a new virtual environment, gives a `tallinn` whose
    `list` run outside the checkout shows every starter command."""
    uv = shutil.which("uv")
    assert uv, "uv is needed to build the wheel"
    dist = tmp_path / "dist"
    _run([uv, "build", "--wheel", "--out-dir", str(dist)], ROOT)
    wheel = next(dist.glob("tallinn-*.whl"))
    starter_files = {p.relative_to(ROOT / "src").as_posix() for p in STARTER.rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts}
    with zipfile.ZipFile(wheel) as archive:
        assert starter_files <= set(archive.namelist())

    venv = tmp_path / "venv"
    _run([uv, "venv", "--quiet", str(venv)], tmp_path)
    _run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
          str(wheel)], tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = _run([str(venv / "bin" / "tallinn"), "list", "--json"], elsewhere)
    names = {command["name"] for command in json.loads(listed.stdout)}
    expected = {p.stem for p in (STARTER / "commands").rglob("*.md")
                if p.name.lower() != "readme.md"}
    assert names == expected
    _run([str(venv / "bin" / "tallinn"), "check"], elsewhere)
