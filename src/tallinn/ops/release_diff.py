"""What changed between two releases, by command and component name, and as a text diff.

A command is named by its file's name under `commands/` (`commands/review/code-review.md` is
`code-review`), a component by its path under `components/` without `.md`
(`reporting/findings`); every other file (`tallinn.toml`, tests, README) by its path.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath


@dataclass(frozen=True, slots=True)
class Changes:
    """Names added, removed and changed in one kind of thing (commands, components, files)."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True, slots=True)
class ReleaseDiff:
    commands: Changes
    components: Changes
    files: Changes

    def as_dict(self) -> dict[str, dict[str, list[str]]]:
        return {kind: {"added": c.added, "removed": c.removed, "changed": c.changed}
                for kind, c in (("commands", self.commands), ("components", self.components),
                                ("files", self.files))}


def kind_and_name(path: str) -> tuple[str, str]:
    """Given `commands/review/code-review.md`, return `("commands", "code-review")`."""
    if path.endswith(".md") and path.startswith("commands/"):
        return "commands", PurePosixPath(path).stem
    if path.endswith(".md") and path.startswith("components/"):
        return "components", path.removeprefix("components/").removesuffix(".md")
    return "files", path


def diff(before: Mapping[str, str], after: Mapping[str, str]) -> ReleaseDiff:
    """Given two `{path: blob hash}` manifests, return what was added, removed and changed."""
    kinds: dict[str, Changes] = {"commands": Changes(), "components": Changes(),
                                 "files": Changes()}
    old = {kind_and_name(path): digest for path, digest in before.items()}
    new = {kind_and_name(path): digest for path, digest in after.items()}
    for key in sorted(old.keys() | new.keys()):
        kind, name = key
        if key not in old:
            kinds[kind].added.append(name)
        elif key not in new:
            kinds[kind].removed.append(name)
        elif old[key] != new[key]:
            kinds[kind].changed.append(name)
    return ReleaseDiff(kinds["commands"], kinds["components"], kinds["files"])


def unified(before: Mapping[str, str], after: Mapping[str, str], labels: tuple[str, str],
            content: Callable[[str, str], bytes]) -> str:
    """A unified diff of every file that differs; `content(side, path)` gives its bytes
    (`side` is `"a"` or `"b"`). A file that is not UTF-8 is named, not shown."""
    lines: list[str] = []
    for path in sorted(before.keys() | after.keys()):
        if before.get(path) == after.get(path):
            continue
        texts: list[list[str] | None] = []
        for side, manifest in (("a", before), ("b", after)):
            raw = content(side, path) if path in manifest else b""
            try:
                texts.append(raw.decode("utf-8").splitlines(keepends=True))
            except UnicodeDecodeError:
                texts.append(None)
        if texts[0] is None or texts[1] is None:
            lines.append(f"Binary file {path} differs\n")
            continue
        lines.extend(difflib.unified_diff(
            texts[0], texts[1],
            fromfile=f"{labels[0]}/{path}" if path in before else "/dev/null",
            tofile=f"{labels[1]}/{path}" if path in after else "/dev/null",
        ))
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n\\ No newline at end of file\n"
    return "".join(lines)
