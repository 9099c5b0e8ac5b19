"""S302 private-key-block: a PEM or OpenSSH private key written into a library file."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._source import AuditFile
from tallinn.library import Severity

_HEADER = re.compile(r"-----BEGIN (?P<kind>(?:[A-Z0-9]+ )*)PRIVATE KEY(?: BLOCK)?-----")
# Key material after the header: the end of the header's line, maybe PEM headers
# (Proc-Type:, DEK-Info:), then base64; line breaks may be real or written as `\n` (JSON).
_BODY = re.compile(
    r"[^\n]*?(?:\n|\\n)(?:\s|\\n)*(?:[A-Za-z-]+:[^\n\\]*(?:\s|\\n)+)*[A-Za-z0-9+/=]{32,}"
)


@rule("S302", "private-key-block", "security", Severity.ERROR,
      "a private key is written in a library file", confidence=Confidence.HIGH)
def private_key_block(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    Flags a `-----BEGIN ... PRIVATE KEY-----` block (RSA, EC, OpenSSH, PGP, PKCS#8) that is
    followed by key material, in any file of the library. The header alone, as written in a
    prompt that tells the model what to look for, is not flagged.

    Why is this bad?
    Whoever reads the library, or the model context it is sent in, holds the key.

    Example:
    ```text
    -----BEGIN OPENSSH PRIVATE KEY-----
    b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAABlwAAAAdzc2gtcn
    ```

    Use instead:
    Refer to the key by path or secret-store name, never by value.

    Fix safety:
    No automatic fix: remove the block and replace the key; it is compromised.
    """
    if "PRIVATE KEY" not in file.text:
        return
    for match in _HEADER.finditer(file.text):
        if _BODY.match(file.text, match.end()):
            kind = match["kind"].strip()
            yield file.finding(
                RULE, match.start(),
                f"{kind + ' ' if kind else ''}private key in plain text; remove it and "
                "replace the key",
            )


RULE = RULES["S302"]
