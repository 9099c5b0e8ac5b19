"""S204 shell-tls-verification-disabled: `curl -k`, `wget --no-check-certificate` and kin."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._shell import Command, Word, short_flags
from tallinn.gates.rules.security._source import AuditFile
from tallinn.library import Severity

# curl's short options that take a value: letters after them are the value.
_CURL_VALUES = "AbcCdDeEFHKmoPQrTuUwxXyYz"
_FLAGS = frozenset({"--insecure-skip-tls-verify", "--insecure-skip-tls-verify=true",
                    "--tls-verify=false", "--no-verify-ssl", "--strict-ssl=false",
                    "--disable-ssl-verification"})
_ENVIRONMENT = {
    "NODE_TLS_REJECT_UNAUTHORIZED": ("0",),
    "PYTHONHTTPSVERIFY": ("0",),
    "GIT_SSL_NO_VERIFY": ("1", "true", "yes"),
}
_FALSE = frozenset({"false", "0", "no", "off"})
_GIT_SSL_VERIFY = re.compile(r"^http\.(?:.+\.)?sslverify$", re.IGNORECASE)


@rule("S204", "shell-tls-verification-disabled", "security", Severity.WARNING,
      "TLS certificate verification turned off in a shell command",
      confidence=Confidence.HIGH)
def shell_tls_verification_disabled(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    In shell blocks and `` !`cmd` `` lines, flags commands that turn off TLS certificate checks:
    `curl -k` / `--insecure`, `wget --no-check-certificate`, `git -c http.sslVerify=false`,
    `git config http.sslVerify false`, `npm config set strict-ssl false`,
    `--insecure-skip-tls-verify`, and the variables `NODE_TLS_REJECT_UNAUTHORIZED=0`,
    `PYTHONHTTPSVERIFY=0` and `GIT_SSL_NO_VERIFY=1`.

    Why is this bad?
    Without certificate checks anyone on the network path can impersonate the server: the
    download, the clone or the credentials sent are theirs to read or replace.

    Example:
    ```bash
    curl -k -o tool.tgz https://artifacts.internal/tool.tgz
    ```

    Use instead:
    ```bash
    curl --cacert /etc/ssl/certs/internal-ca.pem -o tool.tgz https://artifacts.internal/tool.tgz
    ```

    Fix safety:
    No automatic fix.
    """
    for snippet, script in file.shell_scripts():
        for command in script.commands():
            what = _insecure(command)
            if what is not None:
                yield file.finding(
                    RULE, snippet.file_offset(command.offset),
                    f"`{what}` turns off TLS certificate checks; trust the right CA instead",
                )


def _insecure(command: Command) -> str | None:
    assignments = command.assignments + (command.args if command.name == "export" else ())
    for word in assignments:
        found = _environment(word)
        if found is not None:
            return found
    args = [a.text for a in command.args]
    for index, text in enumerate(args):
        if text in _FLAGS or text.lower() in _FLAGS:
            return f"{command.name} {text}"
        if command.name == "curl" and (
            text in ("--insecure", "--proxy-insecure") or "k" in short_flags(text, _CURL_VALUES)
        ):
            return f"curl {text}"
        if command.name == "wget" and text == "--no-check-certificate":
            return f"wget {text}"
        if command.name == "git" and text == "-c" and index + 1 < len(args):
            key, _, value = args[index + 1].partition("=")
            if _GIT_SSL_VERIFY.match(key) and value.lower() in _FALSE:
                return f"git -c {args[index + 1]}"
    if command.name == "git" and "config" in args:
        rest = args[args.index("config") + 1:]
        values = [a for a in rest if not a.startswith("-")]
        if len(values) >= 2 and _GIT_SSL_VERIFY.match(values[0]) and values[1].lower() in _FALSE:
            return f"git config {values[0]} {values[1]}"
    if command.name in ("npm", "yarn", "pnpm") and args[:1] == ["config"]:
        values = [a.lower() for a in args if not a.startswith("-")]
        if "strict-ssl" in values and values[-1] in _FALSE:
            return f"{command.name} config set strict-ssl false"
    return None


def _environment(word: Word) -> str | None:
    name, _, value = word.text.partition("=")
    if value.lower() in _ENVIRONMENT.get(name, ()):
        return word.text
    return None


RULE = RULES["S204"]
