"""`tallinn validate` of a 10,000-command synthetic library (11,000 files), first run: no
front-matter cache, in a fresh process, beside an earlier version of Tallinn in the same run.

    uv run python benchmarks/bench_validate.py [--commands 10000] [--repeat 5]
                                               [--against REV] [--bytecode] [--code]
                                               [--one-process]

Each round runs every version once, one after the other, so a change in the machine's load
falls on all of them alike; the medians of the wall time and of the CPU time (user + system,
which others' work on the machine changes less) are printed. The library is
`benchmarks/synth.py`'s; `--code` adds the shell and Python blocks of `bench_gates.py` to every
command (fenced code, which the XML check reads with markdown-it). `--against REV` and
`--bytecode` are as in `bench_gates.py`. This tree shares a large load out among one process
per CPU (`TALLINN_WORKERS`); `--one-process` also runs it with `TALLINN_WORKERS=1`. The load
average printed is the machine's at the end: others' work slows the shared-out run most.
Target on the 2-core machine: 3 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gates import _children_cpu, install_revision, remove_revision, write_library
from synth import generate


def first_run(python: Path, library: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one `tallinn validate` with no front-matter cache yet."""
    shutil.rmtree(library / ".tallinn", ignore_errors=True)
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run([str(python), "-m", "tallinn", "validate", "--library", str(library)],
                          capture_output=True, text=True, check=False, env=env)
    seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if done.returncode != 0:
        sys.exit(f"{python}: tallinn validate failed:\n{done.stderr[-2000:]}")
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--against", metavar="REV", help="an earlier commit or tag to compare")
    parser.add_argument("--bytecode", action="store_true",
                        help="keep compiled bytecode in a scratch folder, as an installed "
                        "tool has it, even where PYTHONDONTWRITEBYTECODE is set")
    parser.add_argument("--code", action="store_true",
                        help="a shell and a Python block in every command")
    parser.add_argument("--one-process", action="store_true",
                        help="also run this tree with TALLINN_WORKERS=1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tallinn-bench-validate-") as tmp:
        scratch = Path(tmp)
        make = write_library if args.code else generate
        library = make(scratch / "lib", args.commands)
        versions = [("this tree", Path(sys.executable))]
        if args.one_process:
            versions.append(("1 process", Path(sys.executable)))
        if args.against:
            versions.append((args.against, install_revision(args.against, scratch / "rev")))
        try:
            envs = {}
            for name, python in versions:
                env = dict(os.environ)
                if args.bytecode:
                    env.pop("PYTHONDONTWRITEBYTECODE", None)
                    own = python == Path(sys.executable)  # "1 process" shares its bytecode
                    env["PYTHONPYCACHEPREFIX"] = str(scratch / ("pyc-tree" if own else "pyc-rev"))
                if name == "1 process":
                    env["TALLINN_WORKERS"] = "1"
                envs[name] = env
                first_run(python, library, env)  # warms the page cache; compiles bytecode
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in versions}
            for _ in range(args.repeat):
                for name, python in versions:
                    runs[name].append(first_run(python, library, envs[name]))
            files = sum(1 for _ in library.rglob("*.md"))
            print(f"tallinn validate, {files:,} files, first run, median of {args.repeat}"
                  f"{', bytecode kept' if args.bytecode else ''}; load average "
                  f"{os.getloadavg()[0]:.1f}")
            for name, timings in runs.items():
                wall = statistics.median(t[0] for t in timings)
                cpu = statistics.median(t[1] for t in timings)
                print(f"  {name:12} {wall:6.2f} s wall  {cpu:6.2f} s cpu  "
                      f"(wall {min(t[0] for t in timings):.2f}-{max(t[0] for t in timings):.2f})")
        finally:
            if args.against:
                remove_revision(scratch / "rev")


if __name__ == "__main__":
    main()
