"""The quality gates, whole and in parts, on 250, 1,000 and 10,000 files, beside an earlier
version of Tallinn in the same run.

    uv run python benchmarks/bench_gates.py [--sizes 1000 10000] [--repeat 3]
                                            [--against REV] [--parts] [--bytecode]

Whole runs: `tallinn gates --format json` in a fresh process on the 2025 corpus (250 files,
when it is beside the project: ../shared/corpora/tallinn-2025-07) and on synthetic libraries
(benchmarks/synth.py, with code blocks and shell lines added, and one prompt test per command):
the wall time, each gate's own time and the peak RSS, median of `--repeat` runs. `--against
REV` checks REV out into a scratch worktree, installs it with uv from the lock file, and runs
the same libraries through it, so the figures stand side by side. Beside the wall time each run
shows its CPU time (user + system): on a machine others are using, wall time grows with their
load, CPU time much less. `--bytecode` lets each version keep its compiled bytecode in a scratch
folder (one run first compiles it), as an installed tool has it: where PYTHONDONTWRITEBYTECODE
is set, every run otherwise compiles every module it imports. `--parts` adds in-process
timings of the security audit, the XML check and the prompt-test runner.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from synth import generate  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpora" / "tallinn-2025-07"
EXTRA = (
    "\n```bash\nrm -rf \"${OUT:?}\"/build && curl -fsSLo x.sh https://e.com/x.sh\n```\n"
    "```python\nimport json\nprint(json.loads(data))\n```\nState: !`git status`\n"
)
CASES_PER_FILE = 100
# Runs the CLI in this interpreter and prints the peak RSS (KB) on stderr as it exits: the
# process's own high-water mark (VmHWM), where getrusage's keeps that of the parent it was
# forked from (a large benchmark process), which exec does not reset.
RUNNER = (
    "import resource, runpy, sys\n"
    "sys.argv = ['tallinn', *sys.argv[1:]]\n"
    "try:\n    runpy.run_module('tallinn', run_name='__main__')\n"
    "finally:\n"
    "    try:\n"
    "        with open('/proc/self/status') as status:\n"
    "            peak = next(int(line.split()[1]) for line in status"
    " if line.startswith('VmHWM:'))\n"
    "    except (OSError, StopIteration):\n"
    "        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    print('peak-rss-kb', peak, file=sys.stderr)\n"
)


def write_library(root: Path, commands: int) -> Path:
    """A synthetic library with shell and Python in every command, and a test for each."""
    generate(root, commands)
    cases = []
    for path in sorted((root / "commands").rglob("*.md")):
        path.write_text(path.read_text(encoding="utf-8") + EXTRA, encoding="utf-8")
        name = path.stem
        cases.append(
            f"  - command: {name}\n    description: {name} names its target\n"
            f"    vars: {{target: src/{name}.py}}\n"
            f"    assert: [{{type: contains, value: src/{name}.py}}, "
            f"{{type: regex, value: 'at (quick|normal|deep) depth'}}, "
            f"{{type: max-tokens, value: 2000}}]\n")
    (root / "tests").mkdir(exist_ok=True)
    # A file per CASES_PER_FILE cases keeps each within the default [limits] (YAML nodes).
    for first in range(0, len(cases), CASES_PER_FILE):
        (root / "tests" / f"bench-{first // CASES_PER_FILE:03d}.yaml").write_text(
            "tests:\n" + "".join(cases[first:first + CASES_PER_FILE]), encoding="utf-8")
    return root


@dataclass
class Run:
    seconds: float
    cpu: float  # user + system seconds of the run's process: what a busy machine changes least
    gates: dict[str, float]
    rss_mb: float
    verdict: str


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def whole_run(python: Path, library: Path, env: dict[str, str] | None = None) -> Run:
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(
        [str(python), "-c", RUNNER, "gates", "--library", str(library), "--format", "json"],
        capture_output=True, text=True, check=False, cwd=library, env=env,
    )
    seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    try:
        report = json.loads(done.stdout)
    except ValueError:
        sys.exit(f"{python}: tallinn gates did not print a report:\n{done.stderr[-2000:]}")
    rss = next(int(line.split()[1]) for line in done.stderr.splitlines()
               if line.startswith("peak-rss-kb"))
    gates = {g["name"]: g["duration_s"] for g in report["gates"]}
    return Run(seconds, cpu, gates, rss / 1024, report["status"])


def median_run(python: Path, library: Path, repeat: int,
               env: dict[str, str] | None = None) -> Run:
    if env is not None:
        whole_run(python, library, env)  # compiles the bytecode the timed runs then read
    runs = [whole_run(python, library, env) for _ in range(repeat)]
    return Run(
        statistics.median(r.seconds for r in runs),
        statistics.median(r.cpu for r in runs),
        {g: statistics.median(r.gates[g] for r in runs) for g in runs[0].gates},
        statistics.median(r.rss_mb for r in runs),
        "/".join(sorted({r.verdict for r in runs})),
    )


def install_revision(rev: str, folder: Path) -> Path:
    """Check `rev` out into `folder` and install it; return its Python."""
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(folder), rev],
                   cwd=ROOT, check=True)
    subprocess.run(["uv", "sync", "--locked", "--all-extras", "--quiet"], cwd=folder, check=True)
    return folder / ".venv" / "bin" / "python"


def remove_revision(folder: Path) -> None:
    """Remove what `install_revision` checked out into `folder`."""
    subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, check=False)
    shutil.rmtree(folder, ignore_errors=True)


def timed(work: Callable[[], object], repeat: int) -> float:
    """The median of `repeat` runs of `work`, in seconds (after one warm-up)."""
    work()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def parts(libraries: Sequence[tuple[str, Path]], repeat: int) -> None:
    from tallinn.gates import security, xml
    from tallinn.library import load_library
    from tallinn.library.prompttests import run_tests

    print("\nparts, in this process (median seconds)")
    for label, root in libraries:
        library = load_library(root)
        audit = timed(lambda root=root: security.audit(root), repeat)  # type: ignore[misc]
        check = timed(lambda library=library: xml.check(library), repeat)  # type: ignore[misc]
        cases = timed(lambda library=library: run_tests(library), repeat)  # type: ignore[misc]
        print(f"  {label:24} audit {audit:7.3f}   xml {check:7.3f}   tests {cases:7.3f}")


# The targets for a whole run, by library: the corpus, then synthetic sizes.
TARGETS = {"2025 corpus (250 files)": 1.5, "1,000 commands": 3.0, "10,000 commands": 20.0}


def libraries_for(scratch: Path, sizes: Sequence[int]) -> list[tuple[str, Path]]:
    """The 2025 corpus when it is beside the project, then a synthetic library per size."""
    libraries = [("2025 corpus (250 files)", CORPUS)] if CORPUS.is_dir() else []
    for size in sizes:
        libraries.append((f"{size:,} commands", write_library(scratch / f"lib{size}", size)))
    return libraries


def whole_runs(libraries: Sequence[tuple[str, Path]], versions: Sequence[tuple[str, Path]],
               repeat: int, scratch: Path, *, bytecode: bool) -> dict[str, dict[str, Run]]:
    """Every library through every version, printed a line each with the target beside it;
    returns the runs by library and version."""
    print(f"whole runs of `tallinn gates`, median of {repeat}"
          + (", bytecode kept" if bytecode else ""))
    found: dict[str, dict[str, Run]] = {}
    for label, library in libraries:
        for name, python in versions:
            env = None
            if bytecode:
                env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
                env["PYTHONPYCACHEPREFIX"] = str(scratch / f"pyc-{name}")
            run = found.setdefault(label, {})[name] = median_run(python, library, repeat, env)
            per_gate = "  ".join(f"{g} {s:.2f}" for g, s in run.gates.items())
            target = TARGETS.get(label)
            met = "" if target is None else (
                f"  target {target:g} s: {'met' if run.seconds <= target else 'MISSED'}")
            print(f"  {label:24} {name:12} {run.seconds:7.2f} s  {run.cpu:7.2f} s cpu"
                  f"  {run.rss_mb:6.0f} MB  {run.verdict:6}  {per_gate}{met}", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--against", metavar="REV", help="an earlier commit or tag to compare")
    parser.add_argument("--parts", action="store_true")
    parser.add_argument("--bytecode", action="store_true",
                        help="run with compiled bytecode kept in a scratch folder (as an "
                        "installed tool has it), even where PYTHONDONTWRITEBYTECODE is set")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tallinn-bench-gates-") as tmp:
        scratch = Path(tmp)
        libraries = libraries_for(scratch, args.sizes)
        versions = [("this tree", Path(sys.executable))]
        if args.against:
            versions.append((args.against, install_revision(args.against, scratch / "rev")))
        try:
            whole_runs(libraries, versions, args.repeat, scratch, bytecode=args.bytecode)
            if args.parts:
                parts(libraries, args.repeat)
        finally:
            if args.against:
                remove_revision(scratch / "rev")


if __name__ == "__main__":
    main()
