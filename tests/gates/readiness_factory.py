"""Gate results and runs built by hand, for testing the runner and the report formats."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tallinn.gates import runner
from tallinn.gates.base import AcceptedRisk, GateResult, Metric, Status
from tallinn.gates.runner import LibraryInfo, Readiness, RunnerSettings, decide
from tallinn.library import Diagnostic, Edit, Fix, Severity

NOW = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)

COMMAND = """\
---
description: Say hello
---
Hello <b>world</b> from {{name}}.
"""


def finding(code: str = "S101", severity: Severity = Severity.ERROR, path: str = "commands/a/x.md",
            line: int = 3, col: int = 5, message: str = "secret-like token in body",
            fix: Fix | None = None) -> Diagnostic:
    return Diagnostic(code, message, path, line, col, severity, fix)


def sample_results() -> tuple[GateResult, ...]:
    """Five gates: two passed, one partial, one failed with a blocking finding, one skipped."""
    fix = Fix("quote the value", (Edit(4, 9, "'hello'"),), safe=True)
    accepted = finding("Q102", message="example key in docs")
    return (
        GateResult("xml", "XML and structure", Status.PASSED,
                   metrics=(Metric("well-formed", 100.0, 100.0, "%"),),
                   findings=(finding("X201", Severity.WARNING, message="tag | <b> not closed",
                                     fix=fix),),
                   details=("225 documents parsed",), duration=0.12),
        GateResult("tests", "Prompt tests", Status.PASSED,
                   metrics=(Metric("pass rate", 100.0, 100.0, "%"),
                            Metric("coverage", 92.5, 90.0, "%", floor=80.0)),
                   duration=0.5),
        GateResult("perf", "Performance", Status.PARTIAL,
                   metrics=(Metric("render p95", 1.4, 1.0, "ms", higher_is_better=False,
                                   floor=2.0),),
                   duration=1.0),
        GateResult("security", "Security audit", Status.FAILED,
                   findings=(finding(), accepted, finding("S300", Severity.INFO, "tallinn.toml",
                                                          1, 1, "note")),
                   accepted=(AcceptedRisk(accepted, "documented test key", "baseline"),),
                   data={"scanned": 12, "path": Path("a/b"), "ratio": float("nan")}),
        GateResult("docs", "Documentation", Status.SKIPPED, details=("no docs configured",)),
    )


def readiness(results: tuple[GateResult, ...] | None = None, *, root: Path | None = None,
              allow_partial: bool = False, not_run: tuple[str, ...] = ()) -> Readiness:
    chosen = sample_results() if results is None else results
    settings = RunnerSettings(allow_partial=allow_partial)
    return Readiness(
        library=LibraryInfo("acme-prompts", str(root or Path("/srv/acme")), "ab" * 32,
                            3, 2, 1, 1, 0, 0),
        results=chosen,
        verdict=decide(chosen, settings),
        started=NOW,
        duration=1.62,
        settings=settings,
        not_run=not_run,
        options={"baseline": Path("baseline.json"), "coverage_xml": None, "load": False},
    )


GateRun = Callable[[Any], Any]


def install_gates(monkeypatch: pytest.MonkeyPatch, gates: Mapping[str, GateRun | None],
                  settings: Mapping[str, type] | None = None) -> None:
    """Make `gates` the only gates: each a fake module whose `run` is the given function.

    A `None` function stands for a gate whose module is missing.
    """
    modules: dict[str, str] = {}
    for name, run in gates.items():
        module_name = f"fake_tallinn_gates.{name}"
        modules[name] = module_name
        if run is None:
            monkeypatch.delitem(sys.modules, module_name, raising=False)
            continue
        module = types.ModuleType(module_name)
        module.NAME = name  # type: ignore[attr-defined]
        module.TITLE = f"The {name} gate"  # type: ignore[attr-defined]
        module.run = run  # type: ignore[attr-defined]
        model = (settings or {}).get(name)
        if model is not None:
            model.__module__ = module_name
            setattr(module, model.__name__, model)
        monkeypatch.setitem(sys.modules, module_name, module)
    monkeypatch.setattr(runner, "GATE_MODULES", modules)
