"""Documentation rules, D1xx: each yields the requirements it checks, met or not.

    D101  short-command-description    a command's description is too short
    D102  undocumented-argument        a command argument has no description
    D103  command-without-example      a command has no example
    D104  missing-argument-hint        a command taking arguments has no argument-hint
    D105  short-component-description  a component's description is too short
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from tallinn.gates.rules.docs import (
    command_without_example,
    missing_argument_hint,
    short_command_description,
    short_component_description,
    undocumented_argument,
)
from tallinn.gates.rules.docs._common import DocsCheck, DocsSettings, Marks, Requirement
from tallinn.library import Command, Component

CommandRule = Callable[[Command, DocsCheck], Iterator[Requirement]]
ComponentRule = Callable[[Component, DocsCheck], Iterator[Requirement]]

COMMAND_RULES: dict[str, CommandRule] = {
    short_command_description.CODE: short_command_description.check,
    undocumented_argument.CODE: undocumented_argument.check,
    command_without_example.CODE: command_without_example.check,
    missing_argument_hint.CODE: missing_argument_hint.check,
}
COMPONENT_RULES: dict[str, ComponentRule] = {
    short_component_description.CODE: short_component_description.check,
}

__all__ = [
    "COMMAND_RULES",
    "COMPONENT_RULES",
    "CommandRule",
    "ComponentRule",
    "DocsCheck",
    "DocsSettings",
    "Marks",
    "Requirement",
]
