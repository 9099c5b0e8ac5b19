"""D105 short-component-description."""

from __future__ import annotations

from collections.abc import Iterator

from tallinn.gates.base import rule
from tallinn.gates.rules.docs._common import DocsCheck, Requirement
from tallinn.library import Component, Severity

CODE = "D105"


@rule(CODE, "short-component-description", "docs", Severity.WARNING,
      "A component's description is shorter than the useful minimum")
def check(component: Component, ctx: DocsCheck) -> Iterator[Requirement]:
    """## What it does
    Checks that a component's `description` has at least `min_description_length`
    characters (`[gates.docs]`, 20 by default).

    ## Why is this bad?
    Authors pick a component to include by its description (`tallinn show`, the docs built
    from the library). "Checklist" does not say what the fragment asks the model to do.

    ## Example
    ```yaml
    description: Checklist
    ```

    ## Use instead
    ```yaml
    description: Security checklist for reviews - injection, secrets, authorisation
    ```
    """
    minimum = ctx.settings.min_description_length
    length = len(component.description.strip())
    finding = None
    if length < minimum:
        finding = ctx.finding(
            CODE,
            f"the description of component '{component.name}' has {length} characters; write "
            f"at least {minimum} that say what it is for",
            component, ctx.marks.key("description"),
        )
    yield Requirement(CODE, f"{component.name}: description", finding)
