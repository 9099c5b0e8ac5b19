"""Hot reload: edits become visible quickly; a broken library never replaces a good one."""

from __future__ import annotations

import shutil
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from tests.serve.conftest import StartThread
from tests.serve.serve_helpers import free_port, metric_value, wait_until

from tallinn.library import Library, LibraryError, load_library
from tallinn.serve import Outcome, Registry, ServeConfig

pytestmark = pytest.mark.timeout(60)

THREAT_MODEL = """---
description: Build a threat model of a service
arguments:
  - name: service
    description: The service to model
    required: true
tags: [security, design]
---
{body}
"""
BROKEN = """---
description: Build a threat model: of a service
arguments: [
---
Broken.
"""


async def _prompt_text(url: str, service: str = "billing") -> str:
    async with Client(streamable_http_client(f"{url}/mcp"), mode="legacy") as client:
        result = await client.get_prompt("threat-model", {"service": service})
        return result.messages[0].content.text  # type: ignore[union-attr]


async def _wait_for_text(url: str, wanted: str, timeout: float = 30.0) -> None:
    """Poll prompts/get until its text contains `wanted` (how fast: benchmarks/bench_serve.py)."""
    with anyio.fail_after(timeout):
        while wanted not in await _prompt_text(url):
            await anyio.sleep(0.02)


@pytest.mark.slow
async def test_edit_break_and_fix_a_command(
    serve_thread: StartThread, library_dir: Path, tmp_path: Path
) -> None:
    """Edits are served; a broken edit keeps the last good library serving."""
    served = tmp_path / "served"
    shutil.copytree(library_dir, served)
    registry = Registry(served)
    registry.load()
    server = serve_thread(ServeConfig(port=free_port(), reload=True), reg=registry)
    command = served / "commands/security/threat-model.md"
    assert "Model the threats to billing." in await _prompt_text(server.url)

    command.write_text(THREAT_MODEL.format(body="Version two for {{service}}."), encoding="utf-8")
    await _wait_for_text(server.url, "Version two for billing.")

    command.write_text(BROKEN, encoding="utf-8")

    def refused() -> bool:
        text = httpx2.get(f"{server.url}/metrics").text
        return metric_value(text, "tallinn_library_reload_failures_total") >= 1

    wait_until(refused, timeout=30)
    assert "Version two for billing." in await _prompt_text(server.url)
    ready = httpx2.get(f"{server.url}/ready")
    assert ready.status_code == 200  # still serving the last good library
    problems = ready.json()["reload_error"]
    assert any("commands/security/threat-model.md" in p for p in problems)
    assert not any(str(tmp_path) in p for p in problems)

    command.write_text(THREAT_MODEL.format(body="Version three for {{service}}."), encoding="utf-8")
    await _wait_for_text(server.url, "Version three for billing.")
    wait_until(lambda: "reload_error" not in httpx2.get(f"{server.url}/ready").json(), timeout=30)
    text = httpx2.get(f"{server.url}/metrics").text
    assert metric_value(text, "tallinn_library_reloads_total") >= 2


async def test_reload_outcomes(registry: Registry, library_dir: Path) -> None:
    """Unchanged files do not swap; a changed library swaps; listeners hear of it."""
    heard: list[tuple[str | None, str]] = []

    async def listener(previous: object, current: object) -> None:
        heard.append((getattr(previous, "library", None) and "old", "new"))

    async def broken_listener(previous: object, current: object) -> None:
        raise RuntimeError("listener bug")

    registry.subscribe(broken_listener)
    registry.subscribe(listener)
    before = registry.snapshot()
    assert (await registry.reload()).outcome is Outcome.UNCHANGED
    assert registry.snapshot() is before
    (library_dir / "components/style/tone.md").write_text(
        "---\ndescription: Tone\n---\nTerse.\n", encoding="utf-8"
    )
    assert (await registry.reload()).outcome is Outcome.SWAPPED
    assert registry.snapshot() is not before
    assert heard == [("old", "new")]
    assert registry.snapshot().texts["tallinn://components/style/tone"].endswith("Terse.\n")


async def test_unusable_folder_is_refused(registry: Registry, library_dir: Path) -> None:
    """If the folder disappears, the last good library keeps serving and the error is kept."""
    before = registry.snapshot()
    shutil.rmtree(library_dir)
    result = await registry.reload()
    assert result.outcome is Outcome.REFUSED
    assert registry.snapshot() is before
    assert registry.reload_error == ("library folder is not usable (see the server log)",)
    assert str(library_dir) not in registry.reload_error[0]


async def test_loader_crash_is_refused(library_dir: Path) -> None:
    calls = 0

    def flaky(root: Path) -> Library:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise OSError("disk on fire")
        return load_library(root)

    registry = Registry(library_dir, loader=flaky)
    registry.load()
    result = await registry.reload()
    assert result.outcome is Outcome.REFUSED
    assert result.problems == ("library could not be loaded (see the server log)",)


def test_first_load_of_an_unusable_folder_raises(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "missing")
    assert registry.current is None
    with pytest.raises(RuntimeError, match="no library loaded"):
        registry.snapshot()
    with pytest.raises(LibraryError):
        registry.load()
