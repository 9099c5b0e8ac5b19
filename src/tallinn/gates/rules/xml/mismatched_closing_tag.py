"""V402 mismatched-closing-tag."""

from __future__ import annotations

from collections.abc import Iterator

from tallinn.gates.base import rule
from tallinn.gates.rules.xml._common import GATE
from tallinn.gates.rules.xml._scan import Scan
from tallinn.library import Diagnostic, Severity

CODE = "V402"


@rule(CODE, "mismatched-closing-tag", GATE, Severity.ERROR,
      "A closing tag closes an element while an inner one is still open")
def check(scan: Scan) -> Iterator[Diagnostic]:
    """What it does
    Checks that elements nest: a closing tag must close the innermost open element. It flags
    `</a>` written while an element opened inside `<a>` is still open and is closed only
    later, so that the two overlap.

    Why is this bad?
    Overlapping sections (`<a><b></a></b>`) have no meaning as a structure: the model,
    and any tool that parses the prompt, has to guess which text belongs to which section.

    Example
    ```markdown
    <context>
    <files>src/app.py
    </context>
    </files>
    ```

    Use instead
    ```markdown
    <context>
    <files>src/app.py</files>
    </context>
    ```

    Fix safety
    There is no automatic fix: which of the two tags is misplaced is a matter of intent.
    """
    for closing, inner in scan.mismatched:
        line, col = scan.where(inner.start)
        yield scan.diagnostic(
            CODE,
            f"</{closing.name}> closes <{closing.name}> while <{inner.name}> (line {line}, "
            f"column {col}) is still open and is closed later: close </{inner.name}> first",
            closing.start,
        )
