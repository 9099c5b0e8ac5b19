"""What the agents do with an exported file, as their documentation says: parse it, and
substitute arguments. Tests compare that with what Tallinn renders."""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any

import yaml


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Given `---\\nyaml\\n---\\nbody`, return the parsed YAML and the body."""
    assert text.startswith("---\n"), text[:40]
    head, separator, body = text[4:].partition("\n---\n")
    assert separator, "front matter is not closed"
    data = yaml.safe_load(head)
    assert isinstance(data, dict)
    return data, body


def claude_substitute(text: str, words: list[str], names: list[str]) -> str:
    """Claude Code 2.1: `\\$` keeps a `$` literal; `$ARGUMENTS[N]`, `$N` (0-based) and `$name`
    (listed under `arguments:`) take one word; `$ARGUMENTS` takes the whole string."""
    joined = " ".join(shlex.quote(w) if " " in w else w for w in words)
    named = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    pattern = r"\\\$|\$ARGUMENTS\[(\d+)\]|\$ARGUMENTS|\$(\d+)"
    if named:
        pattern += rf"|\$({named})(?![A-Za-z0-9_])"

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "\\$":
            return "$"
        index = match.group(1) or match.group(2)
        if index is not None:
            return words[int(index)] if int(index) < len(words) else match.group(0)
        if match.group(0) == "$ARGUMENTS":
            return joined
        position = names.index(match.group(3))
        return words[position] if position < len(words) else ""

    return re.sub(pattern, one, text)


def opencode_substitute(text: str, words: list[str]) -> str:
    """opencode: `$ARGUMENTS` is the whole string, `$N` (1-based) one word."""
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$ARGUMENTS":
            return " ".join(words)
        index = int(match.group(1)) - 1
        return words[index] if index < len(words) else ""

    return re.sub(r"\$ARGUMENTS|\$(\d+)", one, text)


def gemini_command(text: str) -> dict[str, Any]:
    """Gemini CLI's schema for a command file: `prompt` (string, required), `description`
    (string, optional), nothing else."""
    data = tomllib.loads(text)
    assert isinstance(data.get("prompt"), str)
    assert set(data) <= {"prompt", "description"}
    assert isinstance(data.get("description", ""), str)
    return data
