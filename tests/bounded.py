"""Run a child process whose CPU time is capped, so a pattern that backtracks kills the child
(SIGKILL from the kernel at the hard limit) instead of hanging the suite."""

from __future__ import annotations

import resource
import subprocess
import sys
from collections.abc import Sequence

CPU_SECONDS = 20  # generous: every case here needs well under a second on a busy machine
# Patterns that take a backtracking engine exponential (or high polynomial) time on a short
# value that almost matches: (pattern, such a value, which matches nowhere, a value the whole
# of which matches).
CATASTROPHIC: tuple[tuple[str, str, str], ...] = (
    (r"(a+)+$", "a" * 32 + "!", "aaaa"),
    (r"(a|aa)*b", "a" * 40, "aab"),
    (r"(x+x+)+y", "x" * 40, "xxy"),
    (r"(a*)*b", "a" * 40, "aaab"),
    (r"(\w+\s?)+$", "word " * 8 + "!", "two words"),
    (r"^(([a-z])+.)+[A-Z]([a-z])+$", "a" * 28 + "!", "ab.Cd"),
    (r"(.*a){12}", "a" * 11 + "b" * 20, "a" * 12),
    (r"(a|a?)+b", "a" * 36, "ab"),
    (r"(\d+)*[a-z]", "1" * 36 + "!", "12x"),
    (r"([a-z0-9]+-?)+@", "a1" * 20 + "!", "ab-cd@"),
)


def limit_cpu(seconds: int = CPU_SECONDS) -> None:
    """A `preexec_fn`: cap the child's CPU time (soft limit SIGXCPU, hard limit SIGKILL)."""
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))


def run_bounded(
    args: Sequence[str], *, timeout: float = 120, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `args` with a CPU-time cap; the wall-clock `timeout` only guards a child that waits."""
    return subprocess.run(
        list(args), input=input, capture_output=True, text=True, timeout=timeout,
        preexec_fn=limit_cpu, check=False,
    )


def python_bounded(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run Python `code` (with `args` as `sys.argv[1:]`) in a child with a CPU-time cap."""
    return run_bounded([sys.executable, "-c", code, *args])


# `python -c BOUNDED_PREFIX + ...`: the same cap, set by the child itself (for children that
# other code starts, such as the SDK's stdio client).
BOUNDED_PREFIX = (
    "import resource\n"
    f"resource.setrlimit(resource.RLIMIT_CPU, ({CPU_SECONDS}, {CPU_SECONDS + 1}))\n"
)
