"""The structural rules the loader checks (front matter, includes, placeholders).

Gate 1 reports the loader's diagnostics as findings; this table registers their codes so that
docs/rules.md and SARIF know them. Codes with an automatic fix have a module of their own:
V102 `invalid_yaml`, V103 `unquoted_argument_hint`, V201 `missing_component`, V202
`malformed_include`.
"""

from __future__ import annotations

from tallinn.gates.base import Rule, describe
from tallinn.gates.rules.xml._common import GATE
from tallinn.library import Severity

E, W = Severity.ERROR, Severity.WARNING

# code: (name, severity, summary, doc)
TABLE: dict[str, tuple[str, Severity, str, str]] = {
    "V100": ("non-utf8-file", E, "A prompt file is not valid UTF-8", """
What it does
Checks that every Markdown file of the library decodes as UTF-8. The position is that of
the first byte that does not.

Why is this bad?
The file cannot be read as text, so it is left out of the library.

Use instead
Save the file as UTF-8.
"""),
    "V101": ("missing-front-matter", E, "A file does not start with closed YAML front matter", """
What it does
Checks that a command or component starts with a line `---`, its YAML front matter, and a
closing line `---`.

Why is this bad?
Without front matter there is no description and no argument declaration, so the file is
left out of the library. The gate still checks the whole file as a body: its tags, its
includes and the syntax of its placeholders.

Example
```markdown
Review the file.
```

Use instead
```markdown
---
description: Review a file
---
Review the file.
```
"""),
    "V104": ("unknown-front-matter-key", W, "Front matter has a key Tallinn does not know", """
What it does
Checks front-matter keys against the known ones (`description`, `argument-hint`,
`arguments`, `allowed-tools`, `model`, `tags`, `critical`, `examples`).

Why is this bad?
An unknown key is usually a misspelling (`argument_hint`) whose value is silently unused.

Example
```yaml
argument_hint: "<path>"
```

Use instead
```yaml
argument-hint: "<path>"
```
"""),
    "V105": ("invalid-front-matter", E, "Front matter does not match the schema", """
What it does
Checks front matter against the schema of docs/format.md: `description` is required and
not empty, every value has the right type, arguments and examples have only known fields.

Why is this bad?
A file whose metadata cannot be read is left out of the library.

Example
```yaml
description:
critical: sometimes
```

Use instead
```yaml
description: Review a change for correctness
critical: true
```
"""),
    "V106": ("invalid-config", E, "tallinn.toml is not valid TOML or has invalid settings", """
What it does
Checks that `tallinn.toml` parses as TOML and that `[library]` and `[gates...]` hold
known settings of the right type.

Why is this bad?
Settings that cannot be read fall back to defaults the author did not choose; a gate run
stops with exit code 2.
"""),
    "V107": ("duplicate-command-name", E, "Two commands have the same name", """
What it does
Checks that command names (file stems) are unique across the library, since Claude Code
and MCP clients call a command by its name alone.

Why is this bad?
Only one of the two can be called; which one depends on file order. The second is left out.

Example
```text
commands/core/task.md
commands/development/task.md
```

Use instead
```text
commands/core/task.md
commands/development/dev-task.md
```
"""),
    "V108": ("invalid-argument-declaration", E, "An argument declaration is inconsistent", """
What it does
Checks each declared argument: a name given once, `enum` values exactly when `type: enum`,
not both `required` and a `default`, and a default that is itself valid (patterns: V115).

Why is this bad?
The command could never be rendered as declared, so it is left out of the library.

Example
```yaml
arguments:
  - name: level
    type: enum
    required: true
    default: AA
```

Use instead
```yaml
arguments:
  - name: level
    type: enum
    enum: [A, AA, AAA]
    default: AA
```
"""),
    "V109": ("invalid-command-name", W, "A command name is not a valid slash-command name", """
What it does
Checks that a command's file stem uses lowercase letters, digits and hyphens only.

Why is this bad?
Claude Code names slash commands after the file; other characters make the command hard
or impossible to type, and exports may not work.

Example
```text
commands/review/Code_Review.md
```

Use instead
```text
commands/review/code-review.md
```
"""),
    "V110": ("invalid-example", W, "An example is not a valid invocation", """
What it does
Checks that each `examples` entry of a command passes the command's own argument checks.

Why is this bad?
Examples are shown to users and run by smoke tests; a wrong one teaches a call that fails.

Example
```yaml
examples:
  - description: Review at level AAAA
    args: {path: app.py, level: AAAA}
```

Use instead
```yaml
examples:
  - description: Review at level AAA
    args: {path: app.py, level: AAA}
```
"""),
    "V111": ("unreadable-file", E, "A library file is not a regular file inside the library", """
What it does
Reports a file, or a folder, of the library that is not read: a FIFO, a socket or a device;
a symbolic link that is broken, loops, or leads outside the library folder; a folder linked
a second time; a file the operating system refuses to open.

Why is this bad?
Reading a FIFO blocks for good and a device such as `/dev/zero` never ends; a link leading
outside would serve (and audit) a file nobody reviewed as part of the library. Such a file is
left out, and the security audit reports it as S902.

Example
`commands/setup.md -> /etc/hosts`, or `mkfifo commands/pipe.md`.

Use instead
Keep every prompt a regular file, or a link to one inside the library.
"""),
    "V112": ("oversized-file", E, "A library file is larger than the size limit", """
What it does
Reports a file larger than `[limits] max_file_bytes` (default 1,000,000 bytes). No more than
the limit and one byte is ever read.

Why is this bad?
A prompt is text a person reads; a file of tens of megabytes is a mistake or an attack, and
would cost memory in every process that loads the library.

Use instead
Split the file, or raise the limit in `tallinn.toml`:
```toml
[limits]
max_file_bytes = 4000000
```
"""),
    "V113": ("oversized-front-matter", E, "YAML goes past a YAML limit", """
What it does
Reports front matter with more YAML nodes than `[limits] max_yaml_nodes` (aliases counted as
the nodes they stand for), more aliases than `max_yaml_aliases`, or lists and mappings
nested deeper than `max_yaml_depth`. Parsing stops at the limit.

Why is this bad?
A few hundred bytes of anchors and aliases stand for millions of values ("billion laughs"),
and deep nesting exhausts the parser's stack.

Example
```yaml
a: &a [x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: [*b, *b, *b, *b, *b, *b, *b, *b, *b]
```

Use instead
Write the values out; front matter needs no aliases.
"""),
    "V114": ("too-many-arguments", E, "A file declares more arguments than the limit", """
What it does
Reports a command or component declaring more than `[limits] max_arguments` arguments
(default 100).

Why is this bad?
No prompt needs that many; every request would have to carry and check each of them.

Use instead
Group the values into fewer arguments, or raise the limit.
"""),
    "V116": ("too-many-files", E, "A library folder holds more entries than the limit", """
What it does
Reports a `commands/`, `components/` or `tests/` folder (with its subfolders) holding more
than `[limits] max_files` files and folders (default 100,000). Listing stops at the limit:
the rest are not read.

Why is this bad?
A library of millions of files costs a load, every reload of a server and every gate run
memory and time in proportion, before any of it is checked; a folder filled by accident (an
unpacked archive, generated output) should be found, not served.

Use instead
Keep generated and unrelated files out of the library's folders, or raise the limit.
"""),
    "V115": ("pattern-rejected-by-re2", E, "An argument pattern is not one RE2 can run", """
What it does
Checks that each argument `pattern` compiles with RE2, the linear-time engine Tallinn matches
values with. RE2 refuses backreferences (`\\1`), lookaround (`(?=`, `(?!`, `(?<=`, `(?<!`),
possessive and atomic groups, Python-only escapes such as `\\Z`, and patterns whose
compiled program is larger than its memory budget (256 KiB). The position is that of the
argument's `pattern` key; the message gives RE2's reason.

Why is this bad?
The command cannot check its argument as declared, so it is left out of the library. The
constructs RE2 refuses are those that make a backtracking engine take exponential time on a
short value: one such pattern and one request would freeze a server for every client.

Example
```yaml
arguments:
  - name: word
    pattern: "(\\w+)-\\1"
```

Use instead
```yaml
arguments:
  - name: word
    pattern: "\\w+-\\w+"
```

References
- https://github.com/google/re2/wiki/Syntax
"""),
    "V203": ("undeclared-component-argument", E,
             "A component needs an argument the command does not declare", """
What it does
Checks that a command declares every argument used by the components it includes,
directly or through other components.

Why is this bad?
The component's placeholder would have no value, so the command is left out.

Example
```markdown
---
description: Review
---
<include component="reporting/findings"/>   <!-- uses {{path}} -->
```

Use instead
```markdown
---
description: Review
arguments:
  - name: path
    required: true
---
<include component="reporting/findings"/>
```
"""),
    "V204": ("include-cycle", E, "Includes form a cycle", """
What it does
Checks that includes never lead back to a component already being included; the whole cycle
is shown (`a → b → a`).

Why is this bad?
A cycle cannot be expanded, so every command that includes it is left out.

Example
```markdown
<!-- components/workflow/run.md -->
<include component="workflow/run"/>
```

Use instead
Move the shared text into a third component that both include.
"""),
    "V205": ("include-of-broken-component", E, "A command includes a component that has errors",
             """
What it does
Reports, in the command, that a component it includes could not be composed; the cause is
reported in the component's own file.

Why is this bad?
The command cannot be composed, so it is left out; this finding says why, so that nothing
disappears without a word.

Use instead
Fix the errors reported in the component.
"""),
    "V206": ("include-too-deep", E, "Includes nest deeper than the limit", """
What it does
Reports an include that is more than `[limits] max_include_depth` (default 32) includes below
its command.

Why is this bad?
A chain of includes hundreds deep is no prompt anyone can read, and composing it would cost
time and stack for every command built on it.

Use instead
Flatten the chain: include the shared component directly.
"""),
    "V301": ("undeclared-placeholder", E, "A placeholder names no declared argument", """
What it does
Checks that every `{{name}}` in a body is a declared argument of its command or component.

Why is this bad?
Nothing would fill it; a typo in a placeholder would otherwise reach the model as
literal braces.

Example
```markdown
Review {{paht}}.
```

Use instead
```markdown
Review {{path}}.
```
"""),
    "V302": ("unused-argument", W, "A declared argument is never used", """
What it does
Checks that every declared argument is used by a placeholder in the body or in an included
component (or that the body uses `$ARGUMENTS`).

Why is this bad?
The user is asked for a value that changes nothing. In the 2025 format arguments reach the
model implicitly, so this is not reported there.

Example
```yaml
arguments:
  - name: focus
```

Use instead
Use `{{focus}}` in the body, or remove the argument.
"""),
    "V303": ("invalid-placeholder", E, "'{{' opens no valid placeholder", """
What it does
Checks that every `{{` opens a placeholder such as `{{name}}`.

Why is this bad?
A malformed placeholder (`{{ path }` or `{{1st}}`) would reach the model as literal text.

Example
```markdown
Review {{ path }.
```

Use instead
```markdown
Review {{ path }}. Write \\{{ for literal braces.
```
"""),
    "V304": ("too-many-placeholders", E,
             "A body has more placeholders and includes than the limit", """
What it does
Reports a body with more than `[limits] max_placeholders` (default 10,000) placeholders,
`$ARGUMENTS` and includes together.

Why is this bad?
Each one is a slot filled at every render; a body made of hundreds of thousands of them is an
attack on the server's time, not a prompt.

Use instead
Write the text out, or raise the limit.
"""),
}

RULES: dict[str, Rule] = {
    code: describe(code, summary, GATE, severity, name, doc.strip())
    for code, (name, severity, summary, doc) in TABLE.items()
}
