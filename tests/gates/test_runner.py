"""The gate runner: selection, timing, crash isolation, settings and the GO / NO-GO verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.gates.readiness_factory import COMMAND, NOW, finding, install_gates
from tests.helpers import count_calls

from tallinn.gates import GATE_MODULES, runner
from tallinn.gates.base import (
    AcceptedRisk,
    GateContext,
    GateResult,
    GateSettings,
    Metric,
    Status,
    gate_settings,
)
from tallinn.gates.runner import (
    LibraryInfo,
    RunnerSettings,
    decide,
    figure,
    run_gates,
    runner_settings,
    select,
    settings_model,
)
from tallinn.library import Library, LibraryError, NotFoundError, Severity, load_library


def passed(name: str, **extra: Any) -> GateResult:
    return GateResult(name, name.title(), Status.PASSED, **extra)


@pytest.fixture
def library(write_library: Any) -> Library:
    return load_library(write_library({
        "commands/a/hello.md": COMMAND.replace("{{name}}", "me"),
        "tests/hello.yaml": "command: hello\ntests: []\n",
        "tests/notes.txt": "not a test file\n",
    }))


def configured(write_library: Any, toml: str) -> Library:
    return load_library(write_library({
        "commands/a/hello.md": COMMAND.replace("{{name}}", "me"),
        "tallinn.toml": toml,
    }))


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def started(self, gate: str, title: str) -> None:
        self.events.append(("started", gate, title))

    def progress(self, gate: str, message: str) -> None:
        self.events.append(("progress", gate, message))

    def finished(self, gate: str, result: GateResult) -> None:
        self.events.append(("finished", gate, result.status.value))


# Selection ------------------------------------------------------------------------------


def test_select_defaults_to_every_gate_in_order() -> None:
    """Without --only, all five gates run in their canonical order."""
    assert select(None) == ["xml", "tests", "perf", "security", "docs"]


def test_select_keeps_canonical_order_and_ignores_case_and_spaces() -> None:
    """--only is comma-separated, case-insensitive, and runs gates in canonical order."""
    assert select(" DOCS, xml ,,") == ["xml", "docs"]
    assert select(["perf", "tests"]) == ["tests", "perf"]


def test_select_rejects_an_unknown_gate_with_a_suggestion() -> None:
    """An unknown gate name is a usage error that suggests the closest name."""
    with pytest.raises(NotFoundError, match=r"no gate named 'secrity' \(did you mean security"):
        select("xml,secrity")


def test_select_rejects_an_empty_selection() -> None:
    """--only with no names at all is an error, not a run of nothing."""
    with pytest.raises(NotFoundError, match="no gate named"):
        select(" , ")


# Running --------------------------------------------------------------------------------


def test_run_gates_times_each_gate_and_forwards_progress(
    monkeypatch: pytest.MonkeyPatch, library: Library
) -> None:
    """Each gate gets the library, the options and a progress callback; the runner times it."""
    seen: dict[str, Any] = {}

    def run(ctx: GateContext) -> GateResult:
        seen["root"], seen["options"] = ctx.root, dict(ctx.options)
        ctx.progress("half way")
        return GateResult("wrong-name", "A", Status.PASSED, duration=99.0)

    install_gates(monkeypatch, {"a": run, "b": lambda ctx: passed("b")})
    recorder = Recorder()
    result = run_gates(library, ["a", "b"], options={"load": True}, observer=recorder,
                       clock=lambda: NOW)
    assert [r.gate for r in result.results] == ["a", "b"]
    assert result.results[0].duration < 99.0  # measured by the runner, not trusted
    assert seen == {"root": library.root, "options": {"load": True}}
    assert recorder.events == [
        ("started", "a", "The a gate"), ("progress", "a", "half way"), ("finished", "a", "PASSED"),
        ("started", "b", "The b gate"), ("finished", "b", "PASSED"),
    ]
    assert result.verdict.go
    assert result.started == NOW
    assert result.not_run == ()
    assert result.library.test_files == 1


def test_a_gate_that_raises_is_failed_and_the_others_still_run(
    monkeypatch: pytest.MonkeyPatch, library: Library
) -> None:
    """An exception inside a gate becomes a FAILED result naming it; the run goes on."""

    def boom(ctx: GateContext) -> GateResult:
        raise ZeroDivisionError("division by zero")

    install_gates(monkeypatch, {"a": boom, "b": lambda ctx: passed("b")})
    result = run_gates(library)
    crashed, ok = result.results
    assert crashed.status is Status.FAILED
    assert crashed.title == "The a gate"
    assert "gate 'a' crashed: ZeroDivisionError: division by zero at test_runner.py:" in (
        crashed.details[0])
    assert crashed.data["error"]["type"] == "ZeroDivisionError"
    assert ok.status is Status.PASSED
    assert not result.verdict.go
    assert result.verdict.reasons[0].startswith("a FAILED: gate 'a' crashed")


def test_a_gate_returning_something_else_is_failed(
    monkeypatch: pytest.MonkeyPatch, library: Library
) -> None:
    """A gate must return a GateResult; anything else is a FAILED result saying so."""
    install_gates(monkeypatch, {"a": lambda ctx: {"status": "PASSED"}})
    (result,) = run_gates(library).results
    assert result.status is Status.FAILED
    assert "run() returned dict, not a GateResult" in result.details[0]


def test_a_missing_gate_module_is_failed_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, library: Library
) -> None:
    """A gate whose module cannot be imported is FAILED with 'not installed'."""
    install_gates(monkeypatch, {"a": None})
    recorder = Recorder()
    (result,) = run_gates(library, observer=recorder).results
    assert result.status is Status.FAILED
    assert result.details == ("gate 'a' is not installed: no module fake_tallinn_gates.a",)
    assert recorder.events[0] == ("started", "a", "a")


def test_gates_not_selected_are_listed_as_not_run(
    monkeypatch: pytest.MonkeyPatch, library: Library
) -> None:
    """A partial selection says which gates did not run; progress needs no observer."""

    def chatty(ctx: GateContext) -> GateResult:
        ctx.progress("nobody listens")
        return passed("b")

    install_gates(monkeypatch, {"a": lambda ctx: passed("a"), "b": chatty})
    assert run_gates(library, ["b"]).not_run == ("a",)


def test_the_real_gate_table_names_five_gates() -> None:
    """GATE_MODULES maps each gate name to its module in tallinn.gates."""
    assert {name: f"tallinn.gates.{name}" for name in select(None)} == GATE_MODULES


# Settings -------------------------------------------------------------------------------


class FakeSettings(GateSettings):
    limit: int = 3


def test_invalid_gate_settings_stop_the_run_before_any_gate(
    monkeypatch: pytest.MonkeyPatch, write_library: Any
) -> None:
    """A bad [gates.<name>] value is a config error (V106) raised before any gate runs."""
    lib = configured(write_library, "[gates.a]\nlimit = 'many'\n")
    install_gates(monkeypatch, {"a": lambda ctx: passed("a")}, {"a": FakeSettings})
    recorder = Recorder()
    with pytest.raises(LibraryError, match=r"invalid settings in \[gates.a\]") as info:
        run_gates(lib, observer=recorder)
    assert info.value.diagnostics[0].code == "V106"
    assert recorder.events == []


def test_a_config_error_raised_inside_a_gate_is_not_swallowed(
    monkeypatch: pytest.MonkeyPatch, write_library: Any
) -> None:
    """A gate reading its own invalid settings raises V106; that stays a config error."""
    lib = configured(write_library, "[gates.a]\nlimit = 'many'\n")

    def run(ctx: GateContext) -> GateResult:
        gate_settings(ctx.library, "a", FakeSettings)
        return passed("a")  # pragma: no cover

    install_gates(monkeypatch, {"a": run})
    with pytest.raises(LibraryError, match="limit"):
        run_gates(lib)


def test_other_library_errors_inside_a_gate_fail_that_gate(
    monkeypatch: pytest.MonkeyPatch, library: Library
) -> None:
    """A LibraryError that is not about settings fails the gate like any exception."""

    def run(ctx: GateContext) -> GateResult:
        raise LibraryError("library folder not found: /nowhere")

    install_gates(monkeypatch, {"a": run})
    (result,) = run_gates(library).results
    assert result.status is Status.FAILED
    assert "LibraryError: library folder not found" in result.details[0]


def test_settings_model_finds_the_gate_modules_own_model() -> None:
    """The settings model of a gate is the GateSettings subclass its module defines."""
    assert settings_model(runner) is RunnerSettings
    import tallinn.gates.base as base

    assert settings_model(base) is None


def test_runner_settings_read_allow_partial_and_ignore_gate_tables(write_library: Any) -> None:
    """[gates] allow_partial is read; [gates.<known gate>] tables belong to the gates."""
    lib = configured(write_library, "[gates]\nallow_partial = true\n[gates.perf]\nx = 1\n")
    assert runner_settings(lib) == RunnerSettings(allow_partial=True)
    assert runner_settings(configured(write_library, "")).allow_partial is False


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[gates]\nallow_partial = 'maybe'\n", "allow_partial"),
        ("[gates]\nallow_partal = true\n", "allow_partal: Extra inputs are not permitted"),
        ("[gates.secrity]\nx = 1\n", "secrity"),
    ],
    ids=["bad-value", "typo", "unknown-gate-table"],
)
def test_runner_settings_reject_unknown_or_invalid_keys(
    write_library: Any, toml: str, message: str
) -> None:
    """A typo or a bad value in [gates] is a V106 config error naming the key."""
    with pytest.raises(LibraryError, match=r"invalid settings in \[gates\]") as info:
        runner_settings(configured(write_library, toml))
    assert message in str(info.value)
    assert {d.code for d in info.value.diagnostics} == {"V106"}


# The verdict ----------------------------------------------------------------------------


def test_all_passed_is_go() -> None:
    """Every gate PASSED and nothing blocking: GO."""
    verdict = decide([passed("xml"), passed("docs")], RunnerSettings())
    assert verdict.go
    assert verdict.label == "GO"
    assert verdict.reasons == ("2 of 2 gates PASSED, no blocking finding",)


def test_a_failed_gate_is_no_go_with_the_failing_figure() -> None:
    """A FAILED gate makes NO-GO; the reason names the figure and its threshold."""
    failed = GateResult("tests", "Tests", Status.FAILED,
                        metrics=(Metric("pass rate", 80.0, 100.0, "%"),
                                 Metric("cases", 12, 1)))
    verdict = decide([passed("xml"), failed], RunnerSettings())
    assert not verdict.go
    assert verdict.label == "NO-GO"
    assert verdict.reasons == ("tests FAILED: pass rate = 80% (threshold >= 100%)",)


def test_a_failed_gate_without_figures_gives_its_first_detail() -> None:
    """A FAILED gate without a failing figure explains itself with its first detail."""
    failed = GateResult("xml", "X", Status.FAILED, details=("2 documents do not parse",))
    assert decide([failed], RunnerSettings()).reasons == ("xml FAILED: 2 documents do not parse",)
    bare = GateResult("xml", "X", Status.FAILED)
    assert decide([bare], RunnerSettings()).reasons == ("xml FAILED: the gate failed",)


def test_a_blocking_finding_is_no_go_even_when_the_gate_passed() -> None:
    """An unaccepted error finding blocks the release whatever the gate's status."""
    result = passed("security", findings=(finding(),))
    verdict = decide([result], RunnerSettings())
    assert not verdict.go
    assert verdict.reasons == ("security has 1 blocking finding",)


