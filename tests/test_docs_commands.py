"""Every shell command in README.md and docs/ runs as written.

A fenced block whose language is `sh` (or `bash`, `shell`) is a script; in a `console` block,
the lines that start with `$ ` are the commands and the rest is what they print. Each document
runs top to bottom in a scratch copy of the repository, as a reader pasting its blocks into one
shell would: `cd` and `export` carry over from one block to the next. `tallinn` is the CLI of
this checkout, and `uv run` uses this checkout's environment.

An HTML comment right before a block says how the suite runs it:

    <!-- docs-test: exit=1,0 -->           the exit codes of its commands, in order (default 0)
    <!-- docs-test: background 8000 -->   a server: started in the background, the document
                                           goes on once http://127.0.0.1:8000/health answers,
                                           and it is stopped at the document's end
    <!-- docs-test: needs=claude -->       needs a command that may be missing; skipped then
    <!-- docs-test: expect=Connected -->   what the block prints must hold this word (or
                                           `reject=WORD`: must not); both may repeat
    <!-- docs-test: skip REASON -->        not run; the reason is required

A block without a language that holds commands (`tallinn`, `uv`, `make`, ...) is an error: say
`sh` to run it or `text` for a synopsis. docs/rules.md is left out: its blocks are examples of
prompts that the rules flag, not commands.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tallinn.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LEFT_OUT = {"rules.md"}
SCRIPT_LANGUAGES = {"sh", "bash", "shell"}
COMMAND_WORDS = ("tallinn ", "uv ", "make ", "curl ", "claude ", "npm ", "pip ", "git ")

BLOCK = re.compile(
    r"(?:<!--\s*docs-test:\s*(?P<directive>.*?)\s*-->\s*\n)?"
    r"^(?P<fence>```+)(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 300.0
# The developer's settings must not reach the commands under test.
DROPPED = (*(field.alias or name for name, field in Settings.model_fields.items()),
           "TALLINN_TOKEN")


@dataclass
class Block:
    """One fenced block of a document, with the directive before it."""

    document: str
    line: int
    language: str
    commands: list[str]
    exits: list[int] = field(default_factory=list)
    background_port: int | None = None
    needs: str | None = None
    skip: str | None = None
    expect: list[str] = field(default_factory=list)
    reject: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"


def logical_lines(text: str) -> list[str]:
    """Given shell text, return its commands: continued lines joined, blank lines dropped."""
    commands: list[str] = []
    pending = ""
    for line in text.splitlines():
        pending += line
        if pending.endswith("\\"):
            pending += "\n"  # bash reads the backslash-newline as a continuation
            continue
        if pending.strip() and not pending.lstrip().startswith("#"):
            commands.append(pending)
        pending = ""
    return commands


def console_commands(text: str) -> list[str]:
    """Given a console session, return the commands (the lines after `$ `)."""
    lines: list[str] = []
    continuing = False
    for line in text.splitlines():
        if line.startswith("$ ") or continuing:
            lines.append(line[2:] if line.startswith("$ ") else line)
            continuing = line.endswith("\\")
    return logical_lines("\n".join(lines))


def parse_blocks(path: Path) -> list[Block]:
    """The runnable blocks of the document at `path`, in order."""
    text = path.read_text(encoding="utf-8")
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    blocks = []
    for match in BLOCK.finditer(text):
        info = match["info"].strip().split(" ")[0]
        line = text.count("\n", 0, match.start("fence")) + 1
        body = match["body"]
        if info in SCRIPT_LANGUAGES:
            commands = logical_lines(body)
        elif info == "console":
            commands = console_commands(body)
        else:
            if not info and any(
                raw.lstrip().startswith(COMMAND_WORDS) for raw in body.splitlines()
            ):
                raise AssertionError(
                    f"{rel}:{line}: a block of commands without a language: "
                    "mark it `sh` to run it or `text` for a synopsis"
                )
            continue
        block = Block(rel, line, info, commands)
        apply_directive(block, match["directive"] or "")
        blocks.append(block)
    return blocks


def apply_directive(block: Block, directive: str) -> None:
    """Read `exit=1,0`, `background PORT`, `needs=NAME`, `skip REASON` into `block`."""
    words = directive.split()
    if words[:1] == ["skip"]:
        block.skip = " ".join(words[1:])
        assert block.skip, f"{block.where}: `docs-test: skip` needs a reason"
        return
    for index, word in enumerate(words):
        if word.startswith("exit="):
            block.exits = [int(code) for code in word.removeprefix("exit=").split(",")]
        elif word.startswith("needs="):
            block.needs = word.removeprefix("needs=")
        elif word.startswith("expect="):
            block.expect.append(word.removeprefix("expect="))
        elif word.startswith("reject="):
            block.reject.append(word.removeprefix("reject="))
        elif word == "background":
            block.background_port = int(words[index + 1])
        elif not word.isdigit():
            raise AssertionError(f"{block.where}: unknown docs-test directive {word!r}")
    if block.exits:
        assert len(block.exits) == len(block.commands), (
            f"{block.where}: exit= names {len(block.exits)} codes for "
            f"{len(block.commands)} commands"
        )


def all_blocks() -> Iterator[tuple[str, list[Block]]]:
    for path in DOCUMENTS:
        if path.name not in LEFT_OUT:
            blocks = parse_blocks(path)
            if blocks:
                yield path.relative_to(ROOT).as_posix(), blocks


class Reader:
    """A reader's shell: a scratch copy of the repository, and the state its blocks leave."""

    def __init__(self, scratch: Path) -> None:
        self.repo = scratch / ROOT.name
        self.home = scratch / "home"
        self.state = scratch / "shell-state"
        self.home.mkdir()
        tracked = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode().split("\0")
        for rel in filter(None, tracked):
            source = ROOT / rel
            if source.is_file():
                target = self.repo / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        shared = ROOT.parent / "shared"
        if shared.is_dir():
            (scratch / "shared").symlink_to(shared)
        self.state.write_text(f"cd {shlex.quote(str(self.repo))}\n", encoding="utf-8")
        self.background: list[subprocess.Popen[bytes]] = []
        venv_bin = Path(sys.executable).parent
        env = {k: v for k, v in os.environ.items() if k not in DROPPED}
        node_cache = Path(env.get("TALLINN_NODE_CACHE", ROOT / ".ci" / "cache" / "node22"))
        if not (node_cache / "bin").is_dir() and not env.get("TALLINN_SKIP_NODE"):
            # The interop tests' tools, Claude Code's CLI among them (idempotent, shared).
            subprocess.run(["bash", str(ROOT / "scripts" / "node.sh")], check=True,
                           stdout=subprocess.DEVNULL, env={**env, "TALLINN_NODE_CACHE":
                                                           str(node_cache)})
        path = [str(venv_bin), env.get("PATH", "")]
        if (node_cache / "bin").is_dir():
            path.append(str(node_cache / "bin"))  # claude, when the interop tools have it
        env.update(
            HOME=str(self.home),
            PATH=os.pathsep.join(path),
            TALLINN_NODE_CACHE=str(node_cache),  # the tools installed once for the suite
            UV_CACHE_DIR=env.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv")),
            UV_PROJECT_ENVIRONMENT=str(venv_bin.parent),  # this checkout's environment...
            UV_NO_SYNC="1",  # ...used as it is, never re-synced from the copy
            NO_COLOR="1",
        )
        self.env = env

    def script(self, commands: list[str]) -> str:
        """Given commands, a bash script that runs each, records its exit code, and saves the
        shell's directory and exported variables for the next block."""
        lines = ["source \"$DOCS_TEST_STATE\"", "__codes=()"]
        for command in commands:
            lines += [command, "__codes+=($?)"]
        lines += [
            # The shell's variables, exported or not, as a reader's shell keeps them; bash's
            # own read-only and per-process ones are left out.
            "{ printf 'cd %q\\n' \"$PWD\"; declare -p | grep -vE "
            "'^declare -[a-zA-Z]*r|^declare -[-a-zA-Z]* (BASH[A-Z_]*|FUNCNAME|PIPESTATUS|"
            "SHLVL|PWD|OLDPWD|_|__codes|DIRSTACK|GROUPS|RANDOM|SECONDS|LINENO|EPOCH[A-Z]*|"
            "SRANDOM|HISTCMD|COMP_WORDBREAKS)='; } >\"$DOCS_TEST_STATE.next\"",
            "mv \"$DOCS_TEST_STATE.next\" \"$DOCS_TEST_STATE\"",
            "echo \"__codes=${__codes[*]}\" >&2",
        ]
        return "\n".join(lines) + "\n"

    def run(self, block: Block) -> None:
        env = {**self.env, "DOCS_TEST_STATE": str(self.state)}
        if block.background_port is not None:
            self.start(block, env)
            return
        done = subprocess.run(
            ["bash", "-c", self.script(block.commands)], env=env, capture_output=True,
            timeout=COMMAND_TIMEOUT, stdin=subprocess.DEVNULL,
        )
        stderr = done.stderr.decode(errors="replace")
        found = re.search(r"^__codes=(.*)$", stderr, re.MULTILINE)
        assert found, f"{block.where}: the block did not finish:\n{stderr[-3000:]}"
        codes = [int(code) for code in found[1].split()]
        wanted = block.exits or [0] * len(block.commands)
        stdout = done.stdout.decode(errors="replace")
        for command, code, expected in zip(block.commands, codes, wanted, strict=True):
            assert code == expected, (
                f"{block.where}: `{command.strip()}` exited {code}, not {expected}\n"
                f"stdout:\n{stdout[-3000:]}\nstderr:\n{stderr[-3000:]}"
            )
        for word in block.expect:
            assert word in stdout, f"{block.where}: no {word!r} in what it printed:\n{stdout}"
        for word in block.reject:
            assert word not in stdout, f"{block.where}: {word!r} in what it printed:\n{stdout}"

    def start(self, block: Block, env: dict[str, str]) -> None:
        """Start the block's commands in the background; return once its port answers."""
        script = "source \"$DOCS_TEST_STATE\"\n" + "\n".join(block.commands) + "\n"
        log = open(self.home / f"background-{block.line}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            ["bash", "-c", script], env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        self.background.append(process)
        url = f"http://127.0.0.1:{block.background_port}/health"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = (self.home / f"background-{block.line}.log").read_text(
                    errors="replace")
                raise AssertionError(f"{block.where}: the server did not answer at {url}:\n"
                                     f"{output[-3000:]}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.1)  # wakes at once if the server exits

    def close(self) -> None:
        for process in self.background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


DOCUMENT_BLOCKS = dict(all_blocks())


@pytest.mark.slow
@pytest.mark.parametrize("document", sorted(DOCUMENT_BLOCKS))
def test_the_commands_of_a_document_run_as_written(document: str, tmp_path: Path) -> None:
    """Each runnable block of the document, run in order, exits as the document says."""
    reader = Reader(tmp_path)
    skipped = []
    try:
        for block in DOCUMENT_BLOCKS[document]:
            if block.skip:
                skipped.append(f"{block.where}: {block.skip}")
                continue
            if block.needs and shutil.which(block.needs, path=reader.env["PATH"]) is None:
                skipped.append(f"{block.where}: needs {block.needs}, not on PATH")
                continue
            reader.run(block)
    finally:
        reader.close()
    print("\n".join(skipped))


def test_blocks_are_found_and_directives_read(tmp_path: Path) -> None:
    """The parser finds scripts and console commands, joins continued lines, reads directives,
    and refuses a block of commands without a language."""
    sample = tmp_path / "sample.md"
    sample.write_text(
        "Intro.\n\n<!-- docs-test: exit=1,0 -->\n```sh\ntallinn check  # exit 1\n"
        "tallinn list \\\n  --json\n```\n\n```console\n$ tallinn db current\ncurrent: none\n"
        "```\n\n<!-- docs-test: skip it serves until stopped -->\n```sh\nmake run\n```\n\n"
        "<!-- docs-test: expect=Connected reject=Failed -->\n```sh\nclaude mcp list\n```\n\n"
        "```text\ntallinn gates [--only GATE]\n```\n",
        encoding="utf-8",
    )
    first, second, third, fourth = parse_blocks(sample)
    assert first.commands == ["tallinn check  # exit 1", "tallinn list \\\n  --json"]
    assert first.exits == [1, 0]
    assert second.commands == ["tallinn db current"]
    assert third.skip == "it serves until stopped"
    assert (fourth.expect, fourth.reject) == (["Connected"], ["Failed"])
    sample.write_text("```\ntallinn list\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="without a language"):
        parse_blocks(sample)


def test_every_document_with_commands_is_run() -> None:
    """README.md and the serving and operations guides are among the documents run."""
    assert {"README.md", "docs/serving.md", "docs/operations.md"} <= set(DOCUMENT_BLOCKS)
