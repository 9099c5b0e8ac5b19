"""The MCP conformance suite's server scenarios against `tallinn serve --http`.

Every scenario the pinned suite lists is either run here (APPLICABLE) or named, with the reason,
in conformance-not-applicable.yaml. A suite upgrade that brings a new scenario fails
`test_every_scenario_is_run_or_not_applicable` until someone decides which it is.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

HERE = Path(__file__).resolve().parent
NOT_APPLICABLE_FILE = HERE / "conformance-not-applicable.yaml"
DOCS = HERE.parents[1] / "docs" / "interop.md"

# Run against the server; the fixture library provides the prompt names they call.
APPLICABLE = (
    "server-initialize",
    "ping",
    "completion-complete",  # test_prompt_with_arguments, argument arg1
    "tools-list",
    "resources-list",
    "prompts-list",
    "prompts-get-simple",  # test_simple_prompt
    "prompts-get-with-args",  # test_prompt_with_arguments
    "server-sse-multiple-streams",
    "dns-rebinding-protection",
)
MODES = {"stateful": "http_server", "stateless": "stateless_http_server"}
_LISTED = re.compile(r"^\s*-\s+(?P<name>[a-z0-9][a-z0-9-]*)\b")


def load_not_applicable() -> dict[str, dict[str, str]]:
    """Read conformance-not-applicable.yaml into {scenario: entry}, checking its shape."""
    entries = yaml.safe_load(NOT_APPLICABLE_FILE.read_text(encoding="utf-8"))
    assert isinstance(entries, list), "the file is a list of {scenario, reason} entries"
    table: dict[str, dict[str, str]] = {}
    for entry in entries:
        assert isinstance(entry, dict), f"not a mapping: {entry!r}"
        assert set(entry) <= {"scenario", "reason", "capability"}, f"unknown keys: {entry}"
        name, reason = entry.get("scenario"), entry.get("reason")
        assert isinstance(name, str), f"entry without a scenario: {entry}"
        assert isinstance(reason, str), f"{name}: no reason given"
        assert reason.strip(), f"{name}: empty reason"
        assert name not in table, f"{name} is listed twice"
        table[name] = entry
    return table


NOT_APPLICABLE = load_not_applicable()


def needs_node(test: Any) -> Any:
    """Mark a test that runs Node and real servers (a first install takes a while)."""
    for mark in (pytest.mark.node, pytest.mark.slow, pytest.mark.timeout(1200)):
        test = mark(test)
    return test


def server_scenarios(output: str) -> list[str]:
    """Given `conformance list` output, return the names under "Server scenarios"."""
    names: list[str] = []
    section = ""
    for line in output.splitlines():
        if line and not line[0].isspace():
            section = line
            continue
        match = _LISTED.match(line)
        if match and section.lower().startswith("server scenarios"):
            names.append(match["name"])
    return names


@pytest.fixture(scope="session")
def suite_scenarios(node_tools: Any) -> list[str]:
    done = node_tools.run("conformance", "list", "--server", timeout=60)
    assert done.returncode == 0, done.stderr
    names = server_scenarios(done.stdout)
    assert names, f"no server scenarios in:\n{done.stdout}"
    return names


def test_lists_are_disjoint() -> None:
    """No scenario is both run and declared not applicable."""
    assert not set(APPLICABLE) & set(NOT_APPLICABLE)


def test_docs_name_every_scenario() -> None:
    """docs/interop.md names every scenario, run or not applicable."""
    text = DOCS.read_text(encoding="utf-8")
    missing = [n for n in (*APPLICABLE, *NOT_APPLICABLE) if f"`{n}`" not in text]
    assert not missing, f"docs/interop.md does not mention {missing}"


@needs_node
def test_every_scenario_is_run_or_not_applicable(suite_scenarios: list[str]) -> None:
    """The suite's server scenarios are exactly the ones run plus the ones declared N/A."""
    listed = set(suite_scenarios)
    unclassified = listed - set(APPLICABLE) - set(NOT_APPLICABLE)
    assert not unclassified, (
        f"new conformance scenarios {sorted(unclassified)}: add each to APPLICABLE in "
        f"{Path(__file__).name} or, with the reason, to {NOT_APPLICABLE_FILE.name}"
    )
    stale = (set(APPLICABLE) | set(NOT_APPLICABLE)) - listed
    assert not stale, f"scenarios the suite no longer has: {sorted(stale)}"


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_not_applicable_capabilities_are_not_offered(
    mode: str, request: pytest.FixtureRequest
) -> None:
    """A scenario is N/A for a missing capability only while the server really lacks it."""
    server = request.getfixturevalue(MODES[mode])
    capabilities = initialize_result(server.url)["capabilities"]
    for name, entry in NOT_APPLICABLE.items():
        if "capability" not in entry:
            continue
        value: Any = capabilities
        for part in entry["capability"].split("."):
            value = value.get(part) if isinstance(value, dict) else None
        assert not value, (
            f"the server now offers {entry['capability']}: run {name} (move it to APPLICABLE)"
        )


@needs_node
@pytest.mark.parametrize("scenario", APPLICABLE)
@pytest.mark.parametrize("mode", MODES)
def test_scenario(
    scenario: str, mode: str, node_tools: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The conformance scenario passes: no check fails (warnings are reported, not failed)."""
    server = request.getfixturevalue(MODES[mode])
    done = node_tools.run(
        "conformance",
        "server",
        "--url",
        server.url,
        "--scenario",
        scenario,
        "--output-dir",
        str(tmp_path),
        timeout=120,
        cwd=tmp_path,
    )
    results = list(tmp_path.glob("*/checks.json"))
    assert len(results) == 1, (
        f"no checks.json (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    )
    checks = json.loads(results[0].read_text(encoding="utf-8"))
    failed = [c for c in checks if c["status"] == "FAILURE"]
    assert not failed, (
        "\n".join(
            f"{c['id']}: {c.get('errorMessage') or c['description']}\n"
            f"  details: {json.dumps(c.get('details'))[:800]}"
            for c in failed
        )
        + f"\nserver log:\n{server.log_tail()}"
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert any(c["status"] in ("SUCCESS", "WARNING") for c in checks), checks
    for check in checks:
        if check["status"] == "WARNING":
            print(
                f"{scenario} ({mode}) warning: {check['id']}: "
                f"{check.get('errorMessage') or check['description']}"
            )


def initialize_result(url: str) -> dict[str, Any]:
    """Given an MCP URL, send one `initialize` over plain HTTP and return its result.

    The answer may come as JSON or as a one-event SSE stream; both are read.
    """
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "tallinn-interop-tests", "version": "0"},
            },
        }
    ).encode()
    http_request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
    )
    with urllib.request.urlopen(http_request, timeout=10) as response:
        kind = response.headers.get("content-type", "")
        text = response.read().decode()
    if "text/event-stream" in kind:
        data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
        message = next(m for m in map(json.loads, filter(None, data)) if m.get("id") == 1)
    else:
        message = json.loads(text)
    result = message["result"]
    assert isinstance(result, dict)
    return result
