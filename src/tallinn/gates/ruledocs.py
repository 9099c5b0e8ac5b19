"""Build docs/rules.md from the `RULES` registry and each rule's docstring.

    uv run python -m tallinn.gates.ruledocs > docs/rules.md

A rule's docstring is split into the sections ruff uses, each under a heading (`## What it
does`, `What it does:` or an underlined title all work)::

    What it does / Why is this bad? / Example / Use instead / Fix safety / References

A test checks that docs/rules.md is up to date.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from collections.abc import Mapping

from tallinn.gates import GATE_MODULES
from tallinn.gates.base import RULES, Rule

SECTIONS = ("What it does", "Why is this bad?", "Example", "Use instead", "Fix safety",
            "References")
INTRO = ""  # the text before the first heading
_KEYS = {s.lower().rstrip("?"): s for s in SECTIONS}
_HEADING = re.compile(r"^\s{0,3}(?:#{1,6}\s*)?(?P<title>[A-Za-z][A-Za-z ?]*?)\s*:?\s*$")
_UNDERLINE = re.compile(r"^\s*(?:-{3,}|={3,})\s*$")
# Modules that register rules besides the gates themselves (rules checked by the loader).
EXTRA_MODULES = ("tallinn.gates.rules",)


def load_rules() -> dict[str, Rule]:
    """Import every gate module and rule package so that all rules are registered."""
    for module in (*GATE_MODULES.values(), *EXTRA_MODULES):
        try:
            package = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module.startswith(exc.name):
                continue  # that gate (or rule package) is not there
            raise
        path = getattr(package, "__path__", None)
        if path is not None:
            for info in pkgutil.walk_packages(path, prefix=f"{module}."):
                importlib.import_module(info.name)
    return dict(sorted(RULES.items()))


def sections(doc: str) -> dict[str, str]:
    """Given a rule docstring, return {section title: text}; text before any heading is ""."""
    lines = inspect.cleandoc(doc).splitlines()
    found: dict[str, list[str]] = {INTRO: []}
    current = INTRO
    fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        title = None if fence else _title(line)
        underlined = i + 1 < len(lines) and bool(_UNDERLINE.match(lines[i + 1]))
        if title is not None and (underlined or line.lstrip().startswith("#")
                                  or line.rstrip().endswith(":") or line.strip() in SECTIONS):
            current = title
            found.setdefault(current, [])
            i += 2 if underlined else 1
            continue
        found[current].append(line)
        i += 1
    return {k: "\n".join(v).strip("\n") for k, v in found.items() if "".join(v).strip()}


def _title(line: str) -> str | None:
    match = _HEADING.match(line)
    if match is None:
        return None
    return _KEYS.get(match.group("title").strip().lower().rstrip("?").strip())


def missing_sections(rule: Rule) -> list[str]:
    """The sections every rule must document that `rule`'s docstring lacks."""
    present = sections(rule.doc)
    return [s for s in ("What it does", "Why is this bad?") if s not in present]


def anchor(rule: Rule) -> str:
    """GitHub's anchor of the rule's heading `### CODE name`."""
    return re.sub(r"[^a-z0-9 -]", "", f"{rule.code} {rule.name}".lower()).replace(" ", "-")


def fix_safety(rule: Rule, documented: Mapping[str, str]) -> str:
    if "Fix safety" in documented:
        return documented["Fix safety"]
    if rule.fixable:
        return "This rule offers an automatic fix."
    return "This rule has no automatic fix."


def generate(rules: Mapping[str, Rule] | None = None) -> str:
    """The text of docs/rules.md for `rules` (default: every registered rule)."""
    from tallinn.gates.report import environment

    registry = load_rules() if rules is None else dict(sorted(rules.items()))
    gates = [*GATE_MODULES, *sorted({r.gate for r in registry.values()} - set(GATE_MODULES))]
    groups = []
    for gate in gates:
        items = []
        for rule in (r for r in registry.values() if r.gate == gate):
            documented = sections(rule.doc)
            items.append({
                "rule": rule,
                "anchor": anchor(rule),
                "intro": documented.get(INTRO, ""),
                "sections": [(s, documented[s]) for s in SECTIONS
                             if s in documented and s != "Fix safety"],
                "fix_safety": fix_safety(rule, documented),
            })
        if items:
            groups.append({"gate": gate, "rules": items})
    text = environment().get_template("rules.md.j2").render(groups=groups, total=len(registry))
    return text.rstrip("\n") + "\n"


def main() -> int:
    sys.stdout.write(generate())
    return 0


if __name__ == "__main__":
    sys.exit(main())
