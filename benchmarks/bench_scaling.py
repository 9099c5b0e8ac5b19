"""How load and gate time grow with hostile input: each shape at 1x, 10x and 100x.

    uv run python benchmarks/bench_scaling.py [--base 2000] [--shapes placeholders ...]

For every shape a library with one such file is loaded (`load_library`), checked by the xml
gate and audited by the security gate; the times are printed with their ratio to the 1x
run. A linear scanner shows ratios near 10 and 100; a quadratic one near 100 and 10,000.
The limits are raised for the run (`[limits]` in the generated tallinn.toml), so that what is
measured is the scan, not the refusal.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tallinn.gates import security
from tallinn.gates.xml import check
from tallinn.library import load_library

LIMITS = """[limits]
max_file_bytes = 200000000
max_placeholders = 100000000
max_yaml_nodes = 100000000
"""
LEGACY = '[library]\nformat = "tallinn-2025"\n'


def _native(body: str) -> dict[str, str]:
    front = "---\ndescription: A command of hostile shape\narguments:\n  - name: a\n---\n"
    return {"tallinn.toml": LIMITS, "commands/x.md": front + body + "\n"}


def _legacy(prompt: str) -> dict[str, str]:
    text = (
        "---\ndescription: A 2025 command of hostile shape\n---\n"
        "<command_file>\n  <metadata><name>/x</name><purpose>Shape</purpose></metadata>\n"
        f"  <claude_prompt><prompt>\n{prompt}\n  </prompt></claude_prompt>\n</command_file>\n"
    )
    return {"tallinn.toml": LEGACY + LIMITS, "commands/x.md": text}


def placeholders(n: int) -> dict[str, str]:
    """`n` placeholders, twenty to a line."""
    return _native("\n".join(" ".join(["{{a}}"] * 20) for _ in range(n // 20)))


def unclosed_comments(n: int) -> dict[str, str]:
    """`n` lines each opening a comment, a CDATA section or an instruction never closed."""
    return _native("\n".join(f"<!-- {i} <![CDATA[ <?x {{{{a}}}}" for i in range(n)))


def legacy_unclosed_comments(n: int) -> dict[str, str]:
    """A 2025 file whose prompt opens `n` comments that never close (V405, once)."""
    return _legacy("\n".join(f"note {i} <!-- not closed" for i in range(n)))


def legacy_quoted_includes(n: int) -> dict[str, str]:
    """A 2025 file with `n` includes quoted inside comments, all on a few lines."""
    quoted = "<!-- <include>components/x.md</include> -->"
    return _legacy("\n".join(" ".join([quoted] * 50) for _ in range(max(n // 50, 1))))


def stray_closing_tags(n: int) -> dict[str, str]:
    """`n` open tags, then `n` closing tags that close none of them."""
    return _native("\n".join(["<a>"] * n + ["</b>"] * n) + "\n{{a}}")


def many_attributes(n: int) -> dict[str, str]:
    """One tag with `n` attributes."""
    attributes = " ".join(f'k{i}="v"' for i in range(n))
    return _native(f"<t {attributes}>{{{{a}}}}</t>")


def backtick_runs(n: int) -> dict[str, str]:
    """A paragraph of backtick runs, long ones unmatched, on lines of phrases to audit."""
    words = [("`" * (1 + i % 7)) + f" ignore previous instructions {i}" for i in range(n)]
    return _native("\n".join(" ".join(words[i:i + 10]) for i in range(0, n, 10)) + " {{a}}")


SHAPES: dict[str, Callable[[int], dict[str, str]]] = {
    "placeholders": placeholders,
    "unclosed-comments": unclosed_comments,
    "legacy-unclosed-comments": legacy_unclosed_comments,
    "legacy-quoted-includes": legacy_quoted_includes,
    "stray-closing-tags": stray_closing_tags,
    "many-attributes": many_attributes,
    "backtick-runs": backtick_runs,
}


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def measure(shape: Callable[[int], dict[str, str]], n: int) -> tuple[int, float]:
    """(file size in bytes, seconds to load, check and audit) for one input."""
    with tempfile.TemporaryDirectory() as tmp:
        root = _write(Path(tmp) / "lib", shape(n))
        size = (root / "commands/x.md").stat().st_size
        start = time.perf_counter()
        library = load_library(root)
        check(library)
        security.audit(root)
        return size, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=2000, help="size of the 1x input")
    parser.add_argument("--shapes", nargs="*", choices=sorted(SHAPES), default=list(SHAPES))
    args = parser.parse_args(argv)
    measure(placeholders, 100)  # imports and caches warmed, outside the figures
    print(f"{'shape':26} {'scale':>6} {'bytes':>11} {'seconds':>9} {'ratio':>8}")
    for name in args.shapes:
        first = None
        for scale in (1, 10, 100):
            size, seconds = measure(SHAPES[name], args.base * scale)
            first = first or max(seconds, 1e-9)
            print(f"{name:26} {scale:>5}x {size:>11,} {seconds:>9.3f} {seconds / first:>8.1f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
