"""Read and parse a large library's files in several processes, on the cores it may use.

Parsing front matter is most of a load, and each file is parsed on its own, so a load of
`PARALLEL_FILES` files or more, asked for `workers` > 1, shares the files out: this process
parses the first share itself while `workers - 1` forked processes parse the rest, in
chunks, running the very code a serial load runs, file by file. What comes back from them
is plain data (tuples, strings, numbers: cheap to pickle), never the records themselves;
this process builds the records from it without checking them again, in the order of the
files, so a load gives the same library, findings and front-matter cache either way.
`fork_map` does the sharing out, for the XML check of `tallinn validate` as well.

Workers are forked, so they start at once with the library's state in memory; a process
that runs other threads (a server) is not forked, since a fork copies only the thread that
calls it: such a process, a platform without `fork`, or a worker that fails to start or
dies, loads in one process, as before.

>>> parse_files(tasks, parse_one, cache, workers=2)  # [(folder, rel), ...] -> in order
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from sys import intern
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tallinn.library.diagnostics import Diagnostic, Severity
from tallinn.library.model import ArgType, Argument, Command, Component, Example

if TYPE_CHECKING:
    from tallinn.library.cache import FrontMatterCache

PARALLEL_FILES = 2_000  # a smaller library parses in less time than forking workers takes
MAX_WORKERS = 8
CHUNKS_PER_WORKER = 4  # so this process builds a chunk's records while workers parse the next

Task = tuple[str, str]  # (folder, library path)
T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")


class Parsed(Protocol):
    """One file as read and parsed: what the loader keeps of it (its `_FileResult`)."""

    @property
    def rel(self) -> str: ...
    @property
    def identity(self) -> Hashable | None: ...
    @property
    def digest(self) -> bytes | None: ...
    @property
    def document(self) -> Component | Command | None: ...
    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]: ...
    @property
    def parsed(self) -> bool: ...


# The fields of a `Parsed`, in its order: what `parse_files` gives back.
Fields = tuple[str, Hashable | None, bytes | None, Component | Command | None,
               tuple[Diagnostic, ...], bool]


def available_cpus() -> int:
    """How many CPUs this process may run on (its affinity, where the platform says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def default_workers() -> int:
    """The processes of a load when nothing says otherwise (this one included): one per CPU,
    at most `MAX_WORKERS`."""
    return max(1, min(available_cpus(), MAX_WORKERS))


def can_fork() -> bool:
    """Whether worker processes may be forked here: the platform has `fork`, and no other
    thread runs (a fork copies only the calling thread; a lock another holds stays held)."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def worth_it(files: int, workers: int) -> bool:
    """Whether a load of `files` files with `workers` processes asked for is shared out."""
    return workers > 1 and files >= PARALLEL_FILES and can_fork()


# What the workers of `fork_map` run, and on what: set before they are forked, so each
# inherits it (never pickled); a task names only a slice of the items.
_WORK: tuple[Callable[[Sequence[Any]], Any], Sequence[Any]] | None = None


def fork_map(
    work: Callable[[Sequence[T]], R], items: Sequence[T], workers: int,
    then: Callable[[R], S], here: Callable[[Sequence[T]], S],
) -> list[S] | None:
    """`items` shared among `workers` processes, in order: this one runs `here` on the first
    share, while `workers - 1` forked ones run `work` on chunks of the rest (they inherit
    `work` and `items`: only what `work` returns is pickled), and this one then runs `then`
    on each chunk's result. None when the workers could not do it (one could not start, or
    died): the caller does it all itself then.

    >>> fork_map(count, texts, workers=2, then=list, here=count)  # [here(first), then(...)]
    """
    global _WORK
    share = -(-len(items) // workers)
    forked = max(1, min(workers - 1, len(items) - share))
    size = max(1, -(-(len(items) - share) // (forked * CHUNKS_PER_WORKER)))
    slices = [(start, min(start + size, len(items)))
              for start in range(share, len(items), size)]
    _WORK = (work, items)
    try:
        with ProcessPoolExecutor(max_workers=forked,
                                 mp_context=multiprocessing.get_context("fork")) as pool:
            done = pool.map(_run_slice, slices)
            mine = here(items[:share])  # while the workers do the rest
            return [mine, *map(then, done)]
    except (BrokenProcessPool, OSError):
        return None
    finally:
        _WORK = None


def fork_call(function: Callable[[], R]) -> Callable[[], R | None]:
    """Start `function()` in a forked process and return how to wait for what it returns
    (None when it could not run, or failed), while this process goes on.

    >>> wait = fork_call(cache.save); compose(); written = wait()
    """
    global _WORK
    _WORK = (lambda _: function(), (None,))
    pool = None
    try:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
        future = pool.submit(_run_slice, (0, 1))  # forks the worker, which inherits `_WORK`
    except OSError:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        return lambda: None
    finally:
        _WORK = None

    def wait() -> R | None:
        try:
            result: R | None = future.result()
        except Exception:  # whatever failed there, the caller does it here
            result = None
        finally:
            pool.shutdown(wait=True)
        return result

    return wait


def _run_slice(bounds: tuple[int, int]) -> Any:
    """In a worker: the work on `items[start:end]`."""
    assert _WORK is not None, "a worker is forked with its work"
    work, items = _WORK
    return work(items[bounds[0]:bounds[1]])


def parse_files(
    tasks: Sequence[Task], parse: Callable[[str, str], Parsed],
    cache: FrontMatterCache | None, workers: int,
) -> list[Fields] | None:
    """The fields of `[parse(folder, rel) for folder, rel in tasks]`, run by `workers`
    forked processes; what they recorded in `cache` is recorded in it, in the order of
    `tasks`. None when the workers could not do it: parse in this process then.
    """

    def parse_chunk(chunk: Sequence[Task]) -> tuple[list[tuple[Any, ...]], _Used]:
        encoded = [_encode(parse(folder, rel)) for folder, rel in chunk]
        return encoded, cache.take_used() if cache is not None else ([], 0, 0)

    # Arguments declared alike by many commands (`path`, `focus`) are built once and shared:
    # records are frozen, so sharing them is safe, and saves both the time and the memory.
    arguments: dict[tuple[Any, ...], Argument] = {}

    def decode(done: tuple[list[tuple[Any, ...]], _Used]) -> tuple[list[Fields], _Used]:
        return [_decode(encoded, arguments) for encoded in done[0]], done[1]

    def parse_here(chunk: Sequence[Task]) -> tuple[list[Fields], _Used]:
        # This process's share: recorded in the cache as it goes, nothing to encode.
        return [_fields(parse(folder, rel)) for folder, rel in chunk], ([], 0, 0)

    chunks = fork_map(parse_chunk, tasks, workers, decode, parse_here)
    if chunks is None:
        return None
    results: list[Fields] = []
    for fields, used in chunks:
        results.extend(fields)
        if cache is not None:
            cache.absorb(*used)
    return results


_Used = tuple[list[tuple[str, Any]], int, int]


def _fields(result: Parsed) -> Fields:
    return (result.rel, result.identity, result.digest, result.document, result.diagnostics,
            result.parsed)


# A record as plain data. Diagnostics of a load carry no fix (the gates add those); one that
# does is sent as it is.
def _encode(result: Parsed) -> tuple[Any, ...]:
    document = result.document
    if isinstance(document, Command):
        shape: tuple[Any, ...] | None = (
            "command", document.name, document.path, document.description,
            tuple(map(_argument, document.arguments)), document.body_line, document.source,
            document.body_start, document.category, document.argument_hint,
            document.allowed_tools, document.model, document.tags, document.critical,
            tuple((e.description, dict(e.args)) for e in document.examples),
        )
    elif isinstance(document, Component):
        shape = ("component", document.name, document.path, document.description,
                 tuple(map(_argument, document.arguments)), document.body_line,
                 document.source, document.body_start)
    else:
        shape = None
    diagnostics = tuple(
        d if d.fix is not None else (d.code, d.message, d.path, d.line, d.col, d.severity.value)
        for d in result.diagnostics
    )
    return (result.rel, result.identity, result.digest, shape, diagnostics, result.parsed)


def _argument(argument: Argument) -> tuple[Any, ...]:
    return (argument.name, argument.description, argument.type.value, argument.required,
            argument.default, argument.enum, argument.pattern)


_TYPES = {member.value: member for member in ArgType}
_SEVERITIES = {member.value: member for member in Severity}


def _decode(encoded: tuple[Any, ...], known: dict[tuple[Any, ...], Argument]) -> Fields:
    rel, identity, digest, shape, diagnostics, parsed = encoded
    document: Component | Command | None = None
    if shape is not None:
        arguments = tuple(known.get(a) or known.setdefault(a, _decode_argument(a))
                          for a in shape[4])
        if shape[0] == "command":
            document = Command(
                name=shape[1], path=shape[2], description=shape[3], arguments=arguments,
                body_line=shape[5], source=shape[6], body_start=shape[7],
                category=intern(shape[8]), argument_hint=shape[9], allowed_tools=shape[10],
                model=shape[11], tags=tuple(map(intern, shape[12])), critical=shape[13],
                examples=tuple(Example(description, args) for description, args in shape[14]),
            )
        else:
            document = Component(
                name=shape[1], path=shape[2], description=shape[3], arguments=arguments,
                body_line=shape[5], source=shape[6], body_start=shape[7],
            )
    return rel, identity, digest, document, tuple(
        d if isinstance(d, Diagnostic)
        else Diagnostic(d[0], d[1], d[2], d[3], d[4], _SEVERITIES[d[5]])
        for d in diagnostics
    ), parsed


def _decode_argument(shape: tuple[Any, ...]) -> Argument:
    name, description, kind, required, default, enum, pattern = shape
    compiled = None
    if pattern is not None:
        from tallinn.library.patterns import compile_pattern

        compiled = compile_pattern(pattern)  # it compiled in the worker: it compiles here
    # Interned as the loader interns them: each name and value held once in the library.
    return Argument(name=intern(name), description=description, type=_TYPES[kind],
                    required=required, default=default, enum=tuple(map(intern, enum)),
                    pattern=pattern, compiled_pattern=compiled)
