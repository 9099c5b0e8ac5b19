"""S301 hardcoded-secret: API keys, tokens and passwords written into library files."""

from __future__ import annotations

import hashlib
import math
import re
import string
from collections import Counter
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._source import AuditFile
from tallinn.library import Severity

# Our own patterns, for the keys prompt authors handle most; detect-secrets adds the rest.
# (kind, literals of which one must be in the text, pattern)
_PATTERNS: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = (
    ("Anthropic API key", ("sk-ant-",), re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}")),
    ("OpenAI API key", ("sk-",),
     re.compile(r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")),
    ("GitHub token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
     re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})")),
    ("AWS access key", ("AKIA", "ASIA", "ABIA", "ACCA"),
     re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b")),
    ("Google API key", ("AIza",), re.compile(r"\bAIza[0-9A-Za-z_-]{35}")),
    ("Hugging Face token", ("hf_",), re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
)
_PREFIX = re.compile(
    r"^(?:sk-(?:ant-(?:[a-z]+\d\d-)?|proj-|svcacct-|admin-)?|gh[pousr]_|github_pat_|hf_)"
)
_BASIC_AUTH = "Basic Auth Credentials"  # what detect-secrets calls user:pass@ in URLs
# detect-secrets plugins that match a known format; its entropy and keyword plugins flag
# ordinary prose, and its private-key plugin flags a mere header (S302 needs a key body).
_PLUGINS = (
    "artifactory.ArtifactoryDetector", "aws.AWSKeyDetector",
    "azure_storage_key.AzureStorageKeyDetector", "basic_auth.BasicAuthDetector",
    "cloudant.CloudantDetector", "discord.DiscordBotTokenDetector",
    "github_token.GitHubTokenDetector", "gitlab_token.GitLabTokenDetector",
    "ibm_cloud_iam.IbmCloudIamDetector", "ibm_cos_hmac.IbmCosHmacDetector",
    "jwt.JwtTokenDetector", "mailchimp.MailchimpDetector", "npm.NpmDetector",
    "openai.OpenAIDetector", "pypi_token.PypiTokenDetector", "sendgrid.SendGridDetector",
    "slack.SlackDetector", "softlayer.SoftlayerDetector", "square_oauth.SquareOAuthDetector",
    "stripe.StripeDetector", "telegram_token.TelegramBotTokenDetector",
    "twilio.TwilioKeyDetector",
)
# A line can only hold one of those secrets if it has a long run of token characters with
# a digit (or mixed case), or credentials in a URL. Checking that first keeps the plugins'
# slow keyword patterns off almost every line of prose.
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "_+/=.-")
_SHORTEST = 16
# Keeps the token characters of UTF-8 text and makes every other byte a space: `split()` then
# cuts the runs in C, four times faster than a regular expression tried at every offset.
_RUNS = bytes(code if chr(code) in _TOKEN_CHARS else 0x20 for code in range(256))
_DIGIT = re.compile(rb"[0-9]")
_URL_AUTH = re.compile(r"://[^\s@/]*@")
_URL_CREDENTIALS = re.compile(r"://(?P<user>[^\s:/@]*):(?P<password>[^\s/@]+)@(?P<host>[^\s/:?#]*)")
_LOCAL_HOST = re.compile(
    r"^(?:localhost|127\.[\d.]+|0\.0\.0\.0|\[::1\]|[A-Za-z0-9_-]+|.*\bexample\.(?:com|org|net))$",
    re.IGNORECASE,
)
_CONFIG_SUFFIXES = (".toml", ".yaml", ".yml", ".json", ".env", ".ini", ".cfg")
_CONFIG_ASSIGNMENT = re.compile(
    r"""^\s*["']?(?P<key>[A-Za-z0-9_.-]*?(?:password|passwd|secret|token|api[_-]?key|apikey|"""
    r"""access[_-]?key|private[_-]?key|client[_-]?secret))["']?\s*[:=]\s*["']?"""
    r"""(?P<value>[^"'\s#,}]{8,})""",
    re.IGNORECASE,
)
_PLACEHOLDER_WORDS = (
    "...", "\u2026", "xxxx", "****", "<", ">", "{", "}", "$", "your", "example", "sample",
    "placeholder", "dummy", "fake", "redacted", "changeme", "change_me", "replace", "insert",
    "0123456789", "123456789", "abcdefghij",
)
_DUMMY_PASSWORDS = frozenset({
    "password", "passwd", "pass", "pwd", "secret", "changeme", "admin", "root", "user",
    "test", "example", "foo", "bar", "xxx", "postgres", "mysql", "guest",
})


@rule("S301", "hardcoded-secret", "security", Severity.ERROR,
      "an API key, token or password is written in a library file",
      confidence=Confidence.MEDIUM)
def hardcoded_secret(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    Looks through every file of the library (commands, components, tests, `tallinn.toml`)
    for credentials: Anthropic (`sk-ant-`), OpenAI (`sk-`, `sk-proj-`), GitHub (`ghp_`,
    `gho_`, `github_pat_`), AWS, Google and Hugging Face keys, the formats detect-secrets
    knows (Slack, Stripe, GitLab, JWTs, credentials in URLs...), and secret-looking values
    assigned to keys such as `token` or `password` in configuration files. Obvious
    placeholders (`sk-ant-...`, `<your-key>`, `xxxx`, `${TOKEN}`) are not flagged, nor are
    URL credentials for a local host. The message shows only the start of the value and a
    short hash that tells two secrets apart.

    Why is this bad?
    A prompt library is shared, copied into other repositories and sent to a model with
    every prompt: a key in it is a leaked key, and it stays in the git history.

    Example:
    ```toml
    [serve]
    token = "tln_8fK2mQ9xVb3LrT7w"
    ```

    Use instead:
    ```toml
    [serve]
    token_env = "TALLINN_TOKEN"
    ```

    Fix safety:
    No automatic fix: remove the value, rotate the credential, and read it from the
    environment or a secret store.
    """
    taken: list[tuple[int, int]] = []
    for kind, start, secret in _candidates(file):
        end = start + len(secret)
        if any(start < e and s < end for s, e in taken):
            continue
        taken.append((start, end))
        yield file.finding(
            RULE, start,
            f"{kind} in plain text ({mask(secret)}); remove it, rotate it and read it "
            "from the environment",
        )


def _candidates(file: AuditFile) -> Iterator[tuple[str, int, str]]:
    """(kind, file offset, value) of every non-placeholder secret found."""
    yield from _own_patterns(file)
    yield from _plugin_matches(file)
    if file.path.endswith(_CONFIG_SUFFIXES):
        yield from _config_values(file)


def _own_patterns(file: AuditFile) -> Iterator[tuple[str, int, str]]:
    for kind, literals, pattern in _PATTERNS:
        if any(literal in file.text for literal in literals):
            for match in pattern.finditer(file.text):
                if _looks_random(_PREFIX.sub("", match.group())):
                    yield kind, match.start(), match.group()


def _plugin_matches(file: AuditFile) -> Iterator[tuple[str, int, str]]:
    for number in _candidate_lines(file):
        line = file.lines[number - 1]
        for plugin in _plugins():
            for value in plugin.analyze_string(line):
                position = line.find(value)
                if position < 0 or _is_placeholder(value) or (
                    plugin.secret_type == _BASIC_AUTH and _dev_credentials(line)
                ):
                    continue
                yield plugin.secret_type, file.line_starts[number - 1] + position, value


def _config_values(file: AuditFile) -> Iterator[tuple[str, int, str]]:
    """`token = "..."` and the like in configuration files."""
    for number, line in enumerate(file.lines, 1):
        match = _CONFIG_ASSIGNMENT.match(line)
        if match is None:
            continue
        value = match["value"]
        if (re.fullmatch(r"[A-Z][A-Z0-9_]*", value) or _is_placeholder(value)
                or not _looks_random(value)):
            continue  # an environment variable's name, a placeholder, a word
        offset = file.line_starts[number - 1] + match.start("value")
        yield f"value of '{match['key']}'", offset, value


def _candidate_lines(file: AuditFile) -> list[int]:
    """1-based numbers of the lines that could hold a secret of a known format: those with a
    run of 16 or more token characters holding a digit, or of 28 or more in mixed case (or
    none), or with credentials in a URL."""
    data = file.text.encode("utf-8", "surrogatepass")
    runs = data.translate(_RUNS)
    lines = {file.position(match.start())[0] for match in _URL_AUTH.finditer(file.text)}
    pos, line = 0, 1  # `line` is the line of byte `pos`
    for run in [r for r in runs.split() if len(r) >= _SHORTEST]:
        # Between the last long run and this one there are only spaces and shorter runs, so
        # its first occurrence after the last is itself.
        at = runs.find(run, pos)
        line += data.count(b"\n", pos, at)
        pos = at + len(run)
        if _DIGIT.search(run) or (len(run) >= 28 and not run.islower() and not run.isupper()):
            lines.add(line)
    return sorted(lines)


@cache
def _plugins() -> Sequence[Any]:
    """One instance of each detect-secrets plugin used (imported on first use: ~0.15 s)."""
    import importlib

    plugins = []
    for name in _PLUGINS:
        module, _, cls = name.rpartition(".")
        plugins.append(getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), cls)())
    return tuple(plugins)


def _dev_credentials(line: str) -> bool:
    """Whether URL credentials in `line` are a local development default (`db:5432`)."""
    for match in _URL_CREDENTIALS.finditer(line):
        password = match["password"]
        if not (_LOCAL_HOST.match(match["host"]) or password.lower() in _DUMMY_PASSWORDS
                or password == match["user"]):
            return False
    return True


def _is_placeholder(value: str) -> bool:
    """Whether a value is obviously not a real secret: `<your-key>`, `xxxx`, `aaaa...`."""
    lowered = value.lower()
    if lowered in _DUMMY_PASSWORDS or any(word in lowered for word in _PLACEHOLDER_WORDS):
        return True
    body = re.sub(r"^[a-z]+[-_]", "", lowered)
    return len(set(body)) < max(4, min(len(body) // 3, 8))


def _looks_random(value: str) -> bool:
    """Whether a value mixes character classes and has entropy, as generated keys do."""
    if _is_placeholder(value):
        return False
    classes = sum(bool(re.search(p, value)) for p in ("[a-z]", "[A-Z]", "[0-9]"))
    counts = Counter(value)
    entropy = -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())
    return classes >= 2 and entropy >= 3.0


def mask(secret: str) -> str:
    """Given a secret, return its first characters and a short hash: `sk-ant-a… #1f2e3d4c`."""
    shown = secret[: min(len(secret) // 4, 8)]
    digest = hashlib.sha256(secret.encode("utf-8")).hexdigest()[:8]
    return f"{shown}\u2026 #{digest}"


RULE = RULES["S301"]
