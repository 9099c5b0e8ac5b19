"""V401 unclosed-tag."""

from __future__ import annotations

from collections.abc import Iterator

from tallinn.gates.base import rule
from tallinn.gates.rules.xml._common import GATE, line_span
from tallinn.gates.rules.xml._scan import Scan, Tag
from tallinn.library import Diagnostic, Edit, Fix, Severity

CODE = "V401"


@rule(CODE, "unclosed-tag", GATE, Severity.ERROR, "An opening tag has no closing tag",
      fixable=True)
def check(scan: Scan) -> Iterator[Diagnostic]:
    """What it does
    Checks that every XML-style tag opened in a body, such as `<instructions>`, is closed
    by a matching `</instructions>` in the same body.

    Why is this bad?
    The model reads tags as the boundaries of sections. An unclosed tag leaves it to guess
    where the section ends, so instructions meant for one part leak into the next. It is also
    often a typo (`<role>` closed by `<role>`), or a placeholder written in prose like
    `<path>` that reads as the start of a section.

    Not checked: tags in fenced code blocks and inline code, HTML comments, CDATA,
    autolinks, `a < b`, `List<String>`, and HTML void elements (`<br>`, `<hr>`, `<img>`,
    `<input>` and the others of the HTML standard), which never have a closing tag. Names
    listed in `[gates.xml] void_elements` need none either.

    Example
    ```markdown
    <role>You are a careful reviewer.

    <instructions>
    Review the file given as <path>.
    </instructions>
    ```

    Use instead
    ```markdown
    <role>You are a careful reviewer.</role>

    <instructions>
    Review the file given as `<path>`.
    </instructions>
    ```

    Fix safety
    Where the tag starts a line that holds the whole element (the next line is blank, a tag,
    or the end), the fix adds the closing tag at the end of that line. It changes the
    rendered prompt, so it is unsafe: it is applied only with `--unsafe-fixes`.
    """
    for tag in scan.unclosed:
        yield scan.diagnostic(
            CODE,
            f"<{tag.name}> is never closed: add </{tag.name}>, or write `<{tag.name}>` in "
            "backticks if it is not a tag",
            tag.start, _close_on_line(scan, tag),
        )


def _close_on_line(scan: Scan, tag: Tag) -> Fix | None:
    """Close `tag` at the end of its line when the element clearly ends there."""
    text = scan.text
    start, end = line_span(text, tag.start)
    rest = text[tag.end : end]
    if text[start : tag.start].strip() or not rest.strip() or "<" in rest:
        return None
    following = text[end + 1 : line_span(text, end + 1)[1]] if end < len(text) else ""
    if following.strip() and not following.lstrip().startswith("<"):
        return None
    at = scan.base + tag.end + len(rest.rstrip())
    return Fix(f"add </{tag.name}> at the end of the line", (Edit(at, at, f"</{tag.name}>"),),
               safe=False)
