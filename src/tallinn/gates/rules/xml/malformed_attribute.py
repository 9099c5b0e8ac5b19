"""V404 malformed-attribute."""

from __future__ import annotations

from collections.abc import Iterator

from tallinn.gates.base import rule
from tallinn.gates.rules.xml._common import GATE
from tallinn.gates.rules.xml._scan import Scan
from tallinn.library import Diagnostic, Edit, Fix, Severity

CODE = "V404"


@rule(CODE, "malformed-attribute", GATE, Severity.ERROR,
      "A tag's attributes are not well-formed name=\"value\" pairs", fixable=True)
def check(scan: Scan) -> Iterator[Diagnostic]:
    """What it does
    Checks the attributes of XML-style tags: each is `name="value"` (or single quotes),
    separated by white space, with a valid name, given once. A tag whose angle brackets hold
    only words, such as `<file path>`, is read as prose and not checked.

    Why is this bad?
    An unquoted value, a value-less attribute or a repeated one makes the tag ambiguous to
    the model and invalid to every XML tool that reads the prompt; the value may end where
    the author did not mean it to.

    Example
    ```markdown
    <example kind=good lang="python"level="basic">
    ```

    Use instead
    ```markdown
    <example kind="good" lang="python" level="basic">
    ```

    Fix safety
    The fix puts quotes around an unquoted value. It changes the rendered prompt, so it is
    unsafe: it is applied only with `--unsafe-fixes`. Other problems have no fix.
    """
    for problem in scan.attributes:
        fix = None
        if problem.quote is not None:
            start, end = problem.quote
            fix = Fix(
                "quote the attribute value",
                (Edit(scan.base + start, scan.base + start, '"'),
                 Edit(scan.base + end, scan.base + end, '"')),
                safe=False,
            )
        yield scan.diagnostic(CODE, problem.message, problem.offset, fix)
