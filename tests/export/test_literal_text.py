"""Property: whatever literal text a prompt holds, the Claude Code and opencode exports read, once
substituted as those agents document, exactly as Tallinn renders the prompt."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tests.export.agents import claude_substitute, opencode_substitute, split_front_matter

from tallinn.export import TARGETS
from tallinn.library import load_library, render

# Pieces that mean something to an agent or to Tallinn, mixed with plain text.
PIECES = st.sampled_from([
    "$ARGUMENTS", "$ARGUMENTS[0]", "$0", "$1", "$10", "$who", "$whom", "$who_", "${CLAUDE_X}",
    "!`ls`", "@a/b", "x@y.z", "{{", "}}", "{", "$", "\\", "`", "a", " ", "\n", "who", "!",
])
PLACEHOLDERS = st.sampled_from(["{{who}}", "{{what}}", "$ARGUMENTS"])


def _source(text: str) -> str:
    """The Tallinn source that renders as `text`: its own tokens escaped."""
    return text.replace("{{", "\\{{").replace("$ARGUMENTS", "\\$ARGUMENTS")


def _plain(text: str) -> str:
    """Text with the full-width forms an export writes turned back into what they stand for."""
    return text.replace("！`", "!`").replace("＠", "@").replace("＄", "$")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.lists(PIECES, max_size=6).map("".join), PLACEHOLDERS),
                min_size=1, max_size=8))
def test_exports_substitute_to_what_tallinn_renders(parts: list[str]) -> None:
    """Literal agent syntax in any mix survives export: Claude Code (escaped) and opencode
    (full-width, reported) give the text Tallinn renders, for the same arguments."""
    literal = [p for p in parts if p not in ("{{who}}", "{{what}}", "$ARGUMENTS")]
    # A backslash right before a token is Tallinn's own escape, and `\\$` Claude Code's; a
    # literal `{{` split across pieces would open a placeholder: leave those mixes out.
    joined = "".join(literal)
    assume("\\" not in joined)
    body = "".join(p if p in ("{{who}}", "{{what}}", "$ARGUMENTS") else _source(p)
                   for p in parts)
    # A single `{` next to a placeholder's braces would make a different token.
    assume("{" not in body.replace("\\{{", "").replace("{{who}}", "").replace("{{what}}", ""))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "commands/x").mkdir(parents=True)
        (root / "commands/x/say.md").write_text(
            "---\ndescription: Say it\narguments:\n"
            "  - {name: who, description: Who, required: true}\n"
            "  - {name: what, description: What, required: true}\n"
            f"---\n{body}\n", encoding="utf-8")
        library = load_library(root)
        assert library.ok, library.errors
        command = library.commands["say"]
        expected = render(library, command, {"who": "Ann", "what": "tea"}, "Ann tea")
        for target in ("claude-commands", "opencode"):
            [file] = TARGETS[target].build(library).files
            meta, exported = split_front_matter(file.content)
            if target == "opencode":
                got = opencode_substitute(exported, ["Ann", "tea"])
            else:
                got = claude_substitute(exported, ["Ann", "tea"], list(meta["arguments"]))
            assert _plain(got) == expected, (target, exported)
