"""The library CLI commands, through Typer's runner: exit codes, stdout data, stderr messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tallinn.cli import app

runner = CliRunner()

FILES = {
    "commands/review/review.md": """
        ---
        description: Review a file carefully
        argument-hint: "<path> [tone]"
        arguments:
          - {name: path, description: File to review, required: true}
          - {name: tone, description: Tone, type: enum, enum: [calm, dry], default: calm}
        allowed-tools: Read, Grep
        model: sonnet
        tags: [review]
        critical: true
        examples:
          - {description: Review app.py, args: {path: app.py}}
        ---
        Review {{path}} in a {{tone}} tone. [bold]not markup[/bold]
        <include component="shared/rules"/>
        """,
    "commands/git/commit.md": """
        ---
        description: Write a commit message
        ---
        Message for: $ARGUMENTS
        """,
    "components/shared/rules.md": """
        ---
        description: Shared rules
        ---
        Be precise.
        """,
}


@pytest.fixture
def lib(write_library) -> Path:  # type: ignore[no-untyped-def]
    return write_library(FILES)  # type: ignore[no-any-return]


def run(*args: str) -> object:
    return runner.invoke(app, list(args))


def test_list_table_and_json(lib: Path) -> None:
    result = runner.invoke(app, ["list", "--library", str(lib)])
    assert result.exit_code == 0, result.output
    assert "review" in result.stdout
    assert "commit" in result.stdout
    data = json.loads(runner.invoke(app, ["list", "-L", str(lib), "--json"]).stdout)
    assert [c["name"] for c in data] == ["commit", "review"]
    review = data[1]
    assert review["arguments"][1]["enum"] == ["calm", "dry"]
    assert review["critical"] is True
    only = json.loads(
        runner.invoke(app, ["list", "-L", str(lib), "--category", "git", "--json"]).stdout)
    assert [c["name"] for c in only] == ["commit"]
    missing = runner.invoke(app, ["list", "-L", str(lib), "--category", "nope"])
    assert missing.exit_code == 2
    assert "categories: git, review" in missing.stderr


def test_show(lib: Path) -> None:
    result = runner.invoke(app, ["show", "review", "-L", str(lib)])
    assert result.exit_code == 0, result.output
    for text in ("/review", "usage: /review <path> [tone]", "calm, dry", "shared/rules",
                 "allowed-tools: Read, Grep", "model: sonnet", "critical: yes", "Review app.py"):
        assert text in result.stdout
    data = json.loads(runner.invoke(app, ["show", "review", "-L", str(lib), "--json"]).stdout)
    assert data["includes"] == [{"component": "shared/rules", "depth": 0}]


def test_render_positional_named_and_json(lib: Path) -> None:
    result = runner.invoke(app, ["render", "review", "src/a.py", "dry", "-L", str(lib)])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Review src/a.py in a dry tone. [bold]not markup[/bold]\nBe precise.\n")
    named = runner.invoke(app, ["render", "/review", "--arg", "path=x=y", "-L", str(lib)])
    assert "Review x=y in a calm tone." in named.stdout
    data = json.loads(runner.invoke(
        app, ["render", "commit", "fix", "the", "bug", "-L", str(lib), "--json"]).stdout)
    assert data == {"command": "commit", "arguments": {}, "text": "Message for: fix the bug\n"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["render", "review"], "missing required argument 'path'"),
        (["render", "review", "a", "loud"], "'loud' is not one of calm, dry"),
        (["render", "review", "a", "b", "c"], "at most 2 positional"),
        (["render", "review", "--arg", "novalue"], "--arg takes NAME=VALUE"),
        (["render", "review", "a", "--arg", "path=b"], "given twice"),
        (["render", "reviw"], "no command named 'reviw' (did you mean review?)"),
        (["show", "nothing"], "no command named 'nothing'"),
    ],
)
def test_usage_errors_exit_2(lib: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [*args, "-L", str(lib)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_check_clean_and_broken(lib: Path, write_library) -> None:  # type: ignore[no-untyped-def]
    clean = runner.invoke(app, ["check", "-L", str(lib)])
    assert clean.exit_code == 0
    assert "2 commands, 1 component: 0 errors, 0 warnings" in clean.stderr
    broken = write_library({
        **FILES,
        "commands/git/commit.md": "---\ndescription: Fix: this\n---\n",
        "commands/git/extra.md": "---\ndescription: ok\nauthor: me\n---\n{{missing}}\n",
    })
    result = runner.invoke(app, ["check", "-L", str(broken)])
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("commands/git/commit.md:2:17: V102 the value of 'description'")
    assert any(line.startswith("commands/git/extra.md:3:1: V104") for line in lines)
    assert any(line.startswith("commands/git/extra.md:5:1: V301") for line in lines)
    data = json.loads(runner.invoke(app, ["check", "-L", str(broken), "--json"]).stdout)
    assert (data["errors"], data["warnings"]) == (2, 1)
    # A broken command is reported, not silently missing.
    shown = runner.invoke(app, ["render", "commit", "-L", str(broken)])
    assert shown.exit_code == 1
    assert "has errors and is not loaded" in shown.stderr
    listed = runner.invoke(app, ["list", "-L", str(broken)])
    assert listed.exit_code == 0
    assert "2 problems" in listed.stderr


def test_check_strict_fails_on_warnings(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = write_library({"commands/a/x.md": "---\ndescription: d\nauthor: me\n---\n"})
    assert runner.invoke(app, ["check", "-L", str(lib)]).exit_code == 0
    assert runner.invoke(app, ["check", "-L", str(lib), "--strict"]).exit_code == 1


def test_library_from_environment(lib: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROJECT_ROOT", str(lib))
    assert "commit" in runner.invoke(app, ["list"]).stdout
    monkeypatch.setenv("TALLINN_LIBRARY", str(lib / "nowhere"))
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 2
    assert "library folder not found" in result.stderr


def test_init_scaffolds_a_working_library(tmp_path: Path) -> None:
    target = tmp_path / "acme-prompts"
    result = runner.invoke(app, ["init", str(target)])
    assert result.exit_code == 0, result.output
    assert (target / "tests/review.yaml").is_file()
    assert ".tallinn/" in (target / ".gitignore").read_text()
    assert 'name = "acme-prompts"' in (target / "tallinn.toml").read_text()
    check = runner.invoke(app, ["check", "-L", str(target), "--strict"])
    assert check.exit_code == 0, check.output
    again = runner.invoke(app, ["init", str(target)])
    assert again.exit_code == 2
    assert "not empty" in again.stderr
    (target / "tallinn.toml").write_text("[library]\n")
    forced = runner.invoke(app, ["init", str(target), "--force"])
    assert forced.exit_code == 0
    assert "kept existing" in forced.stderr
    assert (target / "tallinn.toml").read_text() == "[library]\n"


def test_console_script_runs_as_module(lib: Path) -> None:
    """`python -m tallinn` is the same program as the `tallinn` script."""
    done = subprocess.run(
        [sys.executable, "-m", "tallinn", "render", "commit", "hello", "-L", str(lib)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Message for: hello\n"


def imported_after(*argv: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `tallinn ARGV`."""
    code = (
        "import sys\n"
        "from tallinn.cli import app\n"
        f"try:\n    app({list(argv)!r})\nexcept SystemExit:\n    pass\n"
        "print(','.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    return set(done.stderr.strip().splitlines()[-1].split(","))


def test_a_command_imports_only_its_own_module(lib: Path) -> None:
    """`tallinn check` loads neither the gates nor the MCP SDK; `--help` sees every command."""
    check = imported_after("check", "-L", str(lib))
    assert "tallinn.cli.library" in check
    assert not {"tallinn.cli.gates", "tallinn.gates.runner", "tallinn.cli.serve", "mcp"} & check
    listing = imported_after("--help")
    assert {"tallinn.cli.gates", "tallinn.cli.serve", "tallinn.cli.token"} <= listing
    assert "mcp" not in listing


def test_rich_loads_only_when_something_is_printed(lib: Path) -> None:
    """The server's command module loads no Rich: a running server prints nothing through it."""
    code = "import sys, tallinn.cli.serve; print(sorted(m for m in sys.modules if 'rich' in m))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"
    assert "rich.console" in imported_after("list", "-L", str(lib))


def test_every_command_is_listed_and_resolves() -> None:
    from tallinn.cli import COMMANDS

    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f" {name} " in result.stdout
        assert runner.invoke(app, [name, "--help"]).exit_code == 0, name


def test_a_mistyped_command_gets_a_suggestion() -> None:
    result = runner.invoke(app, ["chek"])
    assert result.exit_code == 2
    assert "Did you mean 'check'" in result.stderr


def test_library_commands_keep_a_front_matter_cache_beside_the_state_store(
    lib: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("list", "-L", str(lib)).exit_code == 0  # type: ignore[attr-defined]
    assert (lib / ".tallinn" / "cache" / "frontmatter.json").is_file()


def test_no_cache_and_cache_dir_settings(
    write_library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    quiet = write_library(FILES)
    monkeypatch.setenv("TALLINN_NO_CACHE", "1")
    assert run("list", "-L", str(quiet)).exit_code == 0  # type: ignore[attr-defined]
    assert not (quiet / ".tallinn").exists()
    monkeypatch.delenv("TALLINN_NO_CACHE")
    monkeypatch.setenv("TALLINN_CACHE_DIR", str(tmp_path / "caches"))
    assert run("list", "-L", str(quiet)).exit_code == 0  # type: ignore[attr-defined]
    assert not (quiet / ".tallinn").exists()
    (folder,) = (tmp_path / "caches").iterdir()
    assert folder.name.startswith(quiet.name + "-")
    assert (folder / "frontmatter.json").is_file()


def test_the_bundled_starter_gets_no_cache() -> None:
    from tallinn.settings import Settings, starter_path

    assert Settings().cache_dir(starter_path()) is None
    assert run("list").exit_code == 0  # type: ignore[attr-defined]
    assert not (starter_path() / ".tallinn").exists()


def test_a_relative_library_path_loads_the_same(lib: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = run("list", "--json", "-L", str(lib))
    monkeypatch.chdir(lib)
    relative = run("list", "--json", "-L", ".")
    assert relative.exit_code == 0  # type: ignore[attr-defined]
    assert json.loads(relative.stdout) == json.loads(absolute.stdout)  # type: ignore[attr-defined]


def test_version() -> None:
    from tallinn import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"tallinn {__version__}\n"


def test_a_bad_environment_variable_is_a_usage_error(
    lib: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALLINN_NO_CACHE", "nope")
    result = run("list", "-L", str(lib))
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "TALLINN_NO_CACHE='nope'" in result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]


def test_settings_read_the_environment_and_values_given_win(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tallinn.settings import Settings, SettingsError

    monkeypatch.setenv("TALLINN_LIBRARY", str(tmp_path))
    monkeypatch.setenv("CLAUDE_CODE_ENV", "production")
    monkeypatch.setenv("TALLINN_NO_CACHE", "true")
    settings = Settings()
    assert settings.library == tmp_path
    assert settings.production
    assert settings.no_cache
    assert Settings(TALLINN_LIBRARY="/elsewhere").library == Path("/elsewhere")
    monkeypatch.setenv("TALLINN_NO_CACHE", "sometimes")
    with pytest.raises(SettingsError, match="TALLINN_NO_CACHE='sometimes'"):
        Settings()


def test_the_lazy_group_takes_commands_added_at_run_time() -> None:
    """Commands added to the built group (as click plugins do) are listed after Tallinn's own."""
    import typer.main

    from tallinn.cli import COMMANDS

    group: Any = typer.main.get_command(app)
    plugin = typer.Typer()

    @plugin.command()
    def extra() -> None:
        """A command from elsewhere."""

    extra_command = typer.main.get_command(plugin)
    group.add_command(extra_command, "extra")
    assert list(group.commands) == [*COMMANDS, "extra"]
    assert len(group.commands) == len(COMMANDS) + 1
    assert group.commands["extra"] is extra_command
    del group.commands["extra"]
    assert "extra" not in group.commands
    with pytest.raises(KeyError):
        group.commands["no-such-command"]
