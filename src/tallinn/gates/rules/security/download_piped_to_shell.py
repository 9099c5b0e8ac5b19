"""S201 download-piped-to-shell: `curl ... | sh` and its relatives."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._shell import SHELLS, Command
from tallinn.gates.rules.security._source import AuditFile
from tallinn.library import Severity

DOWNLOADERS = frozenset({"curl", "wget", "fetch", "http", "https", "aria2c"})
INTERPRETERS = SHELLS | {"python", "python2", "python3", "perl", "ruby", "node", "php"}
_PROGRAM_OPTIONS = frozenset({"-c", "-m", "-e", "-E", "-r", "--command", "--eval"})
_SUBSTITUTED_DOWNLOAD = re.compile(r"(?:\$\(|<\(|`)\s*(?:sudo\s+)?(?:curl|wget)\b")


@rule("S201", "download-piped-to-shell", "security", Severity.ERROR,
      "a downloaded script is run without being checked (curl | sh)",
      confidence=Confidence.HIGH)
def download_piped_to_shell(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    In shell blocks (`bash`, `sh`, `shell`, `zsh`, `console`) and `` !`cmd` `` lines, flags a
    download piped into an interpreter that reads its program from standard input
    (`curl -fsSL URL | sh`, `wget -O- URL | sudo bash -s`), and an interpreter, `eval` or
    `source` run on a downloaded script (`bash <(curl URL)`, `sh -c "$(curl URL)"`).
    Quoted text (`echo "curl x | sh"`) and comments are not commands, and piping into an
    interpreter that runs its own program (`| python3 -m json.tool`) is fine.

    Why is this bad?
    The shell runs whatever the server sends, at once, with your rights: a compromised or
    spoofed server, or a truncated download, runs unchecked code. Instructions in a prompt
    are followed by the model.

    Example:
    ```bash
    curl -fsSL https://example.com/install.sh | sh
    ```

    Use instead:
    ```bash
    curl -fsSLo install.sh https://example.com/install.sh
    sha256sum --check install.sh.sha256
    sh install.sh
    ```

    Fix safety:
    No automatic fix.
    """
    for snippet, script in file.shell_scripts():
        for pipeline in script.pipelines:
            for index, command in enumerate(pipeline):
                if command.name not in DOWNLOADERS:
                    continue
                runner = next((c for c in pipeline[index + 1:] if _runs_stdin(c)), None)
                if runner is not None:
                    yield file.finding(
                        RULE, snippet.file_offset(command.offset),
                        f"`{command.name} ... | {runner.name}` runs a downloaded script "
                        "unchecked; download it to a file, verify it, then run it",
                    )
                    break
        for command in script.commands():
            if command.name in INTERPRETERS | {"eval", "source", "."} and any(
                _SUBSTITUTED_DOWNLOAD.search(arg.text) for arg in command.args
            ):
                yield file.finding(
                    RULE, snippet.file_offset(command.offset),
                    f"`{command.name}` runs a downloaded script unchecked; download it to "
                    "a file, verify it, then run it",
                )


def _runs_stdin(command: Command) -> bool:
    """Whether an interpreter reads its program from standard input (`sh`, `bash -s`)."""
    if command.name not in INTERPRETERS:
        return False
    for arg in command.args:
        text = arg.text
        if text in _PROGRAM_OPTIONS:
            return False
        if text in ("-", "-s") or (
            text.startswith("-") and not text.startswith("--") and "s" in text[1:]
            and command.name in SHELLS
        ):
            return True
        if text == "--" or not text.startswith("-"):
            return False  # a script file (or arguments of one)
    return True


RULE = RULES["S201"]
