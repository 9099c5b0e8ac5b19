"""Gate 5, documentation coverage: computed from the library, never typed in.

Each command needs a description of useful length (D101), a description for every argument
(D102), an example (D103) and, when it takes arguments, an `argument-hint` (D104); each
component needs a description of useful length (D105). Coverage is the share of these
requirements that are met, graded against `[gates.docs]` in `tallinn.toml`:

    documentation coverage   >= min_coverage (0.95; PARTIAL >= coverage_floor, 0.8)

Every unmet requirement is a WARNING finding at the front-matter key concerned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from tallinn.gates.base import GateContext, GateResult, Metric, Status, gate_settings, grade
from tallinn.gates.rules.docs import (
    COMMAND_RULES,
    COMPONENT_RULES,
    DocsCheck,
    DocsSettings,
    Requirement,
)
from tallinn.library import Library
from tallinn.wording import plural

NAME = "docs"
TITLE = "Documentation coverage"
SETTINGS = DocsSettings


def requirements(library: Library, settings: DocsSettings,
                 progress: Callable[[str], None] | None = None) -> list[Requirement]:
    """Every documentation requirement of the library's commands and components."""
    found: list[Requirement] = []
    if progress is not None:
        progress(f"checking {plural(len(library.commands), 'command')}")
    for command in library.commands.values():
        ctx = DocsCheck(library, settings, command)
        for check in COMMAND_RULES.values():
            found.extend(check(command, ctx))
    if progress is not None:
        progress(f"checking {plural(len(library.components), 'component')}")
    for component in library.components.values():
        ctx = DocsCheck(library, settings, component)
        for component_check in COMPONENT_RULES.values():
            found.extend(component_check(component, ctx))
    return found


def run(ctx: GateContext) -> GateResult:
    """Compute the documentation coverage of the library and grade it."""
    started = time.perf_counter()
    settings = gate_settings(ctx.library, NAME, DocsSettings)
    found = requirements(ctx.library, settings, ctx.progress)
    return evaluate(found, settings, duration=time.perf_counter() - started)


def evaluate(found: Sequence[Requirement], settings: DocsSettings, *,
             duration: float = 0.0) -> GateResult:
    """Coverage = met requirements / all requirements, with a finding per unmet one."""
    met = sum(1 for r in found if r.met)
    total = len(found)
    coverage = 100 * met / total if total else 100.0
    floor = None if settings.coverage_floor is None else round(settings.coverage_floor * 100, 9)
    metric = Metric("documentation coverage", coverage, round(settings.min_coverage * 100, 9),
                    "%", floor=floor)
    by_rule: dict[str, dict[str, int]] = {}
    for requirement in found:
        counts = by_rule.setdefault(requirement.code, {"required": 0, "met": 0})
        counts["required"] += 1
        counts["met"] += requirement.met
    findings = tuple(r.finding for r in found if r.finding is not None)
    details = [f"{met} of {plural(total, 'documentation item')} present ({coverage:.1f}%)"]
    details += [f"{code}: {c['met']} of {c['required']}" for code, c in sorted(by_rule.items())
                if c["met"] < c["required"]]
    data: dict[str, Any] = {
        "required": total,
        "met": met,
        "coverage": coverage / 100,
        "by_rule": dict(sorted(by_rule.items())),
        "missing": [
            {"code": f.code, "subject": r.subject, "path": f.path, "line": f.line, "col": f.col,
             "message": f.message}
            for r in found if (f := r.finding) is not None
        ],
    }
    status = grade([metric]) if total else Status.SKIPPED
    if not total:
        details.append("the library has no commands or components to document")
    return GateResult(NAME, TITLE, status, (metric,), findings, tuple(details),
                      duration=duration, data=data)
