"""Small parts of the server on their own: config, rate limiter, URIs, events, logging."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import pytest
from tests.serve.serve_helpers import FakeStore, metric_value

from tallinn.serve import (
    ConfigError,
    EventRecorder,
    JsonFormatter,
    LazyStore,
    McpGuard,
    Metrics,
    RateLimit,
    RateLimiter,
    ServeConfig,
    UriError,
    _http,
    configure_logging,
    parse_rate,
    parse_uri,
    resolve,
)
from tallinn.serve._ratelimit import retry_after
from tallinn.serve._reload import LibraryFilter

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("text", "rate", "burst"),
    [
        ("20/s", 20, 40),
        ("600/m", 10, 20),
        ("5", 5, 10),
        (" 1.5 / second ", 1.5, 3),
        ("1/min", 1 / 60, 1),
    ],
)
def test_parse_rate(text: str, rate: float, burst: float) -> None:
    limit = parse_rate(text)
    assert limit is not None
    assert limit.rate == pytest.approx(rate)
    assert limit.burst == pytest.approx(burst)


def test_parse_rate_off_and_errors() -> None:
    assert parse_rate("off") is None
    assert parse_rate("0") is None
    assert str(parse_rate("2/s", 5)) == "2/s (burst 5)"
    for bad in ("fast", "10/h", "-1/s", "0.0/s"):
        with pytest.raises(ConfigError):
            parse_rate(bad)
    with pytest.raises(ConfigError, match="burst"):
        parse_rate("1/s", 0.5)


def test_resolve_defaults_and_precedence() -> None:
    """Options beat [serve]; production turns the rate limit on by default."""
    plain = resolve({})
    assert plain.rate_limit is None
    assert plain.max_body_bytes == 1024 * 1024
    prod = resolve({}, production=True)
    assert prod.rate_limit == RateLimit(20, 40)
    assert prod.json_logs
    table = {"rate_limit": "3/s", "burst": 9, "max_body_bytes": 10, "allowed_hosts": "a.example"}
    from_table = resolve(table)
    assert from_table.rate_limit == RateLimit(3, 9)
    assert from_table.max_body_bytes == 10
    assert from_table.allowed_hosts == ("a.example",)
    from_options = resolve(table, rate_limit="off", max_body_bytes=20)
    assert from_options.rate_limit is None
    assert from_options.max_body_bytes == 20


def test_access_log_is_off_unless_asked_for() -> None:
    """No line per request by default; [serve] access_log or the option turns it on."""
    assert resolve({}).access_log is False
    assert resolve({}, production=True).access_log is False
    assert resolve({"access_log": True}).access_log is True
    assert resolve({"access_log": True}, access_log=False).access_log is False
    with pytest.raises(ConfigError, match="access_log"):
        resolve({"access_log": "yes"})


@pytest.mark.parametrize(
    "table",
    [
        {"burst": "many"},
        {"rate_limit": ["1/s"]},
        {"max_body_bytes": "1MiB"},
        {"max_body_bytes": 0},
        {"allowed_hosts": [1, 2]},
    ],
)
def test_resolve_rejects_bad_tables(table: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        resolve(table)


def test_host_patterns() -> None:
    """Loopback is always allowed; the bind host and allowed hosts are added with any port."""
    config = ServeConfig(host="10.1.2.3", allowed_hosts=("https://p.example/", "q.example:8443"))
    hosts = config.host_patterns()
    assert "127.0.0.1:*" in hosts
    assert "localhost" in hosts
    assert "10.1.2.3:*" in hosts
    assert "p.example" in hosts
    assert "p.example:*" in hosts
    assert "q.example:8443" in hosts
    assert "q.example:8443:*" not in hosts
    assert "http://p.example:*" in config.origin_patterns()
    assert "0.0.0.0" not in ServeConfig(host="0.0.0.0").host_patterns()


def test_rate_limiter_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(RateLimit(rate=2, burst=2), clock=lambda: now[0])
    assert [limiter.take("a"), limiter.take("a")] == [0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # buckets are per client
    now[0] = 0.5
    assert limiter.take("a") == 0.0
    assert retry_after(0.2) == "1"
    assert retry_after(2.1) == "3"


def test_rate_limiter_forgets_idle_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tallinn.serve._ratelimit.MAX_CLIENTS", 3)
    now = [0.0]
    limiter = RateLimiter(RateLimit(rate=1, burst=1), clock=lambda: now[0])
    for client in "abc":
        limiter.take(client)
    now[0] = 10.0
    limiter.take("d")
    assert set(limiter._buckets) == {"d"}


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("tallinn://components/reporting/findings", ("components", "reporting/findings")),
        ("tallinn://components/a/b/c", ("components", "a/b/c")),
        ("tallinn://commands/code-review", ("commands", "code-review")),
        ("tallinn://commands/code%2Dreview", ("commands", "code-review")),
    ],
)
def test_parse_uri(uri: str, expected: tuple[str, str]) -> None:
    assert parse_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "traversal"),
    [
        ("tallinn://components/a/../b", True),
        ("tallinn://components/a%2F..%2Fb", True),
        ("tallinn://commands/x%00", True),
        ("~/.ssh/id_rsa", True),
        ("tallinn://components/a//b", True),
        ("tallinn://x", False),
        ("tallinn://components/a/", False),
        ("tallinn://" + "a" * 3000, False),
    ],
)
def test_parse_uri_refuses(uri: str, traversal: bool) -> None:
    with pytest.raises(UriError) as caught:
        parse_uri(uri)
    assert caught.value.traversal is traversal


async def test_event_recorder_writes_in_the_background() -> None:
    """Events are counted at once and written by the background task, one per client a second."""
    store = FakeStore()
    metrics = Metrics()
    recorder = EventRecorder(store, metrics)
    async with anyio.create_task_group() as tg:
        await tg.start(recorder.run)
        recorder.record("auth_failure", "ip:1", "no token")
        recorder.record("auth_failure", "ip:1", "no token")  # throttled for the store
        recorder.record("auth_failure", "ip:2", "no token")
        with anyio.fail_after(5):
            while len(store.events) < 2:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert store.events == [
        ("auth_failure", "ip:1", "no token"),
        ("auth_failure", "ip:2", "no token"),
    ]
    text = metrics.render().decode()
    assert metric_value(text, "tallinn_auth_failures_total") == 3
    metrics.security_event("something_else")
    assert (
        metric_value(metrics.render().decode(), "tallinn_security_events_total", {"kind": "other"})
        == 1
    )


async def test_event_recorder_survives_store_failures(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(FakeStore):
        def record_event(self, kind: str, *, client: str | None = None, detail: str = "") -> None:
            raise RuntimeError("database gone")

    recorder = EventRecorder(Broken(), Metrics())
    recorder.record("rate_limited", "ip:9")  # no background task: written at once, best effort
    assert "could not store security event rate_limited" in caplog.text


async def test_event_recorder_drains_on_shutdown() -> None:
    store = FakeStore()
    recorder = EventRecorder(store, Metrics())
    async with anyio.create_task_group() as tg:
        await tg.start(recorder.run)
        for n in range(5):
            recorder.record("rate_limited", f"ip:{n}")
        tg.cancel_scope.cancel()
    assert len(store.events) == 5


def test_request_metrics_count_every_request() -> None:
    """Repeated requests add up under one series; unknown methods count as `other`."""
    metrics = Metrics()
    for _ in range(3):
        metrics.observe_request("prompts/get", "code-review", "ok", 0.002)
    metrics.observe_request("made/up", "", "error", 0.001)
    text = metrics.render().decode()
    labels = {"method": "prompts/get", "prompt": "code-review", "outcome": "ok"}
    assert metric_value(text, "tallinn_mcp_requests_total", labels) == 3
    assert metric_value(text, "tallinn_mcp_requests_total", {"method": "other"}) == 1
    count = "tallinn_mcp_request_duration_seconds_count"
    assert metric_value(text, count, {"method": "prompts/get"}) == 3


def test_guard_builds_one_principal_per_token_name() -> None:
    """The principal the SDK binds sessions to is built once per token name."""
    guard = McpGuard(
        lambda *a: None,  # type: ignore[arg-type,return-value]
        config=ServeConfig(production=True),
        store=FakeStore(),
        recorder=EventRecorder(FakeStore(), Metrics()),
    )
    first = guard._user("ci-bot")
    assert guard._user("ci-bot") is first
    assert first.access_token.client_id == "ci-bot"
    assert guard._user("alice").access_token.client_id == "alice"


def test_lazy_store_opens_once_at_first_use() -> None:
    """LazyStore opens the real store at its first use, once, and closes only what it opened."""
    opened: list[FakeStore] = []

    def opener() -> FakeStore:
        opened.append(FakeStore({"t": "ci"}))
        return opened[-1]

    unused = LazyStore(opener)
    unused.close()
    assert opened == []
    store = LazyStore(opener)
    assert not store.opened
    store.record_event("path_traversal", client="stdio", detail="../x")
    assert store.verify_token("t") == "ci"
    assert store.ping() is True
    store.close()
    assert len(opened) == 1
    assert opened[0].events == [("path_traversal", "stdio", "../x")]
    assert opened[0].closed


async def test_guard_trusts_a_verified_token_for_one_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A good token is asked of the store once a second at most; a wrong one every time."""
    asked: list[str] = []

    class Counting(FakeStore):
        def verify_token(self, token: str) -> str | None:
            asked.append(token)
            return super().verify_token(token)

    clock = [100.0]
    monkeypatch.setattr(_http.time, "monotonic", lambda: clock[0])
    store = Counting({"good": "ci-bot"})
    guard = McpGuard(
        lambda *a: None,  # type: ignore[arg-type,return-value]
        config=ServeConfig(production=True),
        store=store,
        recorder=EventRecorder(store, Metrics()),
    )
    assert [await guard._verify("good") for _ in range(3)] == ["ci-bot"] * 3
    assert [await guard._verify("wrong") for _ in range(2)] == [None, None]
    assert asked == ["good", "wrong", "wrong"]
    clock[0] += 1.5
    store.tokens.clear()  # revoked meanwhile
    assert await guard._verify("good") is None
    assert asked[-1] == "good"


