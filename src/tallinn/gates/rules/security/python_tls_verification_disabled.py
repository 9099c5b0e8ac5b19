"""S105 python-tls-verification-disabled: `verify=False` and unverified SSL contexts."""

from __future__ import annotations

from collections.abc import Iterator

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._python import analyse
from tallinn.gates.rules.security._source import PYTHON_LANGS, AuditFile
from tallinn.library import Severity


@rule("S105", "python-tls-verification-disabled", "security", Severity.WARNING,
      "TLS certificate verification turned off in a Python code block",
      confidence=Confidence.HIGH)
def python_tls_verification_disabled(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    Flags Python that turns off TLS certificate checks: a call with `verify=False`
    (requests, httpx), `ssl._create_unverified_context()` and `ssl.CERT_NONE`.

    Why is this bad?
    Without certificate checks anyone on the network path can impersonate the server and
    read or change the traffic, credentials included. Snippets in prompts get copied.

    Example:
    ```python
    requests.get(url, verify=False)
    ```

    Use instead:
    ```python
    requests.get(url, verify="/etc/ssl/certs/internal-ca.pem")
    ```

    Fix safety:
    No automatic fix.
    """
    for snippet in file.snippets(PYTHON_LANGS):
        code = analyse(snippet)
        for call in code.calls:
            if call.keywords.get("verify") == "False":
                message = f"`{call.name}(..., verify=False)` turns off certificate checks"
            elif call.name.endswith("_create_unverified_context"):
                message = f"`{call.name}()` makes a context that checks no certificate"
            else:
                continue
            yield file.finding(RULE, snippet.file_offset(call.offset),
                               message + "; trust a CA bundle instead")
        for reference in code.references:
            if reference.name == "ssl.CERT_NONE":
                yield file.finding(
                    RULE, snippet.file_offset(reference.offset),
                    "`ssl.CERT_NONE` turns off certificate checks; trust a CA bundle instead",
                )


RULE = RULES["S105"]
