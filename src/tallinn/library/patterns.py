"""Regular expressions written in libraries, run by RE2: linear time, whatever the pattern.

Argument `pattern`s and prompt-test `regex`/`error` assertions come from library files, and
argument values come from clients. Python's `re` backtracks: `(a+)+$` against thirty `a`s and a
`!` takes minutes. RE2 (PyPI's `google-re2`) matches in time linear in the text for any
pattern it accepts, so the work of a match is bounded by the text's length times the size of
the compiled program, and the program's size is bounded by `MAX_PROGRAM_MEMORY`.

RE2 refuses what it cannot run in linear time (backreferences, lookaround, possessive and
atomic groups) and programs larger than its memory budget; `compile_pattern` turns either
into a `PatternError` carrying RE2's reason, which the loader and the prompt-test reader
report at the pattern's place.

>>> compile_pattern(r"[A-Z]+-[0-9]+").fullmatch("ABC-12")
True
>>> compile_pattern(r"(a)\\1")
Traceback (most recent call last):
PatternError: invalid escape sequence: \\1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

# RE2's budget for one compiled pattern: about two thirds go to the program, the rest to the
# matcher's cache. RE2's default is 8 MiB, enough for a program of ~350,000 instructions; a
# 256 KiB budget still takes `(.*a){1000}` (11,000 instructions) and any pattern a person
# writes to check an argument, and keeps the worst match of a long value to a fraction of a
# second (docs/security.md#patterns-from-libraries has the figures).
MAX_PROGRAM_MEMORY = 256 * 1024


@cache
def _options() -> Any:
    # Imported on the first pattern: RE2 costs 2.6 MB of memory, which a library without
    # patterns (and a server serving one) need not pay.
    import re2

    options = re2.Options()
    options.max_mem = MAX_PROGRAM_MEMORY
    options.log_errors = False  # RE2 would print each refusal on stderr; it is reported instead
    # The rest as RE2's defaults, written out so that a change of default cannot slip in:
    # UTF-8 text, Perl-like syntax, leftmost-first matching, `.` not matching a newline,
    # case-sensitive.
    options.encoding = re2.Options.Encoding.UTF8
    options.posix_syntax = False
    options.longest_match = False
    options.dot_nl = False
    options.never_nl = False
    options.case_sensitive = True
    options.literal = False
    options.never_capture = False
    return options


class PatternError(ValueError):
    """RE2 cannot compile a pattern: `PatternError("invalid perl operator: (?=")`."""


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled pattern. `program_size` (RE2 instructions) bounds the work per character."""

    source: str
    program_size: int
    _regexp: Any = field(repr=False, compare=False)

    def fullmatch(self, text: str) -> bool:
        """True when the whole of `text` matches."""
        return self._regexp.fullmatch(_utf8(text)) is not None

    def search(self, text: str) -> bool:
        """True when the pattern matches anywhere in `text`; `$` also matches before a final
        newline, as in Python's `re.search`, since rendered prompts end with one."""
        data = _utf8(text)
        if self._regexp.search(data) is not None:
            return True
        # RE2's `$` is the very end only. Searching once more without the final newline gives
        # Python's reading; a match there is a match of the whole text in every other respect.
        return data.endswith(b"\n") and self._regexp.search(data[:-1]) is not None


def _utf8(text: str) -> bytes:
    # RE2 matches bytes. A lone surrogate (JSON allows `"\ud800"`) has no UTF-8 form: kept as
    # its three bytes, it is text RE2 can scan but no character class of valid text matches.
    return text.encode("utf-8", "surrogatepass")


def compile_pattern(source: str) -> Pattern:
    """Given `[a-z]+`, return its RE2 `Pattern`; raise `PatternError` with RE2's reason."""
    import re2

    try:
        regexp = re2.compile(source.encode("utf-8", "surrogatepass"), _options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(str(reason)) from None
    return Pattern(source, int(regexp._regexp.ProgramSize()), regexp)
