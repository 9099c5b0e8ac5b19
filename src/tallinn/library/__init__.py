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
from tallinn.library.loader import load_library
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
    "Fix",
    "IncludeNode",
    "Library",
    "LibraryConfig",
    "LibraryError",
    "NotFoundError",
    "RenderError",
    "Severity",
    "TallinnError",
    "Template",
    "bind_positional",
    "coerce",
    "format_value",
    "load_library",
    "render",
    "render_command",
    "walk",
]
