"""The five quality gates that decide whether a library may ship, and the readiness report.

Each gate is a module with `NAME`, `TITLE` and `run(context) -> GateResult`:

    xml       XML and structure validation       tallinn.gates.xml
    tests     prompt tests (and code coverage)   tallinn.gates.tests
    perf      performance                        tallinn.gates.perf
    security  security audit                     tallinn.gates.security
    docs      documentation coverage             tallinn.gates.docs
"""

from __future__ import annotations

GATE_MODULES: dict[str, str] = {
    "xml": "tallinn.gates.xml",
    "tests": "tallinn.gates.tests",
    "perf": "tallinn.gates.perf",
    "security": "tallinn.gates.security",
    "docs": "tallinn.gates.docs",
}
