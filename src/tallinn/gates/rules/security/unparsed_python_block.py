"""S104 unparsed-python-block: a Python block does not parse, so it is read by tokens."""

from __future__ import annotations

from collections.abc import Iterator

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._python import analyse
from tallinn.gates.rules.security._source import PYTHON_LANGS, AuditFile
from tallinn.library import Severity


@rule("S104", "unparsed-python-block", "security", Severity.INFO,
      "a Python code block does not parse; it was audited token by token",
      confidence=Confidence.HIGH)
def unparsed_python_block(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    Notes a fenced Python block that is not valid Python. The Python rules then read it
    token by token: calls are still found and comments and strings are still skipped, but
    imports are not followed and keyword values are read less exactly.

    Why is this bad?
    It is not, necessarily: prompts hold fragments. But the audit of that block is less
    exact, and a fragment that is meant to be runnable code is broken.

    Example:
    ```python
    def handler(event):
        {{body}}
      return result
    ```

    Use instead:
    Make the block valid Python (`...` stands for elided code), or label a fragment that is
    not Python with another language (`text`).

    Fix safety:
    No automatic fix.
    """
    for snippet in file.snippets(PYTHON_LANGS):
        error = analyse(snippet).error
        if error is not None and snippet.text.strip():
            yield file.finding(
                RULE, snippet.starts[0],
                f"python block does not parse ({error}); it was audited token by token",
            )


RULE = RULES["S104"]
