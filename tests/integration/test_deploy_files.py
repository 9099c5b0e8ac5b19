"""The Dockerfile, the compose example and the CI workflow examples: linted and checked.

No Docker engine runs here: the Dockerfile is linted with hadolint and its server and health
check commands are run for real outside a container; the compose file is parsed and its
wiring checked; every GitHub workflow example is linted with actionlint.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.serve.serve_helpers import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "examples" / "compose"
WORKFLOWS = sorted((ROOT / "examples" / "ci").glob("github-*.yml"))
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert found, f"{name} is not installed: it is a dev dependency (uv sync)"
    return found


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_hadolint_passes_the_dockerfile() -> None:
    """hadolint finds nothing in the Dockerfile, not even at info level."""
    result = subprocess.run([_tool("hadolint"), "--no-color", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_a_user_from_the_wheel_serving_the_starter() -> None:
    """The final stage installs the built wheel, switches to a non-root user, and its command
    names no library, so the starter is served."""
    stage = _final_stage()
    users = [args for keyword, args in stage if keyword == "USER"]
    assert users, "no USER in the final stage"
    assert users[-1].split(":")[0] not in ("0", "root")
    runs = " ".join(args for keyword, args in stage if keyword == "RUN")
    assert "tallinn-*.whl" in runs
    assert "pip install" in runs
    assert any(keyword == "RUN" and "uv build --wheel" in args for keyword, args in _instructions())
    command = json.loads(next(args for keyword, args in stage if keyword == "CMD"))
    assert command[:3] == ["tallinn", "serve", "--http"]
    assert "--library" not in command


def _exec_form(keyword: str) -> list[str]:
    args = next(a for k, a in _final_stage() if k == keyword)
    if keyword == "HEALTHCHECK":
        args = args.split(" CMD ", 1)[1]
    parsed: list[str] = json.loads(args)
    return parsed


def _on_port(words: list[str], port: int) -> list[str]:
    return [word.replace("8000", str(port)) for word in words]


@pytest.mark.slow
def test_the_health_check_passes_against_the_images_command_and_fails_without_it(
    tmp_path: Path,
) -> None:
    """The image's CMD, run with its ENV, serves the starter, and the image's HEALTHCHECK
    exits 0 against it and non-zero once it is stopped."""
    port = free_port()
    command = _on_port(_exec_form("CMD"), port)
    health = _on_port(_exec_form("HEALTHCHECK"), port)
    assert health[0] == "python"
    assert "/health" in health[-1]
    server = ServerProcess(command[3:], {"TALLINN_STORE_URL": f"sqlite:///{tmp_path}/s.db"},
                           port)
    try:
        server.wait_healthy()
        ok = subprocess.run([sys.executable, *health[1:]], capture_output=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
    finally:
        server.stop()
    down = subprocess.run([sys.executable, *health[1:]], capture_output=True, timeout=30)
    assert down.returncode != 0


def test_the_build_context_holds_only_what_the_wheel_needs() -> None:
    """.dockerignore leaves everything out but the build inputs the Dockerfile copies."""
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "*"
    kept = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for keyword, args in _instructions():
        if keyword == "COPY" and not args.startswith("--from"):
            copied.update(word.rstrip("/").removeprefix("./") for word in args.split()[:-1])
    assert copied == kept


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    return data


def test_the_compose_example_wires_postgres_two_replicas_and_nginx() -> None:
    """Two production, stateless replicas share PostgreSQL (started healthy first) and sit
    behind nginx, whose upstream is the replicas' service and port."""
    services = _compose()["services"]
    assert set(services) == {"postgres", "tallinn", "nginx"}
    tallinn = services["tallinn"]
    assert tallinn["deploy"]["replicas"] == 2
    assert {"--production", "--stateless"} <= set(tallinn["command"])
    port = tallinn["command"][tallinn["command"].index("--port") + 1]
    url = tallinn["environment"]["TALLINN_STORE_URL"]
    assert url.startswith("postgresql://tallinn:")
    assert url.endswith("@postgres:5432/tallinn")
    assert tallinn["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert (COMPOSE / tallinn["build"]["context"] / tallinn["build"]["dockerfile"]).resolve() \
        == DOCKERFILE
    assert services["postgres"]["environment"]["POSTGRES_USER"] == "tallinn"
    nginx = services["nginx"]
    mounted = nginx["volumes"][0].split(":")[0]
    conf = (COMPOSE / mounted).read_text()
    assert f"server tallinn:{port};" in conf
    assert "proxy_buffering off;" in conf
    assert nginx["depends_on"]["tallinn"]["condition"] == "service_healthy"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_actionlint_passes_every_github_workflow_example(workflow: Path) -> None:
    """actionlint finds nothing in the workflow example."""
    result = subprocess.run([_tool("actionlint"), "-no-color", str(workflow)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_example_gates_uploads_sarif_and_checks_export_drift() -> None:
    """The GitHub example runs the gates, uploads SARIF, keeps the readiness report and has an
    export drift step."""
    assert WORKFLOWS
    steps = yaml.safe_load((ROOT / "examples/ci/github-actions.yml").read_text())[
        "jobs"]["gates"]["steps"]
    runs = " ".join(str(step.get("run", "")) for step in steps)
    uses = [str(step.get("uses", "")) for step in steps]
    assert "tallinn gates" in runs
    assert "--report gates.sarif" in runs
    assert "--format github" in runs
    assert "tallinn export --check" in runs
    assert any(u.startswith("github/codeql-action/upload-sarif@") for u in uses)
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