def test_a_failed_gate_counts_its_blocking_findings() -> None:
    """A FAILED gate with errors says how many block."""
    result = GateResult("security", "S", Status.FAILED, findings=(finding(), finding("S2")))
    assert decide([result], RunnerSettings()).reasons == (
        "security FAILED: 2 blocking findings",)


def test_an_accepted_error_does_not_block() -> None:
    """An error accepted by the baseline with a reason is not blocking."""
    risk = finding()
    result = passed("security", findings=(risk,),
                    accepted=(AcceptedRisk(risk, "test fixture key", "baseline"),))
    assert decide([result], RunnerSettings()).go
    assert runner.unaccepted_blocking(result) == ()


def test_warnings_do_not_block() -> None:
    """Warnings and info findings are known issues, not blockers."""
    result = passed("docs", findings=(finding(severity=Severity.WARNING),
                                      finding(severity=Severity.INFO)))
    assert decide([result], RunnerSettings()).go


def test_partial_blocks_by_default_and_passes_when_allowed() -> None:
    """PARTIAL is NO-GO unless [gates] allow_partial = true; the reason names the figure."""
    partial = GateResult("perf", "Perf", Status.PARTIAL,
                         metrics=(Metric("render p95", 1.5, 1.0, "ms", False, 2.0),))
    strict = decide([partial], RunnerSettings())
    assert not strict.go
    assert strict.reasons == (
        "perf PARTIAL and allow_partial = false: render p95 = 1.5 ms (threshold <= 1 ms)",)
    lenient = decide([partial], RunnerSettings(allow_partial=True))
    assert lenient.go
    assert lenient.reasons[1].startswith("perf PARTIAL, allowed by allow_partial = true")
    bare = GateResult("perf", "Perf", Status.PARTIAL)
    assert "a figure misses its threshold" in decide([bare], RunnerSettings()).reasons[0]


