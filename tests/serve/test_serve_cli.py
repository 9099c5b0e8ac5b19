"""`tallinn serve` and `tallinn smoke` through Typer's runner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import write_files
from tests.serve.conftest import StartThread
from tests.serve.serve_helpers import FIXTURE_LIBRARY, free_port
from typer.testing import CliRunner

import tallinn.serve as serving
from tallinn.cli import app
from tallinn.serve import LazyStore, Registry, ServeConfig, UnavailableStore, open_state_store

pytestmark = pytest.mark.timeout(60)
runner = CliRunner()


def _smoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, ["smoke", *args], env=env)


def test_smoke_passes_against_a_good_server(serve_thread: StartThread) -> None:
    """Every check passes against a healthy server; --json prints them for machines."""
    server = serve_thread()
    result = _smoke(f"{server.url}/mcp", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    names = [c["name"] for c in report["checks"]]
    assert names == [
        "GET /health",
        "GET /ready",
        "initialize",
        "prompts/list",
        "prompts/get code-review",
        "resources/read components",
        "bad request -> -32602",
    ]
    details = {c["name"]: c["detail"] for c in report["checks"]}
    assert details["resources/read components"] == "2/2 read"
    table = _smoke(server.url)
    assert table.exit_code == 0
    assert "7/7 checks passed" in table.stderr


def test_smoke_with_a_token(serve_thread: StartThread) -> None:
    server = serve_thread(ServeConfig(port=free_port(), reload=False, production=True))
    assert _smoke(server.url, "--json").exit_code == 1
    result = _smoke(server.url, "--json", env={"TALLINN_TOKEN": "good-token"})
    assert result.exit_code == 0, result.output


def test_smoke_fails_on_a_broken_critical_command(
    serve_thread: StartThread, tmp_path: Path
) -> None:
    """A critical command that does not render with its example fails the smoke test."""
    files = dict(FIXTURE_LIBRARY)
    files["commands/security/threat-model.md"] = """
        ---
        description: Build a threat model of a service
        arguments:
          - {name: service, description: The service, required: true}
        critical: true
        ---
        Model {{service}}.
    """
    registry = Registry(write_files(tmp_path / "critical", files))
    registry.load()
    server = serve_thread(reg=registry)
    result = _smoke(server.url, "--json")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["prompts/get code-review"]["ok"] is True
    assert checks["prompts/get threat-model"]["ok"] is False
    assert "missing required argument 'service'" in checks["prompts/get threat-model"]["detail"]


def test_smoke_reports_an_unreachable_server() -> None:
    result = _smoke(f"http://127.0.0.1:{free_port()}", "--json", "--timeout", "2")
    assert result.exit_code == 1
    checks = json.loads(result.stdout)["checks"]
    assert not any(c["ok"] for c in checks)
    assert checks[-1]["name"] == "MCP session"


def test_smoke_reports_a_server_that_is_not_ready(serve_thread: StartThread, store: Any) -> None:
    server = serve_thread()
    store.up = False
    result = _smoke(server.url, "--json")
    assert result.exit_code == 1
    ready = json.loads(result.stdout)["checks"][1]
    assert ready == {
        "name": "GET /ready",
        "ok": False,
        "detail": "HTTP 503 ['the state store does not answer']",
    }


def _capture(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake_http(registry: Registry, store: Any, config: ServeConfig,
                  *, follower: Any = None, controller: Any = None,
                  dashboard: Any = None) -> None:
        seen.update(registry=registry, store=store, config=config, transport="http",
                    follower=follower, controller=controller, dashboard=dashboard)

    async def fake_stdio(registry: Registry, store: Any, *, reload: bool,
                         follower: Any = None, controller: Any = None) -> None:
        seen.update(registry=registry, store=store, reload=reload, transport="stdio",
                    follower=follower, controller=controller)

    monkeypatch.setattr(serving, "serve_http", fake_http)
    monkeypatch.setattr(serving, "serve_stdio", fake_stdio)
    return seen


def test_serve_http_options_reach_the_config(
    monkeypatch: pytest.MonkeyPatch, library_dir: Path, tmp_path: Path
) -> None:
    """Options, TALLINN_ALLOWED_HOSTS and the library's [serve] table combine into one config."""
    seen = _capture(monkeypatch)
    (library_dir / "tallinn.toml").write_text(
        '[library]\nname = "x"\n[serve]\nrate_limit = "5/s"\nallowed_hosts = ["toml.example"]\n',
        encoding="utf-8",
    )
    env = {
        "TALLINN_STORE_URL": f"sqlite:///{tmp_path / 's.db'}",
        "TALLINN_ALLOWED_HOSTS": "env.example, other.example",
    }
    result = runner.invoke(
        app,
        [
            "serve",
            "--library",
            str(library_dir),
            "--http",
            "--port",
            "9123",
            "--stateless",
            "--no-reload",
            "--allowed-host",
            "cli.example",
            "--max-body-bytes",
            "2048",
            "--access-log",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    config: ServeConfig = seen["config"]
    assert seen["transport"] == "http"
    assert (config.port, config.stateless, config.reload, config.production) == (
        9123,
        True,
        False,
        False,
    )
    assert config.allowed_hosts == ("cli.example", "env.example", "other.example", "toml.example")
    assert config.rate_limit is not None
    assert config.rate_limit.rate == 5
    assert config.max_body_bytes == 2048
    assert config.access_log is True
    assert not isinstance(seen["store"], UnavailableStore)
    assert seen["store"].ping() is False  # closed once serving ends


def test_serve_stdio_by_default(monkeypatch: pytest.MonkeyPatch, library_dir: Path) -> None:
    seen = _capture(monkeypatch)
    result = runner.invoke(app, ["serve", "--library", str(library_dir)])
    assert result.exit_code == 0, result.output
    assert seen["transport"] == "stdio"
    assert seen["reload"] is True
    assert result.stdout == ""  # stdout is the MCP wire
    # The store is opened when a security event first needs it, not at start-up.
    assert isinstance(seen["store"], LazyStore)
    assert not seen["store"].opened


def test_stdio_in_production_opens_the_store_at_once(
    monkeypatch: pytest.MonkeyPatch, library_dir: Path
) -> None:
    """Production needs the store: over stdio too, a broken one stops the start."""
    _capture(monkeypatch)
    env = {"TALLINN_STORE_URL": "nonsense://"}
    result = runner.invoke(app, ["serve", "--library", str(library_dir), "--production"], env=env)
    assert result.exit_code == 2
    assert "cannot open the state store" in result.stderr


def test_production_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, library_dir: Path, tmp_path: Path
) -> None:
    seen = _capture(monkeypatch)
    env = {"CLAUDE_CODE_ENV": "production", "TALLINN_STORE_URL": f"sqlite:///{tmp_path / 'p.db'}"}
    result = runner.invoke(app, ["serve", "--library", str(library_dir), "--http"], env=env)
    assert result.exit_code == 0, result.output
    config: ServeConfig = seen["config"]
    assert config.production
    assert config.json_logs
    assert config.rate_limit is not None  # on by default in production


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--library", "/no/such/library"], {}, "library folder not found"),
        (["--rate-limit", "fast"], {}, "write N/s or N/m"),
        (["--port", "0"], {}, "port 0 is out of range"),
        (["--production"], {"TALLINN_STORE_URL": "nonsense://"}, "cannot open the state store"),
    ],
)
def test_serve_usage_errors_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    library_dir: Path,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    _capture(monkeypatch)
    full = ["serve", "--http", *args]
    if "--library" not in args:
        full += ["--library", str(library_dir)]
    result = runner.invoke(app, full, env=env)
    assert result.exit_code == 2
    assert message in result.stderr


def test_a_broken_store_outside_production_degrades(library_dir: Path) -> None:
    """Outside production the server starts without a store; /ready then says so."""
    store = open_state_store("nonsense://", library_dir, required=False)
    assert isinstance(store, UnavailableStore)
    assert store.ping() is False
    assert store.verify_token("x") is None
    store.record_event("auth_failure", client="ip:1", detail="d")
    store.close()


def test_cli_import_does_not_load_the_server() -> None:
    """`import tallinn.cli` stays fast: the MCP SDK and uvicorn load only for serve and smoke."""
    code = (
        "import sys, tallinn.cli; "
        "print(sorted(m for m in ('mcp', 'uvicorn', 'tallinn.serve') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
