"""Generate synthetic libraries of any size, with includes, arguments and tests.

    python benchmarks/synth.py OUT_DIR --commands 1000
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

CATEGORIES = ["review", "debug", "testing", "refactor", "docs", "security", "git", "ops",
              "design", "release"]
PARAGRAPH = (
    "Read the relevant code before you change it, and say what you found. Prefer the smallest "
    "change that solves the problem, and show the evidence that it works.\n"
)


def generate(root: Path, commands: int, seed: int = 7) -> Path:
    """Write a library of `commands` commands and commands/10 components under `root`."""
    rng = random.Random(seed)
    components = max(commands // 10, 5)
    for index in range(components):
        group = CATEGORIES[index % len(CATEGORIES)]
        child = f'<include component="{CATEGORIES[(index + 1) % 10]}/part-{index + 1}"/>\n'
        nested = child if index + 1 < components and index % 3 == 0 else ""
        path = root / "components" / group / f"part-{index}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f"---\ndescription: Shared guidance number {index}\n---\n"
            f"<guidance>\n{PARAGRAPH * 3}{nested}</guidance>\n",
            encoding="utf-8",
        )
    for index in range(commands):
        category = CATEGORIES[index % len(CATEGORIES)]
        includes = "".join(
            f'<include component="{CATEGORIES[c % 10]}/part-{c}"/>\n'
            for c in rng.sample(range(components), 2)
        )
        path = root / "commands" / category / f"cmd-{index:05d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f"""---
description: Synthetic command {index} for load and render benchmarks
argument-hint: "<target> [depth]"
arguments:
  - name: target
    description: What to work on
    required: true
  - name: depth
    description: How deep to go
    type: enum
    enum: [quick, normal, deep]
    default: normal
  - name: limit
    description: How many findings at most
    type: integer
    default: 10
tags: [synthetic, {category}]
examples:
  - description: Work on the parser
    args: {{target: src/parser.py, depth: deep}}
---
<role>You are a careful engineer.</role>

<instructions>
Work on `{{{{target}}}}` at {{{{depth}}}} depth and report at most {{{{limit}}}} findings.
{PARAGRAPH * 2}</instructions>
{includes}""",
            encoding="utf-8",
        )
    (root / "tallinn.toml").write_text(
        f'[library]\nname = "synthetic-{commands}"\n', encoding="utf-8")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--commands", type=int, default=1000)
    args = parser.parse_args()
    generate(args.out, args.commands)
    print(f"wrote {args.commands} commands to {args.out}")


if __name__ == "__main__":
    main()