def test_skipped_is_go_with_its_reason() -> None:
    """A SKIPPED gate does not block; the decision says why it was skipped."""
    skipped = GateResult("docs", "Docs", Status.SKIPPED, details=("nothing to check",))
    verdict = decide([passed("xml"), skipped], RunnerSettings())
    assert verdict.go
    assert verdict.reasons == ("1 of 2 gates PASSED, no blocking finding",
                               "docs SKIPPED: nothing to check")


def test_no_gate_at_all_is_no_go() -> None:
    """A run of no gates cannot declare a library ready."""
    assert decide([], RunnerSettings()).reasons == ("no gate ran",)
    assert not decide([], RunnerSettings()).go


# Helpers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (100.0, "%", "100%"),
        (92.456, "%", "92.46%"),
        (0.2134, "ms", "0.213 ms"),
        (1234.56, "ms", "1234.6 ms"),
        (3, "", "3"),
        (float("nan"), "", "nan"),
        (float("inf"), "s", "inf s"),
    ],
)
def test_figure_formats_values_for_people(value: float, unit: str, text: str) -> None:
    """Figures are short: whole numbers without decimals, small ones to 3 digits."""
    assert figure(value, unit) == text


def test_library_info_counts_what_the_report_states(write_library: Any) -> None:
    """Library facts: name, hash, commands, components, categories, test files, problems."""
    lib = load_library(write_library({
        "commands/a/hello.md": COMMAND.replace("{{name}}", "me"),
        "commands/b/broken.md": "no front matter\n",
        "components/g/part.md": "---\ndescription: part\n---\nx\n",
    }))
    info = LibraryInfo.of(lib)
    assert (info.commands, info.components, info.categories, info.test_files) == (1, 1, 1, 0)
    assert info.load_errors == 1
    assert info.content_hash == lib.content_hash
    assert Path(info.path) == lib.root


def test_settings_model_prefers_settings_and_refuses_to_guess() -> None:
    """A module's SETTINGS names its model; with several candidates and none named, none."""
    import types

    module = types.ModuleType("fake_settings_module")

    class One(GateSettings):
        pass

    class Two(GateSettings):
        pass

    One.__module__ = Two.__module__ = module.__name__
    module.One, module.Two = One, Two  # type: ignore[attr-defined]
    assert settings_model(module) is None
    module.SETTINGS = Two  # type: ignore[attr-defined]
    assert settings_model(module) is Two


def test_the_prompt_tests_are_read_once_for_all_gates(
    library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tests gate and the perf gate share one reading of `tests/`."""
    from tallinn.library import prompttests

    reads = count_calls(monkeypatch, prompttests, "load_tests")
    readiness = run_gates(library, ["tests", "perf"])
    assert [r.gate for r in readiness.results] == ["tests", "perf"]
    assert reads() == 1
