"""Claude Code's own CLI (`claude mcp add`, `claude mcp list`) against a production server:
what it prints without the bearer header and with it. Nothing here logs in: `claude mcp list`
only connects to the configured servers. The lines are quoted in docs/serving.md."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tallinn.ops.store import open_store

from .conftest import NodeTools, run_http_server

pytestmark = [pytest.mark.node, pytest.mark.slow, pytest.mark.timeout(600)]

SERVING = Path(__file__).resolve().parents[2] / "docs" / "serving.md"
QUIET = {
    # No update checks, telemetry or error reports: the machine may only reach the registries.
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}


def claude(node_tools: NodeTools, home: Path, *args: str) -> str:
    done = subprocess.run(
        [str(node_tools.bin / "claude"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=home,
        env={**node_tools.env, **QUIET, "HOME": str(home)},
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return done.stdout + done.stderr


def server_line(output: str) -> str:
    """The line `claude mcp list` prints for the server named tallinn."""
    lines = [line for line in output.splitlines() if line.startswith("tallinn: ")]
    assert len(lines) == 1, output
    return lines[0]


def test_claude_code_says_what_to_send_and_connects_with_the_header(
    node_tools: NodeTools, fixture_library: Path, tmp_path: Path
) -> None:
    """Without the header Claude Code prints the server's advice naming --header; with it,
    it connects; both lines are the ones docs/serving.md shows."""
    with open_store(f"sqlite:///{fixture_library / '.tallinn' / 'state.db'}") as store:
        token = store.create_token("claude-code-interop")
    log = tmp_path / "serve.log"
    with run_http_server(fixture_library, log, "--production") as server:
        bare, with_header = tmp_path / "bare", tmp_path / "with-header"
        bare.mkdir()
        with_header.mkdir()
        claude(node_tools, bare, "mcp", "add", "--transport", "http", "tallinn", server.url)
        refused = server_line(claude(node_tools, bare, "mcp", "list"))
        claude(
            node_tools,
            with_header,
            "mcp",
            "add",
            "--transport",
            "http",
            "tallinn",
            server.url,
            "--header",
            f"Authorization: Bearer {token}",
        )
        connected = server_line(claude(node_tools, with_header, "mcp", "list"))
    advice = refused.split(" - ", 1)[1]
    assert advice == (
        "✘ Failed to connect — Dynamic Client Registration rejected (HTTP 404): "
        '{"error": "oauth_not_supported", "error_description": "this server takes a bearer '
        "token, not OAuth: claude mcp add --transport http NAME URL --header "
        "'Authorization: Bearer <token>'\"}"
    )
    assert connected == f"tallinn: {server.url} (HTTP) - ✔ Connected"
    documented = SERVING.read_text(encoding="utf-8")
    assert advice in documented
    assert "(HTTP) - ✔ Connected" in documented
