"""S901 suppression-without-reason: `tallinn: ignore[...]` that does not say why."""

from __future__ import annotations

from collections.abc import Iterator

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._source import AuditFile
from tallinn.library import Severity


@rule("S901", "suppression-without-reason", "security", Severity.INFO,
      "an inline suppression gives no reason", confidence=Confidence.HIGH)
def suppression_without_reason(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    Flags an inline suppression (`<!-- tallinn: ignore[S501] -->`) with no reason after
    the codes. The suppression still applies.

    Why is this bad?
    An accepted risk needs a why, for the reviewer and for whoever meets it next year.
    Readiness reports list every accepted finding with its reason.

    Example:
    ```markdown
    <!-- tallinn: ignore[S501] -->
    ```

    Use instead:
    ```markdown
    <!-- tallinn: ignore[S501] quoted from a real attack, as an example to spot -->
    ```

    Fix safety:
    No automatic fix.
    """
    for suppression in file.suppressions:
        if not suppression.reason:
            codes = ", ".join(suppression.codes) or "nothing"
            yield file.finding(
                RULE, file.offset(suppression.line, suppression.col),
                f"suppression of {codes} gives no reason; write why after the codes",
            )


RULE = RULES["S901"]
