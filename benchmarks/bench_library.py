"""Load, compose and render figures for synthetic libraries of 1,000 and 10,000 commands.

    uv run python benchmarks/bench_library.py [--sizes 1000 10000] [--repeat 5]

Targets on a 2-core machine: load + compose of 1,000 commands <= 0.5 s; median render <= 50 µs.
"with cache" is a load that finds every file's front matter in the front-matter cache
(`tallinn.library.cache`), as `tallinn serve` and the CLI do after a library's first load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from synth import generate
from tallinn.library import load_library, render
from tallinn.library.compose import Composer


def bench(size: int, repeat: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = generate(Path(tmp) / "lib", size)
        load_library(root)  # warm the page cache and imports
        loads = []
        for _ in range(repeat):
            start = time.perf_counter()
            library = load_library(root)
            loads.append(time.perf_counter() - start)
        assert library.ok, library.errors[:3]
        assert len(library.commands) == size
        cache = Path(tmp) / "cache"
        load_library(root, cache_dir=cache)  # writes the front-matter cache
        cached = []
        for _ in range(repeat):
            start = time.perf_counter()
            load_library(root, cache_dir=cache)
            cached.append(time.perf_counter() - start)
        composes = []
        for _ in range(repeat):
            start = time.perf_counter()
            composer = Composer(library.components, {})
            for command in library.commands.values():
                composer.compose(command)
            composes.append(time.perf_counter() - start)
        timings = []
        args = {"target": "src/parser.py", "depth": "deep"}
        commands = list(library.commands.values())
        for _ in range(max(1, 20_000 // size)):
            for command in commands:
                start = time.perf_counter_ns()
                render(library, command, args)
                timings.append(time.perf_counter_ns() - start)
        timings.sort()
        return {
            "load_compose_s": statistics.median(loads),
            "cached_load_compose_s": statistics.median(cached),
            "compose_s": statistics.median(composes),
            "render_median_us": timings[len(timings) // 2] / 1000,
            "render_p95_us": timings[int(len(timings) * 0.95)] / 1000,
            "renders": len(timings),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'commands':>9} {'load+compose s':>15} {'with cache s':>13} {'compose only s':>15} "
          f"{'render median µs':>17} {'render p95 µs':>14}")
    for size in args.sizes:
        r = bench(size, args.repeat)
        print(f"{size:>9} {r['load_compose_s']:>15.3f} {r['cached_load_compose_s']:>13.3f} "
              f"{r['compose_s']:>15.3f} "
              f"{r['render_median_us']:>17.1f} {r['render_p95_us']:>14.1f}")


if __name__ == "__main__":
    main()
