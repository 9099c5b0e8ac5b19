"""V403 stray-closing-tag."""

from __future__ import annotations

from collections.abc import Iterator

from tallinn.gates.base import rule
from tallinn.gates.rules.xml._common import GATE, line_span
from tallinn.gates.rules.xml._scan import VOID_ELEMENTS, Scan, Tag
from tallinn.library import Diagnostic, Edit, Fix, Severity

CODE = "V403"


@rule(CODE, "stray-closing-tag", GATE, Severity.ERROR,
      "A closing tag has no opening tag", fixable=True)
def check(scan: Scan) -> Iterator[Diagnostic]:
    """What it does
    Checks that every closing tag such as `</output_format>` closes an element that is
    open at that point.

    Why is this bad?
    A closing tag without its opening tag is usually a renamed or deleted section whose end
    was left behind, or a typo in the opening tag (`<output-format>` ... `</output_format>`).
    The model sees a section end that never began.

    Example
    ```markdown
    <output-format>
    A table of findings.
    </output_format>
    ```

    Use instead
    ```markdown
    <output_format>
    A table of findings.
    </output_format>
    ```

    Fix safety
    The fix deletes the stray tag (and its line, when it stands alone). It changes the
    rendered prompt, so it is unsafe: it is applied only with `--unsafe-fixes`.
    """
    for tag in scan.stray:
        void = tag.name.lower() in VOID_ELEMENTS
        hint = f"; <{tag.name}> is a void element, which has no closing tag" if void else ""
        yield scan.diagnostic(
            CODE, f"</{tag.name}> closes nothing: no <{tag.name}> is open here{hint}",
            tag.start, _delete(scan, tag),
        )


def _delete(scan: Scan, tag: Tag) -> Fix:
    start, end = line_span(scan.text, tag.start)
    alone = not (scan.text[start : tag.start] + scan.text[tag.end : end]).strip()
    cut = (start, min(end + 1, len(scan.text))) if alone else (tag.start, tag.end)
    return Fix(f"delete </{tag.name}>",
               (Edit(scan.base + cut[0], scan.base + cut[1], ""),), safe=False)
