"""S202 dangerous-recursive-delete: `rm -rf` of `/`, `~` or an unguarded variable."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._shell import Command, short_flags
from tallinn.gates.rules.security._source import AuditFile
from tallinn.library import Severity

_ROOT = frozenset({"/", "/*", "/.", "//", "/.*"})
_HOME = frozenset({"~", "~/", "~/*", "~/.", "~/.*"})
_VARIABLE = re.compile(
    r"^\$(?:\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?!$-]))(?P<rest>.*)$"
)
_BRACED = re.compile(
    r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?!$-])(?:(?P<op>:?[-=+?])(?P<word>.*))?$"
)
_ALWAYS_SET = frozenset({"HOME", "PWD"})


@rule("S202", "dangerous-recursive-delete", "security", Severity.ERROR,
      "rm -r of /, ~ or a path that starts with an unguarded variable",
      confidence=Confidence.HIGH)
def dangerous_recursive_delete(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    In shell blocks and `` !`cmd` `` lines, flags a recursive `rm` (`-r`, `-R`, `-rf`,
    `--recursive`) of `/`, `/*`, `~`, `$HOME`, or of a path that starts with a variable
    that is not guarded (`$DIR`, `"${DIR}"/build`), and any `rm --no-preserve-root`.
    `${DIR:?}` (fail when empty) and `${DIR:-default}` are guarded.

    Why is this bad?
    When the variable is empty or unset, `rm -rf "$DIR/"*` deletes from the root of the file
    system, as a famous installer once did to its users. A model following the prompt runs
    it with your rights.

    Example:
    ```bash
    rm -rf "$BUILD_DIR"/*
    ```

    Use instead:
    ```bash
    rm -rf "${BUILD_DIR:?}"/*
    ```

    Fix safety:
    No automatic fix.
    """
    for snippet, script in file.shell_scripts():
        for command in script.commands():
            if command.name != "rm":
                continue
            what = _danger(command)
            if what is not None:
                yield file.finding(RULE, snippet.file_offset(command.offset), what)


def _danger(command: Command) -> str | None:
    options = True
    recursive = False
    targets = []
    for arg in command.args:
        text = arg.text
        if options and text == "--":
            options = False
        elif options and text.startswith("--"):
            if text == "--no-preserve-root":
                return "`rm --no-preserve-root` lets rm delete the whole file system"
            recursive = recursive or text == "--recursive"
        elif options and text.startswith("-") and len(text) > 1:
            recursive = recursive or bool(set(short_flags(text)) & {"r", "R"})
        else:
            targets.append(text)
    if not recursive:
        return None
    for target in targets:
        if target in _ROOT:
            return f"`rm -r {target}` deletes the whole file system"
        if target in _HOME:
            return f"`rm -r {target}` deletes your home directory"
        problem = _unguarded(target)
        if problem is not None:
            return problem
    return None


def _unguarded(target: str) -> str | None:
    """Given `$DIR/build`, say why it is dangerous; None for `${DIR:?}/build`."""
    match = _VARIABLE.match(target)
    if match is None:
        return None
    name, rest = match["plain"], match["rest"]
    if match["braced"] is not None:
        inner = _BRACED.match(match["braced"])
        if inner is None:
            return None  # ${#x}, ${x%y}: not judged
        name, operator, word = inner["name"], inner["op"] or "", inner["word"] or ""
        if "?" in operator or (
            operator.strip(":") in ("-", "=") and word.strip("\"'") not in ("", "/")
        ):
            return None
    if name in _ALWAYS_SET:
        if rest in ("", "/", "/*"):
            place = "home" if name == "HOME" else "current"
            return f"`rm -r {target}` deletes your {place} directory"
        return None
    return (f"`rm -r {target}` deletes from / when {name} is empty or unset; "
            f"write ${{{name}:?}} so the shell stops instead")


RULE = RULES["S202"]
