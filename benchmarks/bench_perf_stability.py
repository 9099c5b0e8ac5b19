"""Is the performance gate's verdict the library's? Run it again and again beside a CPU hog.

    uv run python benchmarks/bench_perf_stability.py [--runs 20] [--hogs 1] [--library PATH]

Starts `--hogs` processes that keep a core each at 100%, then runs the perf gate `--runs`
times in this process on each library (the bundled starter, the 2025 corpus when it is beside
the project, or `--library`) and prints every verdict with its timed figures, then the spread:
one verdict per library is the goal.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tallinn.gates import perf
from tallinn.gates.base import GateContext
from tallinn.library import load_library
from tallinn.settings import starter_path

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "tallinn-2025-07"
HOG = "while True: pass"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--hogs", type=int, default=1)
    parser.add_argument("--library", type=Path, action="append")
    args = parser.parse_args()
    libraries = args.library or [starter_path(), *([CORPUS] if CORPUS.is_dir() else [])]
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(args.hogs)]
    try:
        for root in libraries:
            library = load_library(root)
            verdicts, render, seconds = [], [], []
            for run in range(args.runs):
                started = time.perf_counter()
                result = perf.run(GateContext(root, library, {}, lambda _message: None))
                seconds.append(time.perf_counter() - started)
                verdicts.append(result.status.value)
                costliest = max(result.data["render_cost"].values(), key=lambda r: r["median"])
                render.append(costliest["median"])
                print(f"{root.name} run {run + 1:2}: {result.status.value:7} render cost "
                      f"{render[-1]:6.2f} ({costliest['low']:.2f}..{costliest['high']:.2f}, "
                      f"{costliest['rounds']} rounds)  {seconds[-1]:.2f} s", flush=True)
            print(f"{root.name}: {len(set(verdicts))} verdict(s) in {args.runs} runs "
                  f"({', '.join(sorted(set(verdicts)))}); render cost {min(render):.2f}.."
                  f"{max(render):.2f} (median {statistics.median(render):.2f}); gate time median "
                  f"{statistics.median(seconds):.2f} s, with {args.hogs} CPU hog(s)\n")
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


if __name__ == "__main__":
    main()
