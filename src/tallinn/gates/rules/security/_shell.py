"""A small shell reader for the shell rules: words, simple commands and pipelines.

It splits a script the way a POSIX shell does where that decides what runs: quotes make one
word (`echo "rm -rf /"` runs `echo`, not `rm`), `#` starts a comment only at the start of a
word, `|`, `&&`, `;` and newlines separate commands, redirections and here-documents are
skipped. Command substitutions (`$(...)`, backticks, `<(...)`) outside single quotes, and the
script given to `sh -c`, are read as scripts of their own. It never raises: an unclosed quote
runs to the end of the script. It is not a shell parser (no expansion, no control flow).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_OPERATORS = ("&&", "||", ";;", "|&", "|", "&", ";", "(", ")")
_REDIRECTS = ("<<<", "<<-", "&>>", "<<", ">>", ">&", "<&", "&>", ">|", "<>", "<", ">")
_SEPARATORS = frozenset({"\n", "&&", "||", ";;", "&", ";", "(", ")"})
_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "}",
                       "fi", "done", "esac", "time"})
_NOT_COMMANDS = frozenset({"for", "case", "select", "function", "in"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "fish"})


@dataclass(frozen=True, slots=True)
class Word:
    """A shell word with quotes removed; `start` is its offset in the script."""

    text: str
    start: int
    quoted: bool = False


@dataclass(frozen=True, slots=True)
class Command:
    """A simple command: `name` and `args` after assignments and wrappers such as `sudo`.

    `words` are all its words as written, `assignments` the `NAME=value` words before it
    (and those given to `env`), `offset` the script offset of its first word.
    """

    words: tuple[Word, ...]
    assignments: tuple[Word, ...]
    name: str
    args: tuple[Word, ...]
    offset: int

    @property
    def text(self) -> str:
        """The command as one line: its words joined by spaces."""
        return " ".join(w.text for w in self.words)


Pipeline = tuple[Command, ...]


@dataclass(frozen=True, slots=True)
class Script:
    """The pipelines of a script and of every script nested in it, with script offsets."""

    pipelines: tuple[Pipeline, ...]

    def commands(self) -> Iterator[Command]:
        for pipeline in self.pipelines:
            yield from pipeline


def parse(script: str) -> Script:
    """Read `script` into pipelines of simple commands, nested scripts included.

    >>> [c.name for c in parse("curl -s https://x | sudo bash").commands()]
    ['curl', 'bash']
    """
    pipelines: list[Pipeline] = []
    _collect(script, 0, pipelines, depth=0)
    return Script(tuple(pipelines))


def _collect(
    script: str, base: int, out: list[Pipeline], depth: int, seen: frozenset[str] = frozenset()
) -> None:
    """Add the pipelines of `script` (at offset `base`) and of the scripts nested in it.

    `seen` are substitutions the enclosing script already read, so `sh -c "$(x)"` reads
    `x` once.
    """
    tokens, nested = _tokens(script)
    substitutions = frozenset(text for text, _ in nested)
    for pipeline in _pipelines(tokens):
        out.append(tuple(_shifted(c, base) for c in pipeline))
        if depth < 4:
            for command in pipeline:
                inner = _shell_c_script(command)
                if inner is not None:
                    # Offsets inside a quoted string are approximate: use the word's.
                    _collect(inner.text, base + inner.start, out, depth + 1, substitutions)
    if depth < 4:
        for text, start in nested:
            if text not in seen:
                _collect(text, base + start, out, depth + 1)


def _shifted(command: Command, base: int) -> Command:
    if base == 0:
        return command

    def shift(word: Word) -> Word:
        return Word(word.text, word.start + base, word.quoted)

    return Command(
        tuple(map(shift, command.words)), tuple(map(shift, command.assignments)),
        command.name, tuple(map(shift, command.args)), command.offset + base,
    )


def _shell_c_script(command: Command) -> Word | None:
    """Given `bash -c "curl x | sh"` (or `su -c`), return the word holding the script."""
    if command.name not in SHELLS and command.name != "su":
        return None
    args = command.args
    for index, arg in enumerate(args[:-1]):
        if arg.text == "-c" or (arg.text.startswith("-") and not arg.text.startswith("--")
                                and "c" in arg.text[1:] and command.name != "su"):
            return Word(args[index + 1].text, args[index + 1].start)
    return None


_PLAIN = re.compile(r"[^ \t\n#\\'\"$<>&|;()`]+")


def _tokens(script: str) -> tuple[list[tuple[str, Word]], list[tuple[str, int]]]:
    """Split `script` into ("word" | "op" | "redir", token) pairs; also return the scripts
    of command substitutions as (text, offset)."""
    tokens: list[tuple[str, Word]] = []
    nested: list[tuple[str, int]] = []
    heredocs: list[tuple[str, bool]] = []
    buffer: list[str] = []
    start = -1
    quoted = False
    i, n = 0, len(script)

    def flush() -> None:
        nonlocal buffer, start, quoted
        if start >= 0:
            tokens.append(("word", Word("".join(buffer), start, quoted)))
        buffer, start, quoted = [], -1, False

    def begin() -> None:
        nonlocal start
        if start < 0:
            start = i

    while i < n:
        char = script[i]
        if char in " \t":
            flush()
            i += 1
        elif char == "\n":
            flush()
            tokens.append(("op", Word("\n", i)))
            i += 1
            if heredocs:
                i = _skip_heredocs(script, i, heredocs)
                heredocs = []
        elif char == "#" and start < 0:
            end = script.find("\n", i)
            i = n if end < 0 else end
        elif char == "\\":
            if script.startswith("\\\n", i):
                i += 2
                continue
            begin()
            quoted = True
            buffer.append(script[i + 1:i + 2])
            i += 2
        elif char == "'":
            begin()
            quoted = True
            end = script.find("'", i + 1)
            end = n if end < 0 else end
            buffer.append(script[i + 1:end])
            i = end + 1
        elif char == '"':
            begin()
            quoted = True
            i = _double_quoted(script, i + 1, buffer, nested)
        elif script.startswith(("$(", "<(", ">("), i) and not script.startswith("$((", i):
            begin()
            end = _balanced(script, i + 1)
            nested.append((script[i + 2:end], i + 2))
            buffer.append(script[i:end + 1])
            i = end + 1
        elif char == "`":
            begin()
            end = script.find("`", i + 1)
            end = n if end < 0 else end
            nested.append((script[i + 1:end], i + 1))
            buffer.append(script[i:end + 1])
            i = end + 1
        elif char == "$" and script.startswith("${", i):
            begin()
            end = script.find("}", i)
            end = n if end < 0 else end
            buffer.append(script[i:end + 1])
            i = end + 1
        elif char in "<>" or script.startswith("&>", i):
            if buffer and "".join(buffer).isdigit() and not quoted:
                buffer, start = [], -1  # a file descriptor: `2>&1`
            flush()
            op = next(r for r in _REDIRECTS if script.startswith(r, i))
            tokens.append(("redir", Word(op, i)))
            i += len(op)
            if op in ("<<", "<<-"):
                heredocs.append(_heredoc_word(script, i, op == "<<-"))
        elif char in "|&;()":
            flush()
            op = next(o for o in _OPERATORS if script.startswith(o, i))
            tokens.append(("op", Word(op, i)))
            i += len(op)
        else:
            begin()
            # A run of characters none of the branches above reads: one append, not one each.
            plain = _PLAIN.match(script, i)
            end = plain.end() if plain is not None else i + 1
            buffer.append(script[i:end])
            i = end
    flush()
    return tokens, nested


def _double_quoted(script: str, i: int, buffer: list[str], nested: list[tuple[str, int]]) -> int:
    """Read a double-quoted string from `i` (after the quote); return the index after it."""
    n = len(script)
    while i < n and script[i] != '"':
        if script[i] == "\\" and i + 1 < n:
            buffer.append(script[i + 1] if script[i + 1] in '"\\$`\n' else script[i:i + 2])
            i += 2
        elif script.startswith("$(", i) and not script.startswith("$((", i):
            end = _balanced(script, i + 1)
            nested.append((script[i + 2:end], i + 2))
            buffer.append(script[i:end + 1])
            i = end + 1
        elif script[i] == "`":
            end = script.find("`", i + 1)
            end = n if end < 0 else end
            nested.append((script[i + 1:end], i + 1))
            buffer.append(script[i:end + 1])
            i = end + 1
        else:
            buffer.append(script[i])
            i += 1
    return i + 1


def _balanced(script: str, open_at: int) -> int:
    """Given the index of a `(`, return the index of its `)` (or the end of the script)."""
    depth = 0
    i = open_at
    quote = ""
    while i < len(script):
        char = script[i]
        if quote:
            if char == "\\" and quote == '"':
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(script)


def _heredoc_word(script: str, i: int, strip_tabs: bool) -> tuple[str, bool]:
    """The delimiter of a here-document whose `<<` ends at `i`."""
    match = re.match(r"[ \t]*(?:'([^']*)'|\"([^\"]*)\"|\\?([^\s;|&<>()]+))", script[i:])
    word = next((g for g in match.groups() if g is not None), "") if match else ""
    return word, strip_tabs


def _skip_heredocs(script: str, i: int, heredocs: list[tuple[str, bool]]) -> int:
    """Skip the bodies of pending here-documents, which start at `i`; return where code resumes."""
    for word, strip_tabs in heredocs:
        while i < len(script):
            end = script.find("\n", i)
            end = len(script) if end < 0 else end
            line = script[i:end]
            i = end + 1
            if (line.lstrip("\t") if strip_tabs else line) == word:
                break
    return min(i, len(script))


def _pipelines(tokens: list[tuple[str, Word]]) -> Iterator[Pipeline]:
    """Group tokens into pipelines of simple commands."""
    pipeline: list[Command] = []
    words: list[Word] = []
    skip_next = False

    def end_command() -> None:
        nonlocal words
        command = _command(words)
        if command is not None:
            pipeline.append(command)
        words = []

    for kind, token in tokens:
        if skip_next and kind == "word":
            skip_next = False
            continue
        skip_next = False
        if kind == "redir":
            skip_next = True
        elif kind == "op" and token.text in ("|", "|&"):
            end_command()
        elif kind == "op":
            end_command()
            if pipeline:
                yield tuple(pipeline)
            pipeline = []
        elif not token.quoted and token.text in _KEYWORDS and not words:
            continue
        else:
            words.append(token)
    end_command()
    if pipeline:
        yield tuple(pipeline)


def _command(words: list[Word]) -> Command | None:
    """Build a simple command, looking through assignments and wrappers (`sudo`, `env`)."""
    if not words or (not words[0].quoted and words[0].text in _NOT_COMMANDS):
        return None
    assignments: list[Word] = []
    index = 0
    while index < len(words):
        word = words[index]
        name = _basename(word.text)
        if _ASSIGNMENT.match(word.text):
            assignments.append(word)
            index += 1
        elif name in ("sudo", "doas"):
            index = _after_options(words, index + 1, "ugCDhprtUT")
        elif name == "env":
            index = _after_options(words, index + 1, "uSC")
        elif name in ("nohup", "exec", "command", "builtin", "stdbuf"):
            index = _after_options(words, index + 1, "ioe")
        elif name == "nice":
            index = _after_options(words, index + 1, "n")
        elif name == "timeout":
            index = _after_options(words, index + 1, "sk") + 1
        else:
            break
    if index >= len(words):
        if not assignments:
            return None
        return Command(tuple(words), tuple(assignments), "", (), words[0].start)
    name = _basename(words[index].text)
    return Command(tuple(words), tuple(assignments), name, tuple(words[index + 1:]),
                   words[0].start)


def _basename(word: str) -> str:
    """Given `/usr/bin/curl`, return `curl`; a word built by substitution stays whole."""
    return word if "$" in word or "`" in word else word.rsplit("/", 1)[-1]


def _after_options(words: list[Word], index: int, with_value: str) -> int:
    """Skip the options of a wrapper; letters in `with_value` take the next word."""
    while index < len(words) and words[index].text.startswith("-") and words[index].text != "-":
        option = words[index].text
        index += 1
        if option == "--":
            break
        if not option.startswith("--") and len(option) == 2 and option[1] in with_value:
            index += 1
    return index


def short_flags(word: str, with_value: str = "") -> str:
    """Given `-fsSLk`, return the letters of a cluster of short options (`fsSLk`).

    Letters after one that takes a value (in `with_value`) are that value, not options.
    """
    if not word.startswith("-") or word.startswith("--") or len(word) < 2:
        return ""
    letters = []
    for letter in word[1:]:
        letters.append(letter)
        if letter in with_value:
            break
    return "".join(letters)
