"""How long the security audit, the XML check and the prompt-test runner take on libraries
that the test suite checks only for their results.

    uv run python benchmarks/bench_gates.py [--commands 1000] [--repeat 5]

Prints the median and the best of `--repeat` runs of each, for 1,000 synthetic commands
(about 2.5 MB with code blocks and shell lines), and for the 2025 corpus when it is beside
the project (../shared/corpora/tallinn-2025-07).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from synth import generate
from tallinn.gates import security, xml
from tallinn.library import load_library
from tallinn.library.prompttests import run_tests

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "tallinn-2025-07"
EXTRA = (
    "\n```bash\nrm -rf \"${OUT:?}\"/build && curl -fsSLo x.sh https://e.com/x.sh\n```\n"
    "```python\nimport json\nprint(json.loads(data))\n```\nState: !`git status`\n"
)


def timed(work: Callable[[], object], repeat: int) -> tuple[float, float]:
    """The median and the best of `repeat` runs of `work`, in seconds (after one warm-up)."""
    work()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), min(runs)


def write_tests(root: Path) -> None:
    """One prompt test per command, with three assertions, in `root/tests/`."""
    cases = []
    for path in sorted((root / "commands").rglob("*.md")):
        name = path.stem
        cases.append(
            f"  - command: {name}\n    description: {name} names its target\n"
            f"    vars: {{target: src/{name}.py}}\n"
            f"    assert: [{{type: contains, value: src/{name}.py}}, "
            f"{{type: regex, value: 'at (quick|normal|deep) depth'}}, "
            f"{{type: max-tokens, value: 2000}}]\n")
    (root / "tests").mkdir(exist_ok=True)
    (root / "tests" / "bench.yaml").write_text("tests:\n" + "".join(cases), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = generate(Path(tmp) / "lib", args.commands)
        for path in sorted((root / "commands").rglob("*.md")):
            path.write_text(path.read_text(encoding="utf-8") + EXTRA, encoding="utf-8")
        write_tests(root)
        library = load_library(root)
        outcome = run_tests(library)
        assert outcome.passed == args.commands, outcome  # time passing cases, not failures
        n = args.commands
        rows.append((f"audit, {n} commands", *timed(lambda: security.audit(root), args.repeat)))
        rows.append((f"xml check, {n} commands", *timed(lambda: xml.check(library), args.repeat)))
        rows.append((f"prompt tests, {n} commands",
                     *timed(lambda: run_tests(library), args.repeat)))
    if CORPUS.is_dir():
        corpus = load_library(CORPUS)
        rows.append(("audit, 2025 corpus", *timed(lambda: security.audit(CORPUS), args.repeat)))
        rows.append(("xml check, 2025 corpus",
                     *timed(lambda: xml.check(corpus), args.repeat)))
    width = max(len(name) for name, _, _ in rows)
    print(f"{'':{width}}  {'median':>9}  {'best':>9}")
    for name, median, best in rows:
        print(f"{name:{width}}  {median:8.3f}s  {best:8.3f}s")


if __name__ == "__main__":
    main()
