"""`tallinn audit`: gate 4 alone, the security audit, with baselines.

Exit 0 when the audit passes, 1 when it does not (a high finding not accepted, or more
medium/low findings than `[gates.security]` allows), 2 on a usage or baseline error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tallinn.cli.common import (
    ExitCode,
    JsonOption,
    LibraryOption,
    command_app,
    err,
    load,
    print_diagnostics,
    write_raw,
)
from tallinn.gates import baseline as baselines
from tallinn.gates import security
from tallinn.gates.base import RULES, AcceptedRisk, Finding, GateContext, GateResult, Status
from tallinn.wording import plural

app = command_app()


@app.command()
def audit(
    library: LibraryOption = None,
    as_json: JsonOption = False,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="Baseline of accepted findings. Default: "
                     "\\[gates.security] baseline in tallinn.toml.", dir_okay=False,
                     show_default=False, metavar="FILE"),
    ] = None,
    write_baseline: Annotated[
        Path | None,
        typer.Option("--write-baseline", help="Write the current findings to this baseline "
                     "(reasons kept from the baseline in use, else 'TODO: justify').",
                     dir_okay=False, show_default=False, metavar="FILE"),
    ] = None,
    exit_zero: Annotated[
        bool, typer.Option("--exit-zero", help="Exit 0 even when the audit fails.")
    ] = False,
) -> None:
    """Audit the library for security problems (gate 4): code, shell, secrets, hidden
    characters, instruction overrides and permissions.
    """
    lib = load(library, quiet=True)
    context = GateContext(lib.root, lib, {"baseline": baseline})
    count: int | None = None
    result = security.run(context)
    if write_baseline is not None:
        count = baselines.write_results(write_baseline, [result],
                                        security.baseline_path(context))
    if as_json:
        write_raw(json.dumps(_json(lib.label, result), indent=2, ensure_ascii=False))
    else:
        _print(result)
    if count is not None:
        err.print(f"baseline of {plural(count, 'finding')} written to {write_baseline}; write a "
                  "reason for each 'TODO: justify' before it is accepted", markup=False,
                  soft_wrap=True)
    if result.status is not Status.PASSED and not exit_zero:
        raise typer.Exit(int(ExitCode.PROBLEMS))


def _print(result: GateResult) -> None:
    print_diagnostics(result.findings)
    for line in result.details[1:]:
        err.print(line, markup=False, soft_wrap=True)
    style = {Status.PASSED: "green", Status.PARTIAL: "yellow"}.get(result.status, "red")
    err.print(f"[{style}]security audit {result.status.value}[/]: ", end="")
    err.print(result.details[0] if result.details else "", markup=False, soft_wrap=True)


def _finding(finding: Finding) -> dict[str, Any]:
    rule = RULES.get(finding.code)
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "confidence": rule.confidence.value if rule else None,
        "path": finding.path,
        "line": finding.line,
        "col": finding.col,
        "message": finding.message,
        "fix": None if finding.fix is None else {"description": finding.fix.description,
                                                 "safe": finding.fix.safe},
    }


def _accepted(risk: AcceptedRisk) -> dict[str, Any]:
    return {**_finding(risk.finding), "reason": risk.reason, "source": risk.source}


def _json(root: str, result: GateResult) -> dict[str, Any]:
    return {
        "library": root,
        "gate": result.gate,
        "status": result.status.value,
        **{k: result.data[k] for k in ("files", "counts", "by_rule", "baseline")},
        "metrics": [{"name": m.name, "value": m.value, "threshold": m.threshold,
                     "status": m.status.value} for m in result.metrics],
        "findings": [_finding(f) for f in result.findings],
        "accepted": [_accepted(a) for a in result.accepted],
        "details": list(result.details),
        "duration": round(result.duration, 3),
    }
