"""S101 dynamic-code-execution: `eval`, `exec` or `compile` called in a Python block."""

from __future__ import annotations

from collections.abc import Iterator

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._python import analyse
from tallinn.gates.rules.security._source import PYTHON_LANGS, AuditFile
from tallinn.library import Severity

_DANGER = {"eval": Severity.ERROR, "exec": Severity.ERROR, "compile": Severity.WARNING}


@rule("S101", "dynamic-code-execution", "security", Severity.ERROR,
      "eval, exec or compile called in a Python code block", confidence=Confidence.HIGH)
def dynamic_code_execution(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    Flags real calls of the builtins `eval()` and `exec()` (high) and `compile()` (medium)
    in fenced Python blocks of commands and components. The block is parsed, so the words
    in prose, comments, strings, method names (`model.eval()`) or `re.compile` are not
    flagged.

    Why is this bad?
    Code in a prompt is code the model will imitate. `eval` and `exec` run whatever string
    they get, so a snippet that evaluates input teaches the model to write a code-injection
    hole.

    Example:
    ```python
    value = eval(request.args["expr"])
    ```

    Use instead:
    ```python
    import ast
    value = ast.literal_eval(request.args["expr"])
    ```

    Fix safety:
    No automatic fix.
    """
    for snippet in file.snippets(PYTHON_LANGS):
        for call in analyse(snippet).calls:
            name = call.name.removeprefix("builtins.")
            severity = _DANGER.get(name)
            if severity is not None:
                yield file.finding(
                    RULE, snippet.file_offset(call.offset),
                    f"`{name}()` runs code built at run time; parse data instead "
                    "(ast.literal_eval, json) or dispatch to known functions",
                    severity=severity,
                )


RULE = RULES["S101"]
