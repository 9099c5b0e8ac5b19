"""Rules of gate 1, XML and structure validation: one module per rule.

    V401 unclosed-tag             V404 malformed-attribute
    V402 mismatched-closing-tag   V405 malformed-xml-document   (2025 format, checked on read)
    V403 stray-closing-tag        V406 invalid-legacy-argument  (2025 format, checked on read)

The loader's own codes (V100-V303: front matter, includes, placeholders) are registered in
`loader_rules` so that docs and SARIF know them; those with an automatic fix have a module
each. `BODY_RULES` check a scanned body; `FIXERS` add fixes to the loader's diagnostics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from tallinn.gates.rules.xml import _common, loader_rules
from tallinn.gates.rules.xml._scan import Scan
from tallinn.gates.rules.xml.invalid_legacy_argument import CODE as INVALID_LEGACY_ARGUMENT
from tallinn.gates.rules.xml.invalid_yaml import fix as fix_invalid_yaml
from tallinn.gates.rules.xml.malformed_attribute import check as check_malformed_attribute
from tallinn.gates.rules.xml.malformed_include import fix as fix_malformed_include
from tallinn.gates.rules.xml.malformed_xml_document import CODE as MALFORMED_XML_DOCUMENT
from tallinn.gates.rules.xml.mismatched_closing_tag import check as check_mismatched_closing
from tallinn.gates.rules.xml.missing_component import fix as fix_missing_component
from tallinn.gates.rules.xml.stray_closing_tag import check as check_stray_closing_tag
from tallinn.gates.rules.xml.unclosed_tag import check as check_unclosed_tag
from tallinn.gates.rules.xml.unquoted_argument_hint import fix as fix_unquoted_argument_hint
from tallinn.library import Diagnostic, Fix, Library

GATE = _common.GATE

BodyRule = Callable[[Scan], Iterator[Diagnostic]]
Fixer = Callable[[Diagnostic, str, Library], Fix | None]

BODY_RULES: tuple[BodyRule, ...] = (
    check_unclosed_tag,
    check_mismatched_closing,
    check_stray_closing_tag,
    check_malformed_attribute,
)
FIXERS: Mapping[str, Fixer] = {
    "V102": fix_invalid_yaml,
    "V103": fix_unquoted_argument_hint,
    "V201": fix_missing_component,
    "V202": fix_malformed_include,
}
CHECKED_ON_READ = (MALFORMED_XML_DOCUMENT, INVALID_LEGACY_ARGUMENT)

__all__ = ["BODY_RULES", "CHECKED_ON_READ", "FIXERS", "GATE", "loader_rules"]
