"""The readiness report: one run of the gates as JSON, Markdown, plain text or SARIF.

Every format is made from the same data, `report_data(readiness)`, whose shape is the JSON
report (documented in docs/gates.md, `schema_version` 1). Markdown and text are Jinja2
templates in `tallinn/gates/templates/` fed with that data::

    >>> print(render(readiness, "markdown"))
    # Production readiness: acme-prompts
    ...
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from enum import Enum, StrEnum
from functools import cache
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from tallinn import __version__
from tallinn.gates.base import RULES, AcceptedRisk, Finding, GateResult, Metric, Status
from tallinn.gates.runner import Readiness, figure, severity_counts, unaccepted_blocking
from tallinn.library import Severity
from tallinn.wording import plural

if TYPE_CHECKING:
    import jinja2

SCHEMA_VERSION = 1
_TAG = re.compile(r"<(?=[A-Za-z/!?])")
_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
TOP_FINDINGS = 10


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"
    SARIF = "sarif"
    GITHUB = "github"


def render(readiness: Readiness, fmt: Format | str) -> str:
    """The report in `fmt` (text, json, markdown, sarif or github annotations)."""
    kind = Format(fmt)
    if kind is Format.SARIF:
        from tallinn.gates.sarif import to_sarif

        return json.dumps(to_sarif(readiness), indent=2, ensure_ascii=False) + "\n"
    if kind is Format.GITHUB:
        from tallinn.gates.github import to_github

        return to_github(readiness)
    data = report_data(readiness)
    if kind is Format.JSON:
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    template = "report.md.j2" if kind is Format.MARKDOWN else "report.txt.j2"
    text = environment().get_template(template).render(report=data, top=TOP_FINDINGS)
    return text.rstrip("\n") + "\n"


def report_data(readiness: Readiness) -> dict[str, Any]:
    """The report as plain JSON data: the one source every format is rendered from."""
    gates = [_gate(result) for result in readiness.results]
    findings = [f for r in readiness.results for f in r.findings]
    accepted_risks = [
        {"gate": r.gate, **_accepted(risk)} for r in readiness.results for risk in r.accepted
    ]
    known_issues = [
        {"gate": r.gate, **_finding(f, blocking=False)}
        for r in readiness.results
        for f in _sorted(r.findings)
        if f.severity is not Severity.ERROR
    ]
    statuses = [r.status for r in readiness.results]
    library = asdict(readiness.library)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "tallinn", "version": __version__},
        "generated_at": readiness.started.isoformat(timespec="seconds"),
        "duration_s": round(readiness.duration, 3),
        "library": library,
        "settings": _plain(readiness.settings.model_dump()),
        # Collaborators passed as options (the load driver) are not options the user gave.
        "options": _plain({k: v for k, v in readiness.options.items() if not callable(v)}),
        "status": "READY" if readiness.ready else "NOT READY",
        "decision": {
            "verdict": readiness.verdict.label,
            "go": readiness.verdict.go,
            "reasons": list(readiness.verdict.reasons),
        },
        "summary": {
            "gates_run": len(statuses),
            **{s.value.lower(): statuses.count(s) for s in Status},
            "not_run": list(readiness.not_run),
            "findings": severity_counts(findings),
            "blocking": sum(len(g["blocking"]) for g in gates),
            "accepted": len(accepted_risks),
        },
        "gates": gates,
        "accepted_risks": accepted_risks,
        "known_issues": known_issues,
    }


def _gate(result: GateResult) -> dict[str, Any]:
    blocking = set(unaccepted_blocking(result))
    accepted = {risk.finding for risk in result.accepted}
    return {
        "name": result.gate,
        "title": result.title,
        "status": result.status.value,
        "duration_s": round(result.duration, 3),
        "metrics": [_metric(m) for m in result.metrics],
        "details": list(result.details),
        "findings": [_finding(f, blocking=f in blocking, accepted=f in accepted)
                     for f in _sorted(result.findings)],
        "blocking": [_finding(f, blocking=True) for f in _sorted(blocking)],
        "accepted": [_accepted(risk) for risk in result.accepted],
        "counts": severity_counts(result.findings),
        "data": _plain(dict(result.data)),
    }


def _metric(metric: Metric) -> dict[str, Any]:
    return {
        "name": metric.name,
        "value": _number(metric.value),
        "threshold": _number(metric.threshold),
        "floor": None if metric.floor is None else _number(metric.floor),
        "unit": metric.unit,
        "comparison": metric.comparison,
        "higher_is_better": metric.higher_is_better,
        "status": metric.status.value,
        "display": {
            "value": figure(metric.value, metric.unit),
            "threshold": f"{metric.comparison} {figure(metric.threshold, metric.unit)}",
            "floor": (
                None if metric.floor is None
                else f"{metric.comparison} {figure(metric.floor, metric.unit)}"
            ),
        },
    }


def _finding(finding: Finding, *, blocking: bool, accepted: bool = False) -> dict[str, Any]:
    rule = RULES.get(finding.code)
    return {
        "code": finding.code,
        "rule": rule.name if rule else None,
        "severity": finding.severity.value,
        "path": finding.path,
        "line": finding.line,
        "col": finding.col,
        "location": f"{finding.path}:{finding.line}:{finding.col}",
        "message": finding.message,
        "blocking": blocking,
        "accepted": accepted,
        "fix": (
            None if finding.fix is None
            else {"description": finding.fix.description, "safe": finding.fix.safe}
        ),
    }


def _accepted(risk: AcceptedRisk) -> dict[str, Any]:
    return {**_finding(risk.finding, blocking=False, accepted=True), "reason": risk.reason,
            "source": risk.source}


def _sorted(findings: Any) -> list[Finding]:
    """Worst first, then by place: what a reader should look at first."""
    return sorted(findings, key=lambda f: (-f.severity.rank, f.path, f.line, f.col, f.code))


def _number(value: float) -> float | int | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def _plain(value: Any) -> Any:
    """Given gate data (paths, tuples, enums, dataclasses, NaN), return JSON-safe data."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, PurePath):
        return value.as_posix()
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    return str(value)


# Templates ----------------------------------------------------------------------------


@cache
def environment() -> jinja2.Environment:
    """The Jinja2 environment of the report and rule templates (Markdown and text)."""
    import jinja2  # only the text and Markdown formats need it: JSON and SARIF do not

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tallinn.gates", "templates"),
        # Markdown and text, not HTML: escaping is done by the `md` filters where needed.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "xml")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md
    env.filters["cell"] = md_cell
    env.filters["plural"] = plural
    return env


def md(text: Any) -> str:
    """Given free text, return it safe as Markdown prose: tags shown, not interpreted.

    Only what could start HTML is escaped (`<b`, `</`, `<!`, `&amp;`), so `<= 1 ms` stays.
    """
    text = _ENTITY.sub(lambda m: "&amp;" + m.group(0)[1:], str(text))
    return _TAG.sub("&lt;", text)


def md_cell(text: Any) -> str:
    """Given free text, return it safe inside one Markdown table cell."""
    return md(text).replace("|", "\\|").replace("\r", "").replace("\n", " ")
