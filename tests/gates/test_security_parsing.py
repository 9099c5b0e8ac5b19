"""What the security rules read code with: the shell reader, Python calls, fences, permissions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tallinn.gates.rules.security import CHECKS, AuditFile, Kind
from tallinn.gates.rules.security._permissions import Tool, allowed_tools, permits
from tallinn.gates.rules.security._python import analyse
from tallinn.gates.rules.security._shell import parse, short_flags
from tallinn.gates.rules.security._source import Snippet


def commands(script: str) -> list[tuple[str, list[str]]]:
    return [(c.name, [a.text for a in c.args]) for c in parse(script).commands()]


@pytest.mark.parametrize(("script", "expected"), [
    ('echo "rm -rf /" # rm -rf /', [("echo", ["rm -rf /"])]),
    ("echo a#b", [("echo", ["a#b"])]),
    ("curl https://x/#frag | sh", [("curl", ["https://x/#frag"]), ("sh", [])]),
    ("rm -rf \\\n  /tmp/x", [("rm", ["-rf", "/tmp/x"])]),
    ("echo a\\ b \\$HOME", [("echo", ["a b", "$HOME"])]),
    ("echo \"a \\\"b\\\" \\x\"", [("echo", ['a "b" \\x'])]),
    ("echo 'it''s'", [("echo", ["its"])]),
    ("echo 'unclosed", [("echo", ["unclosed"])]),
    ("ls -la 2>&1 >out.log | tee all.log", [("ls", ["-la"]), ("tee", ["all.log"])]),
    ("cat <<EOF > x\nrm -rf /\nEOF\nls", [("cat", []), ("ls", [])]),
    ("cat <<-'END'\n\trm -rf /\n\tEND\nls", [("cat", []), ("ls", [])]),
    ("if [ -d x ]; then rm -rf \"$D\"; fi", [("[", ["-d", "x", "]"]), ("rm", ["-rf", "$D"])]),
    ("for f in *.log; do rm \"$f\"; done", [("rm", ["$f"])]),
    ("sudo -u deploy -E env -u HOME A=1 nohup nice -n 5 timeout 10 command -p ./run.sh x",
     [("run.sh", ["x"])]),
    ("X=1 Y=2", [("", [])]),
    ("echo $((1 + 2))", [("echo", ["$"]), ("1", ["+", "2"])]),
])
def test_shell_words_and_commands(script: str, expected: list[tuple[str, list[str]]]) -> None:
    assert commands(script) == expected


def test_substitutions_and_sh_c_are_read_as_scripts() -> None:
    """Command substitutions outside single quotes, and `sh -c` scripts, are commands too."""
    assert [c.name for c in parse("x=$(rm -rf $HOME)").commands()] == ["", "rm"]
    assert [c.name for c in parse("echo `curl x`").commands()] == ["echo", "curl"]
    assert [c.name for c in parse('echo "`date` and $(whoami)"').commands()] == [
        "echo", "date", "whoami"]
    assert [c.name for c in parse("echo '$(rm -rf /)'").commands()] == ["echo"]
    assert [c.name for c in parse("bash -c 'curl x | sh'").commands()] == [
        "bash", "curl", "sh"]
    assert [c.name for c in parse("bash -xc 'curl x'").commands()] == ["bash", "curl"]
    assert [c.name for c in parse('sh -c "$(curl -fsSL https://x)"').commands()] == [
        "sh", "$(curl -fsSL https://x)", "curl"]


def test_offsets_point_into_the_script() -> None:
    script = "cd build && sudo rm -rf $OUT"
    rm = list(parse(script).commands())[1]
    assert script[rm.offset:].startswith("sudo rm")
    nested = list(parse("bash -c 'curl x | sh'").commands())
    assert nested[1].offset == nested[0].args[1].start


def test_short_flags_stop_at_an_option_that_takes_a_value() -> None:
    assert short_flags("-fsSLk") == "fsSLk"
    assert short_flags("-XPOST", "X") == "X"
    assert short_flags("--insecure") == ""
    assert short_flags("file") == ""


def python(code: str) -> AuditFile:
    return AuditFile("commands/a/x.md", f"---\ndescription: x\n---\n```python\n{code}```\n",
                     Kind.COMMAND)


def test_python_calls_are_resolved_through_imports() -> None:
    file = python("import subprocess as sp\nfrom os import system as run\nsp.run(c, shell=True)\n"
                  "run('ls')\n(a or b)()\nf()()\nx().eval()\n")
    snippet = next(file.snippets(frozenset({"python"})))
    code = analyse(snippet)
    assert code is analyse(snippet)  # cached
    assert sorted(c.name for c in code.calls) == [
        "?.eval", "f", "os.system", "subprocess.run", "x"]
    run = next(c for c in code.calls if c.name == "subprocess.run")
    assert run.keywords == {"shell": "True"}
    assert snippet.text[run.offset:].startswith("sp.run")


def test_python_that_does_not_parse_is_read_by_tokens() -> None:
    snippet = next(python("def f(:\n    x().eval(1)\n    yaml.load(a, Loader=L, b=[1, 2])\n"
                          "    def eval(x): pass\n    'eval(no)'\n").snippets(
        frozenset({"python"})))
    code = analyse(snippet)
    assert code.error is not None
    assert "invalid syntax" in code.error
    calls = {c.name: c for c in code.calls}
    assert "eval" not in calls
    assert "?.eval" in calls
    assert calls["yaml.load"].args == ("a",)
    assert calls["yaml.load"].keywords == {"Loader": "L", "b": "[1,2]"}


def test_python_with_a_null_byte_or_a_wide_character_is_handled() -> None:
    snippet = Snippet("python", "x = 'é'; eval(y)\0", (0,))
    assert [c.name for c in analyse(snippet).calls] == ["eval"]
    wide = next(python("s = 'ééé'; eval(y)\n").snippets(frozenset({"python"})))
    [call] = [c for c in analyse(wide).calls if c.name == "eval"]
    assert wide.text[call.offset:].startswith("eval(")


def test_fences_follow_commonmark_but_accept_any_indentation() -> None:
    text = ("---\ndescription: x\n---\n````markdown\n```python\neval(x)\n```\n````\n"
            "~~~ {.python}\neval(y)\n~~~\n``` not a fence ` here\n        ```sh\n"
            "        rm -rf /\n```python\n   ```\n```python\nnever closed\n")
    file = AuditFile("commands/a/x.md", text, Kind.COMMAND)
    assert [(f.lang, f.open_line, f.close_line) for f in file.fences] == [
        ("markdown", 4, 8), ("python", 9, 11), ("sh", 13, 16), ("python", 17, 19)]
    assert file.fences[2].snippet.text == "rm -rf /\n```python"
    assert AuditFile("x.md", "no fences", Kind.COMMAND).fences == ()


def test_transcripts_read_only_the_commands() -> None:
    text = "```console\n$ ls\nfile  rm -rf /\n% whoami\n```\n```pycon\n>>> eval(x)\n1\n```\n"
    file = AuditFile("commands/a/x.md", text, Kind.COMMAND)
    assert file.fences[0].snippet.text == "ls\n\nwhoami"
    assert file.fences[1].snippet.text == "eval(x)\n"
    plain = AuditFile("commands/a/x.md", "```console\nls -la\n```\n", Kind.COMMAND)
    assert plain.fences[0].snippet.text == "ls -la"


def test_kinds_of_files() -> None:
    assert Kind.of("commands/a/x.md") is Kind.COMMAND
    assert Kind.of("components/g/x.md") is Kind.COMPONENT
    assert Kind.of("commands/README.md") is Kind.OTHER
    assert Kind.of("tests/x.md") is Kind.OTHER
    assert Kind.of("tallinn.toml") is Kind.OTHER
    assert repr(AuditFile("tallinn.toml", "", Kind.OTHER)) == "AuditFile('tallinn.toml', other)"
    assert AuditFile("tallinn.toml", "", Kind.OTHER).front_matter is None


@pytest.mark.parametrize(("spec", "command", "allowed"), [
    ("git status:*", "git status", True),
    ("git status:*", "git status --short", True),
    ("git status:*", "git statusx", False),
    ("git status", "git status", True),
    ("git status", "git status -s", False),
    ("ls *", "ls -la", True),
    ("npm run test*", "npm run test:unit", True),
    ("*", "anything", True),
    (":*", "anything", True),
])
def test_bash_permission_patterns(spec: str, command: str, allowed: bool) -> None:
    assert permits(spec, command) is allowed


@pytest.mark.parametrize(("front", "expected"), [
    ("allowed-tools: Read, Bash(git diff:*, git log:*), Bash",
     ["Read", "Bash(git diff:*, git log:*)", "Bash"]),
    ("allowed-tools:\n  - Read\n  - Bash(*)", ["Read", "Bash(*)"]),
    ("allowed-tools: 3", ["3"]),
    ("allowed-tools:", []),
])
def test_allowed_tools_entries(front: str, expected: list[str]) -> None:
    file = AuditFile("commands/a/x.md", f"---\ndescription: x\n{front}\n---\nbody\n",
                     Kind.COMMAND)
    tools = allowed_tools(file)
    assert tools is not None
    assert [t.text for t in tools] == expected
    for tool in tools:
        assert file.text[tool.offset:].startswith(tool.text)


def test_tools_know_their_bash_pattern() -> None:
    assert Tool("Bash", 0).unrestricted
    assert Tool("Bash( * )", 0).unrestricted
    assert Tool("Bash(git diff:*)", 0).bash == "git diff:*"
    assert not Tool("BashOutput", 0).unrestricted
    assert Tool("Read", 0).bash is None


TRICKY = st.text(
    alphabet=st.sampled_from([*"ab $(){}[]<>|&;'\"`\\#!@~/.-=:*?\n\t_0",
                              "\u200b", "\u202e", "\U000e0041", "\ufe0f", "é"]),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(body=TRICKY, lang=st.sampled_from(["bash", "python", "console", "pycon", ""]),
       front=st.sampled_from(["", "---\ndescription: x\nallowed-tools: Bash(a:*)\n---\n"]))
def test_no_text_makes_a_rule_crash(body: str, lang: str, front: str) -> None:
    """Whatever a file holds, every rule returns findings at positions inside the file."""
    text = f"{front}{body}\n```{lang}\n{body}\n```\n!`{body.splitlines()[0] if body else 'x'}`\n"
    for kind, path in ((Kind.COMMAND, "commands/a/x.md"), (Kind.OTHER, "tests/x.yaml")):
        file = AuditFile(path, text, kind)
        for check in CHECKS.values():
            for finding in check(file):
                assert 1 <= finding.line <= len(file.lines)
                assert finding.col >= 1
