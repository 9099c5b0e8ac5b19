"""GitHub Actions workflow commands: each finding of a gate run as an annotation.

    ::error file=prompts/commands/a.md,line=3,col=1,title=S101::curl piped to sh

GitHub shows them on the pull request's changed lines. Escaping follows the Actions toolkit
(`@actions/core`, command.ts): in the message `%`, CR and LF are percent-encoded; in property
values `:` and `,` are too, so a path or code cannot end its field early. Severity maps to
error, warning and notice. Findings the baseline or an inline comment accepted are left out,
as they are not alerts. `file` is relative to the working directory, which is the checkout in
a workflow, when the library is under it; for a stored release, which has no folder, it is the
path inside the library.
"""

from __future__ import annotations

import os
from pathlib import Path

from tallinn.gates.base import Finding
from tallinn.gates.runner import Readiness
from tallinn.library import Severity

COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """Given `50% done\\nnext`, return `50%25 done%0Anext`."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Given `a.md:3,b`, return `a.md%3A3%2Cb`."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(finding: Finding, file: str) -> str:
    """One finding as a workflow command line."""
    properties = ",".join(
        f"{key}={escape_property(value)}"
        for key, value in (("file", file), ("line", str(finding.line)),
                           ("col", str(finding.col)), ("title", finding.code))
    )
    return f"::{COMMANDS[finding.severity]} {properties}::{escape_data(finding.message)}"


def to_github(readiness: Readiness, cwd: Path | None = None) -> str:
    """Every finding not accepted, one annotation a line (empty when there is none)."""
    folder = readiness.reader().root
    root = folder.resolve() if folder is not None else None
    base = (cwd or Path.cwd()).resolve()
    lines: list[str] = []
    for result in readiness.results:
        accepted = {risk.finding for risk in result.accepted}
        for finding in result.findings:
            if finding in accepted:
                continue
            lines.append(annotation(finding, _file(root, base, finding.path)))
    return "".join(f"{line}\n" for line in lines)


def _file(root: Path | None, base: Path, path: str) -> str:
    """The finding's file relative to `base` when the library is under it, else absolute; a
    library with no folder (a stored release) names it as the library does."""
    if root is None:
        return path
    full = root / path
    if full.is_relative_to(base):
        return full.relative_to(base).as_posix()
    return os.fspath(full)
