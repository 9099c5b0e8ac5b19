"""What every quality gate shares: findings, figures, results, rules and settings.

A gate measures one thing about a library and grades it against thresholds from
`[gates.<name>]` in `tallinn.toml`::

    PASSED   every figure meets its threshold
    PARTIAL  some figure misses its threshold but stays above its floor
    FAILED   some figure is below its floor (or a blocking finding exists)

Findings are `Diagnostic`s (rule code, severity, file, line, column, message, fix).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from tallinn.library import Diagnostic, Library, LibraryError, Severity

if TYPE_CHECKING:
    from tallinn.library.prompttests import PromptSuite

Finding = Diagnostic


class Status(StrEnum):
    PASSED = "PASSED"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class Confidence(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True, slots=True)
class Metric:
    """One figure beside its threshold, e.g. `render p95 = 0.21 ms (threshold <= 1 ms)`.

    `floor` is the worst value still graded PARTIAL; `None` means missing the threshold fails.
    """

    name: str
    value: float
    threshold: float
    unit: str = ""
    higher_is_better: bool = True
    floor: float | None = None

    def meets(self, limit: float) -> bool:
        return self.value >= limit if self.higher_is_better else self.value <= limit

    @property
    def status(self) -> Status:
        if self.meets(self.threshold):
            return Status.PASSED
        if self.floor is not None and self.meets(self.floor):
            return Status.PARTIAL
        return Status.FAILED

    @property
    def comparison(self) -> str:
        return ">=" if self.higher_is_better else "<="


@dataclass(frozen=True, slots=True)
class AcceptedRisk:
    """A finding accepted by the baseline or an inline suppression, with the reason given."""

    finding: Finding
    reason: str
    source: str  # "baseline" or "inline"


@dataclass(frozen=True, slots=True)
class GateResult:
    """The outcome of one gate run."""

    gate: str
    title: str
    status: Status
    metrics: tuple[Metric, ...] = ()
    findings: tuple[Finding, ...] = ()
    details: tuple[str, ...] = ()
    accepted: tuple[AcceptedRisk, ...] = ()
    duration: float = 0.0
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def blocking(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)


def grade(metrics: Iterable[Metric], *, blocking: bool = False) -> Status:
    """The status of a gate from its figures; `blocking` findings fail it outright."""
    statuses = [m.status for m in metrics]
    if blocking or Status.FAILED in statuses:
        return Status.FAILED
    if Status.PARTIAL in statuses:
        return Status.PARTIAL
    return Status.PASSED


@dataclass(frozen=True, slots=True)
class Rule:
    """A lint or audit rule: a stable code, a slug naming the flagged pattern, a severity.

    The rule's documentation (What it does / Why is this bad? / Example / Use instead) is
    the docstring of its check function, and `docs/rules.md` is built from it.
    """

    code: str
    name: str
    gate: str
    severity: Severity
    summary: str
    confidence: Confidence = Confidence.HIGH
    fixable: bool = False
    doc: str = ""


RULES: dict[str, Rule] = {}
F = TypeVar("F", bound=Callable[..., Any])


def rule(
    code: str,
    name: str,
    gate: str,
    severity: Severity,
    summary: str,
    *,
    confidence: Confidence = Confidence.HIGH,
    fixable: bool = False,
) -> Callable[[F], F]:
    """Register the decorated check function as rule `code`; codes are never reused."""

    def register(function: F) -> F:
        if code in RULES:
            raise ValueError(f"rule code {code} is registered twice")
        RULES[code] = Rule(code, name, gate, severity, summary, confidence, fixable,
                           (function.__doc__ or "").strip())
        function.rule = RULES[code]  # type: ignore[attr-defined]
        return function

    return register


def describe(code: str, summary: str, gate: str, severity: Severity, name: str,
             doc: str = "", fixable: bool = False) -> Rule:
    """Register a rule that is checked elsewhere (e.g. by the loader), for docs and SARIF."""
    if code not in RULES:
        RULES[code] = Rule(code, name, gate, severity, summary, Confidence.HIGH, fixable, doc)
    return RULES[code]


# `GateContext.shared[RENDERS]`: what the tests gate rendered, by case id, for the perf gate.
RENDERS = "prompt_test_renders"


@dataclass(slots=True)
class GateContext:
    """What a gate gets: the library, its folder, options from the command line.

    `shared` is one dictionary for all the gates of one run: what one gate reads (the prompt
    tests) the next one takes from there instead of reading it again.
    """

    root: Path | None  # the library folder; None for a library held in memory
    library: Library
    options: Mapping[str, Any] = field(default_factory=dict)
    progress: Callable[[str], None] = field(default=lambda _message: None)
    shared: dict[str, Any] = field(default_factory=dict)

    def prompt_tests(self) -> PromptSuite:
        """The library's prompt tests, read once for all the gates of a run."""
        from tallinn.library.prompttests import PromptSuite, load_tests  # PyYAML: when needed

        suite = self.shared.get("prompt_tests")
        if not isinstance(suite, PromptSuite):
            suite = self.shared["prompt_tests"] = load_tests(self.library.source)
        return suite


ModelT = TypeVar("ModelT", bound=BaseModel)


class GateSettings(BaseModel):
    """Base of each gate's `[gates.<name>]` settings: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def gate_settings(library: Library, gate: str, model: type[ModelT]) -> ModelT:
    """Read `[gates.<gate>]` from the library's tallinn.toml into `model`."""
    table = library.config.table("gates").get(gate, {})
    try:
        return model.model_validate(table or {})
    except ValidationError as exc:
        problems = [
            Diagnostic(
                "V106",
                f"[gates.{gate}] {'.'.join(str(p) for p in e['loc'])}: {e['msg']}",
                "tallinn.toml",
            )
            for e in exc.errors()
        ]
        raise LibraryError(f"invalid settings in [gates.{gate}]", problems) from None