def test_json_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """Production logs are one JSON object per line, with extra fields and exceptions."""
    configure_logging(json_lines=True)
    log = logging.getLogger("tallinn.test")
    log.warning("hello %s", "world", extra={"client": "ip:1", "obj": object()})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = capsys.readouterr().err.strip().splitlines()
    first, second = (json.loads(line) for line in lines[-2:])
    assert first["message"] == "hello world"
    assert first["level"] == "warning"
    assert first["client"] == "ip:1"
    assert first["obj"].startswith("<object")
    assert "ValueError: boom" in second["exception"]
    configure_logging(json_lines=False)
    logging.getLogger("tallinn.test").info("plain")
    assert "INFO tallinn.test: plain" in capsys.readouterr().err
    # The SDK's INFO line after every stateless request stays out.
    logging.getLogger("mcp.server.streamable_http").info("Terminating session: None")
    assert capsys.readouterr().err == ""
    assert isinstance(JsonFormatter().format(logging.makeLogRecord({"msg": "x"})), str)


def test_library_filter(tmp_path: Any) -> None:
    """The watcher reacts to Markdown, tallinn.toml and folders, never to hidden files."""
    from watchfiles import Change

    keep = LibraryFilter(tmp_path)
    assert keep(Change.modified, str(tmp_path / "commands/a/x.md"))
    assert keep(Change.added, str(tmp_path / "tallinn.toml"))
    assert keep(Change.deleted, str(tmp_path / "commands/a"))
    assert not keep(Change.modified, str(tmp_path / ".tallinn/state.db"))
    assert not keep(Change.deleted, str(tmp_path / ".tallinn/state.db-journal"))
    assert not keep(Change.modified, str(tmp_path / "tests/x.yaml"))
    assert not keep(Change.modified, str(tmp_path / "commands/a/.x.md.swp"))
    assert not keep(Change.modified, "/elsewhere/x.md")
    assert not keep(Change.modified, str(tmp_path))


def test_public_names_are_sorted_and_importable() -> None:
    import tallinn.serve as serving

    assert serving.__all__ == sorted(serving.__all__)
    for name in serving.__all__:
        assert getattr(serving, name) is not None


def test_json_log_lines_carry_the_release_and_the_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every JSON line names the release served; a line written while a request is answered
    names that request's id and the release that answered it."""
    from tallinn.serve._logging import REQUEST, ServedContext, next_request_id

    configure_logging(json_lines=True)
    log = logging.getLogger("tallinn.test")
    before = ServedContext.serving
    ServedContext.serving = "7"
    try:
        log.info("between requests")
        first_id, second_id = next_request_id(), next_request_id()
        token = REQUEST.set((first_id, "8"))
        try:
            log.info("in a request")
        finally:
            REQUEST.reset(token)
    finally:
        ServedContext.serving = before
        configure_logging(json_lines=False)
    outside, inside = (json.loads(line) for line in capsys.readouterr().err.splitlines()[-2:])
    assert (outside["release"], "request_id" in outside) == ("7", False)
    assert (inside["release"], inside["request_id"]) == ("8", first_id)
    assert first_id != second_id
