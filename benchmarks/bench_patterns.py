"""CPU per render against hostile patterns and the largest arguments a server accepts.

    uv run python benchmarks/bench_patterns.py [--value-chars N] [--total-chars N] [--rounds 5]

Prints, per case, the CPU time of one `render` (the best of `--rounds`, in ms), its work count
as the server reckons it (`tallinn.serve._limits.render_work`: characters x RE2 instructions,
plus the characters copied) and so where the server runs it (on the event loop or a worker
thread). Cases:

- a typical command: two short values, one with `[a-z][a-z0-9-]*`;
- each classic catastrophic pattern (`(a+)+$`, `(a|aa)*b`, `(x+x+)+y`, ...) against the
  largest value the server accepts (`--value-chars`, default the `[serve]` default);
- the largest program RE2 accepts within Tallinn's budget (`(.*a){1000}`, plus a 16-fold
  `(?:.?){30}` nest) against the largest value, and against every argument at once filling
  the largest total (`--total-chars`);
- a template of 1,000 slots filled with the largest total.

With Python's `re`, the second group alone would not finish: `(a+)+$` against 32 `a`s and a
`!` takes minutes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.bounded import CATASTROPHIC  # noqa: E402

from tallinn.library import load_library, render  # noqa: E402
from tallinn.serve._config import (  # noqa: E402
    DEFAULT_MAX_ARGUMENT_CHARS,
    DEFAULT_MAX_ARGUMENTS_CHARS,
)
from tallinn.serve._limits import INLINE_WORK, render_work  # noqa: E402

BIG = "(.*a){1000}"
NESTED = "(?:(?:.?){30}){30}z"


def _command(name: str, patterns: list[str | None], body: str) -> tuple[str, str]:
    lines = ["---", f"description: {name}", "arguments:"]
    for index, pattern in enumerate(patterns):
        extra = f", pattern: '{pattern}'" if pattern else ""
        lines.append(f"  - {{name: v{index}, description: value {index}{extra}}}")
    lines += ["---", body]
    return f"commands/bench/{name}.md", "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--value-chars", type=int, default=DEFAULT_MAX_ARGUMENT_CHARS)
    parser.add_argument("--total-chars", type=int, default=DEFAULT_MAX_ARGUMENTS_CHARS)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    value_chars, total_chars = options.value_chars, options.total_chars
    per_arg = total_chars // max(1, total_chars // value_chars)
    count = max(1, total_chars // value_chars)

    files = dict([
        _command("typical", ["[a-z][a-z0-9-]*", None], "Review {{v0}} for {{v1}}."),
        *(_command(f"catastrophic-{i}", [p], "{{v0}}") for i, (p, _, _) in enumerate(CATASTROPHIC)),
        _command("big-program", [BIG], "{{v0}}"),
        _command("nested-program", [NESTED], "{{v0}}"),
        _command("big-programs", [BIG] * count, " ".join(f"{{{{v{i}}}}}" for i in range(count))),
        _command("many-slots", [None] * count,
                 " ".join(f"{{{{v{i % count}}}}}" for i in range(1000))),
    ])
    cases: list[tuple[str, str, dict[str, str]]] = [
        ("typical", "typical", {"v0": "payments-api", "v1": "security"}),
    ]
    library_dir = Path(tempfile.mkdtemp(prefix="bench-patterns-"))
    for rel, text in files.items():
        (library_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (library_dir / rel).write_text(text, encoding="utf-8")
    library = load_library(library_dir)
    if library.errors:
        for problem in library.errors:
            print(problem, file=sys.stderr)
        return 2

    for index, (pattern, attack, _) in enumerate(CATASTROPHIC):
        unit = attack[:-1] if attack.endswith("!") else attack
        value = (unit * (value_chars // len(unit) + 1))[: value_chars - 1] + attack[-1]
        cases.append((f"{pattern} x {value_chars} chars", f"catastrophic-{index}", {"v0": value}))
    near_miss = "a" * (value_chars - 1) + "b"
    cases.append((f"{BIG} x {value_chars} chars", "big-program", {"v0": near_miss}))
    cases.append((f"{NESTED} x {value_chars} chars", "nested-program", {"v0": "é" * value_chars}))
    # Every value but the last matches, so every argument's pattern runs to the end.
    spread = {f"v{i}": "a" * per_arg for i in range(count - 1)}
    spread[f"v{count - 1}"] = "a" * (per_arg - 1) + "b"
    cases.append((f"{count} x {BIG} x {per_arg} chars", "big-programs", spread))
    cases.append((f"1,000 slots, {count} x {per_arg} chars", "many-slots",
                  {f"v{i}": "x" * per_arg for i in range(count)}))

    print(f"value limit {value_chars} chars, total limit {total_chars} chars; "
          f"best of {options.rounds} rounds (CPU time)")
    print(f"{'case':<48} {'work count':>14} {'where':>7} {'ms':>10}")
    for label, name, arguments in cases:
        command = library.commands[name]
        work = render_work(command, library.templates[name], arguments)
        best = float("inf")
        for _ in range(options.rounds):
            started = time.process_time()
            try:
                render(library, command, arguments)
            except Exception as exc:  # a no-match is an answer too
                if "does not match" not in str(exc):
                    raise
            best = min(best, time.process_time() - started)
        where = "loop" if work <= INLINE_WORK else "thread"
        print(f"{label[:48]:<48} {work:>14,} {where:>7} {best * 1000:>10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
