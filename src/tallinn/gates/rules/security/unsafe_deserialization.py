"""S103 unsafe-deserialization: pickle, marshal or yaml.load without a safe loader."""

from __future__ import annotations

from collections.abc import Iterator

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._python import Call, analyse
from tallinn.gates.rules.security._source import PYTHON_LANGS, AuditFile
from tallinn.library import Severity

_PICKLE_MODULES = ("pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "joblib")
_UNSAFE = frozenset(
    {f"{m}.{f}" for m in _PICKLE_MODULES for f in ("load", "loads", "Unpickler")}
    | {"shelve.open", "jsonpickle.decode", "pandas.read_pickle", "yaml.unsafe_load",
       "yaml.unsafe_load_all"}
)
_YAML_LOAD = frozenset({"yaml.load", "yaml.load_all"})
_SAFE_LOADERS = frozenset({"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"})


@rule("S103", "unsafe-deserialization", "security", Severity.WARNING,
      "pickle, marshal or yaml.load without a safe loader in a Python code block",
      confidence=Confidence.HIGH)
def unsafe_deserialization(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    Flags Python calls that can build arbitrary objects from data: `pickle`/`marshal`/`dill`
    loads, `shelve.open`, `pandas.read_pickle`, `yaml.unsafe_load`, and `yaml.load` unless
    its `Loader` is `SafeLoader`, `CSafeLoader` or `BaseLoader`. `yaml.safe_load` is fine.

    Why is this bad?
    Unpickling runs code chosen by whoever wrote the data, and PyYAML's full loaders can
    construct arbitrary Python objects. A prompt showing these on untrusted input teaches
    the model a remote-code-execution pattern.

    Example:
    ```python
    config = yaml.load(stream)
    ```

    Use instead:
    ```python
    config = yaml.safe_load(stream)
    ```

    Fix safety:
    No automatic fix.
    """
    for snippet in file.snippets(PYTHON_LANGS):
        for call in analyse(snippet).calls:
            if call.name in _UNSAFE or (call.name in _YAML_LOAD and not _safe_loader(call)):
                yield file.finding(
                    RULE, snippet.file_offset(call.offset),
                    f"`{call.name}()` can run code hidden in the data it reads; use a "
                    "data-only format (json, yaml.safe_load)",
                )


def _safe_loader(call: Call) -> bool:
    loader = call.keywords.get("Loader") or (call.args[1] if len(call.args) > 1 else "")
    return loader.rsplit(".", 1)[-1] in _SAFE_LOADERS


RULE = RULES["S103"]
