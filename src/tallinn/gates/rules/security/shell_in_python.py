"""S102 shell-in-python: a Python block runs a command line through the shell."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._python import analyse
from tallinn.gates.rules.security._source import PYTHON_LANGS, AuditFile
from tallinn.library import Severity

_ALWAYS_SHELL = frozenset({
    "os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput",
    "commands.getoutput", "asyncio.create_subprocess_shell", "popen2.popen2",
})
_SHELL_OPTION = frozenset({
    "subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
    "subprocess.Popen",
})


@rule("S102", "shell-in-python", "security", Severity.ERROR,
      "os.system, os.popen or subprocess with shell=True in a Python code block",
      confidence=Confidence.HIGH)
def shell_in_python(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    Flags Python calls that hand a command line to the shell: `os.system`, `os.popen`,
    `subprocess.getoutput`, `asyncio.create_subprocess_shell`, and the `subprocess`
    functions called with `shell=True`. Imports are followed (`import subprocess as sp`).

    Why is this bad?
    The shell interprets quotes, `;`, `|` and `$(...)` in the string, so any value formatted
    into it can run commands of its own (command injection). A prompt that shows it teaches
    the model to write it.

    Example:
    ```python
    subprocess.run(f"git log {branch}", shell=True)
    ```

    Use instead:
    ```python
    subprocess.run(["git", "log", branch], check=True)
    ```

    Fix safety:
    No automatic fix.
    """
    for snippet in file.snippets(PYTHON_LANGS):
        for call in analyse(snippet).calls:
            if call.name in _ALWAYS_SHELL:
                message = f"`{call.name}()` runs its argument through the shell"
            elif call.name in _SHELL_OPTION and _truthy(call.keywords.get("shell")):
                message = f"`{call.name}(..., shell=True)` runs its argument through the shell"
            else:
                continue
            yield file.finding(
                RULE, snippet.file_offset(call.offset),
                message + "; pass a list of arguments without a shell",
            )


def _truthy(source: str | None) -> bool:
    """Whether `shell=<source>` is a literal true value (a variable is not judged)."""
    if source is None:
        return False
    try:
        return bool(ast.literal_eval(source))
    except (ValueError, SyntaxError):
        return False


RULE = RULES["S102"]
