"""Load generators for bench_serve.py, run in a process of their own; JSON results on stdout.

    python benchmarks/loadgen.py open URL --body JSON --clients 200 --rate 1 --seconds 15
    python benchmarks/loadgen.py closed URL --body JSON --connections 50 --seconds 10

`--body` is the JSON-RPC request with `__ID__` where its id goes: each request gets its own.

`open`: each of `clients` clients sends `rate` requests a second at fixed times (spread evenly
over the second), whether or not its earlier requests were answered, so a slow server cannot
slow the load down. Latency is counted from the time a request was due, not from when it went
out, so a generator that falls behind shows up as latency too (and as `max_lag_ms`).
`closed`: `connections` workers each send the next request as soon as the last is answered
(what wrk does; the fallback when wrk is not installed).

`--stateful` opens a session per client (initialize, then notifications/initialized) and sends
its Mcp-Session-Id. A response counts as an error unless it is a 200 holding a JSON-RPC result.
Only loopback URLs are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
from typing import Any
from urllib.parse import urlsplit

import httpx2

PROTOCOL = "2025-11-25"
TIMEOUT = 5.0
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def headers(token: str | None) -> dict[str, str]:
    found = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": PROTOCOL,
    }
    if token:
        found["Authorization"] = f"Bearer {token}"
    return found


def initialize_body(client: str = "bench") -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": client, "version": "0"},
        },
    }


async def open_session(client: httpx2.AsyncClient, url: str) -> str:
    """Initialize a session on `client` and return its id (also set on the client's headers)."""
    response = await client.post(url, json=initialize_body())
    response.raise_for_status()
    session = response.headers["mcp-session-id"]
    client.headers["Mcp-Session-Id"] = session
    notified = await client.post(
        url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
    )
    notified.raise_for_status()
    return session


class Bodies:
    """Given `{"id":__ID__,...}`, make `{"id":1,...}`, `{"id":2,...}`, ... as bytes."""

    def __init__(self, template: str) -> None:
        if "__ID__" not in template:
            raise ValueError("the body needs __ID__ where the request id goes")
        self.head, self.tail = template.split("__ID__", 1)
        self.ids = itertools.count(1)

    def __call__(self) -> bytes:
        return f"{self.head}{next(self.ids)}{self.tail}".encode()


def answered(response: httpx2.Response) -> bool:
    return response.status_code == 200 and b'"result"' in response.content


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def summary(latencies: list[float], errors: int, wall: float, **extra: Any) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "requests": len(latencies) + errors,
        "ok": len(latencies),
        "errors": errors,
        "seconds": round(wall, 3),
        "rps": round(len(latencies) / wall, 1) if wall else 0.0,
        "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
        "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2) if ordered else float("nan"),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2) if ordered else float("nan"),
        **extra,
    }


async def open_loop(args: argparse.Namespace) -> dict[str, Any]:
    body = Bodies(args.body)
    clients = [
        httpx2.AsyncClient(headers=headers(args.token), timeout=TIMEOUT)
        for _ in range(args.clients)
    ]
    latencies: list[float] = []
    errors = 0
    lag = 0.0
    try:
        if args.stateful:
            gate = asyncio.Semaphore(20)

            async def start(client: httpx2.AsyncClient) -> None:
                async with gate:
                    await open_session(client, args.url)

            await asyncio.gather(*(start(c) for c in clients))
        # Warm every client's connection so the first second measures requests, not connects.
        await asyncio.gather(*(c.post(args.url, content=body()) for c in clients))

        loop = asyncio.get_running_loop()
        interval = 1.0 / args.rate
        begin = loop.time() + 0.2
        pending: set[asyncio.Task[None]] = set()

        async def one(client: httpx2.AsyncClient, due: float) -> None:
            nonlocal errors, lag
            lag = max(lag, loop.time() - due)
            try:
                response = await client.post(args.url, content=body())
                ok = answered(response)
            except httpx2.HTTPError:
                ok = False
            if ok:
                latencies.append(loop.time() - due)
            else:
                errors += 1

        async def drive(index: int, client: httpx2.AsyncClient) -> None:
            offset = interval * index / len(clients)
            for k in range(int(args.seconds * args.rate)):
                due = begin + offset + k * interval
                await asyncio.sleep(max(0.0, due - loop.time()))
                task = asyncio.create_task(one(client, due))  # never awaited here: open loop
                pending.add(task)
                task.add_done_callback(pending.discard)

        await asyncio.gather(*(drive(i, c) for i, c in enumerate(clients)))
        if pending:
            await asyncio.wait(pending, timeout=TIMEOUT + 1)
        wall = loop.time() - begin
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    result = summary(latencies, errors, wall, max_lag_ms=round(lag * 1000, 2))
    result["scheduled"] = args.clients * int(args.seconds * args.rate)
    return result


async def closed_loop(args: argparse.Namespace) -> dict[str, Any]:
    body = Bodies(args.body)
    limits = httpx2.Limits(max_connections=args.connections)
    latencies: list[float] = []
    errors = 0
    async with httpx2.AsyncClient(headers=headers(args.token), timeout=TIMEOUT, limits=limits) as c:
        if args.stateful:
            await open_session(c, args.url)
        loop = asyncio.get_running_loop()
        end = loop.time() + args.seconds

        async def worker() -> None:
            nonlocal errors
            while (now := loop.time()) < end:
                try:
                    ok = answered(await c.post(args.url, content=body()))
                except httpx2.HTTPError:
                    ok = False
                if ok:
                    latencies.append(loop.time() - now)
                else:
                    errors += 1

        begin = loop.time()
        await asyncio.gather(*(worker() for _ in range(args.connections)))
        wall = loop.time() - begin
    return summary(latencies, errors, wall)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["open", "closed"])
    parser.add_argument("url")
    parser.add_argument("--body", required=True, help="the JSON-RPC request to send")
    parser.add_argument("--token", default=None)
    parser.add_argument("--stateful", action="store_true")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=200, help="open: clients")
    parser.add_argument("--rate", type=float, default=1.0, help="open: requests/s per client")
    parser.add_argument("--connections", type=int, default=50, help="closed: connections")
    args = parser.parse_args()
    if urlsplit(args.url).hostname not in LOOPBACK:
        parser.error("only loopback URLs (127.0.0.1, localhost, ::1)")
    if not 0 < args.seconds <= 600 or not 0 < args.clients <= 2000 or not 0 < args.rate <= 100:
        parser.error("keep --seconds <= 600, --clients <= 2000, --rate <= 100")
    runner = open_loop if args.mode == "open" else closed_loop
    result = asyncio.run(runner(args))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
