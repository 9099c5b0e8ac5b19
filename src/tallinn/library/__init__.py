"""The library core: model, loader, composer and renderer. Pure: no server, no store."""

from tallinn.library.compose import IncludeNode, Template, walk
from tallinn.library.diagnostics import Diagnostic, Edit, Fix, Severity
from tallinn.library.errors import (
    ArgumentError,
    LibraryError,
    NotFoundError,
    RenderError,
    TallinnError,
)
from tallinn.library.loader import build_library, load_library
from tallinn.library.model import (
    ArgType,
    Argument,
    ArgValue,
    Command,
    Component,
    Example,
    Library,
    LibraryConfig,
)
from tallinn.library.render import bind_positional, coerce, format_value, render, render_command
from tallinn.library.source import FilesSource, FolderSource, LibrarySource

__all__ = [
    "ArgType",
    "ArgValue",
    "Argument",
    "ArgumentError",
    "Command",
    "Component",
    "Diagnostic",
    "Edit",
    "Example",
    "FilesSource",
    "Fix",
    "FolderSource",
    "IncludeNode",
    "Library",
    "LibraryConfig",
    "LibraryError",
    "LibrarySource",
    "NotFoundError",
    "RenderError",
    "Severity",
    "TallinnError",
    "Template",
    "bind_positional",
    "build_library",
    "coerce",
    "format_value",
    "load_library",
    "render",
    "render_command",
    "walk",
]
