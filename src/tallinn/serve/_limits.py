"""Bounded work per request: argument size limits, and large renders off the event loop.

Argument patterns run on RE2 (`tallinn.library.patterns`), so checking a value costs at most
its length times the size of the pattern's program, and filling a template costs its size plus
each slot's value. Both are bounded once the arguments' size is: `check_sizes` refuses a value
longer than `max_argument_chars`, or arguments longer than `max_arguments_chars` together, as
a client error before anything runs.

What is left can still be a few hundred milliseconds (a 16,000-character value against the
largest program RE2 accepts), far too long for the event loop that answers every other client.
`render_work` counts a request's work in those units (characters x instructions, plus the
characters the template copies) before it runs; `RenderPool` runs a render on the loop when the
count is small, as almost every render is, and otherwise on a worker thread, at most
`render_threads` at once. RE2 releases the GIL while it matches, so the loop keeps answering.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import anyio
import anyio.to_thread

from tallinn.library import Command, Template
from tallinn.library.compose import ALL_ARGUMENTS
from tallinn.serve._config import ServeConfig

T = TypeVar("T")

# A render whose work count is at most this runs on the event loop: RE2's slowest matching,
# about 2.5 ns per character and instruction (benchmarks/bench_patterns.py), makes it 0.25 ms.
INLINE_WORK = 100_000
_SHOWN_NAME = 80


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The size limits of one request's arguments, from `ServeConfig`."""

    max_argument_chars: int
    max_arguments_chars: int

    @classmethod
    def of(cls, config: ServeConfig) -> RequestLimits:
        return cls(config.max_argument_chars, config.max_arguments_chars)


def value_chars(value: object) -> int:
    """The characters a value takes as text: `"abc"` 3, `True` 4, `12.5` 4.

    Values that are not scalars count as none: the renderer refuses them by type. An integer
    too long for Python to print counts as longer than any limit.
    """
    if isinstance(value, str):
        return len(value)
    if isinstance(value, bool):
        return 5 if not value else 4
    if isinstance(value, int | float):
        try:
            return len(str(value))
        except ValueError:  # over Python's limit on integer digits
            return sys.maxsize
    return 0


def check_sizes(arguments: Mapping[str, object], limits: RequestLimits) -> str | None:
    """Given `{"path": "src/app.py"}`, return why the arguments are too large, or None."""
    total = 0
    for name, value in arguments.items():
        size = value_chars(value)
        if size > limits.max_argument_chars:
            shown = name if len(name) <= _SHOWN_NAME else name[: _SHOWN_NAME - 3] + "..."
            return (f"argument '{shown}' is {_count(size)} characters long; the limit is "
                    f"{limits.max_argument_chars}")
        total += len(name) + size
    if total > limits.max_arguments_chars:
        return (f"the arguments are {total} characters long together; the limit is "
                f"{limits.max_arguments_chars}")
    return None


def _count(size: int) -> str:
    return "more than 4300" if size == sys.maxsize else str(size)


def render_work(command: Command, template: Template, arguments: Mapping[str, object]) -> int:
    """Count the work of rendering `command` with `arguments`: characters checked times the
    instructions of their pattern, plus the characters the template copies into its slots."""
    sizes: dict[str, int] = {}
    work = 0
    for argument in command.arguments:
        value = arguments.get(argument.name)
        if value is None:
            continue
        size = value_chars(value)
        sizes[argument.name] = size
        pattern = argument.compiled_pattern
        work += size * (1 + (pattern.program_size if pattern is not None else 0))
    every = sum(sizes.values())
    for slot in template.slots:
        work += every if slot == ALL_ARGUMENTS else sizes.get(slot, 0)
    return work


class RenderPool:
    """Runs small renders in place and large ones on at most `threads` worker threads.

    `offloaded` counts the renders sent to a thread.
    """

    def __init__(self, threads: int, inline_work: int = INLINE_WORK) -> None:
        self.threads = threads
        self.inline_work = inline_work
        self.offloaded = 0
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, work: int, function: Callable[..., T], *args: object) -> T:
        if work <= self.inline_work:
            return function(*args)
        if self._limiter is None:  # made on first use, inside the event loop
            self._limiter = anyio.CapacityLimiter(self.threads)
        self.offloaded += 1
        return await anyio.to_thread.run_sync(function, *args, limiter=self._limiter)
