"""Cache hooks: redis-py hits and misses by command and key prefix (a real redis-server)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_lib
import redis.asyncio as redis_asyncio

import perfpilot.instrument
from perfpilot.app_records import AppSnapshot
from perfpilot.instrument import cache, context
from perfpilot.instrument.context import RequestContext, active, current_request, perf
from perfpilot.instrument.flusher import Flusher
from perfpilot.instrument.recorder import NO_ROUTE, Recorder
from tests.redis_server import RedisServer


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    assert cache.install() == ["redis"]
    rec = Recorder("svc", sample_rate=0.0, seed=1)
    active.recorder = rec
    try:
        yield rec
    finally:
        active.recorder = None


def snapshot(rec: Recorder) -> AppSnapshot:
    out: list[AppSnapshot] = []
    Flusher(rec, out.append, lambda sql, db: (sql, sql)).flush()
    assert len(out) == 1
    return out[0]


def counts(snap: AppSnapshot) -> dict[tuple[str, str, str, str], tuple[int, int]]:
    """(cache, command, prefix, route) -> (hits, misses)."""
    return {(r.cache, r.command, r.prefix, r.route): (r.hits, r.misses) for r in snap.caches}


def seed(server: RedisServer) -> None:
    server.command("SET", "user:1:profile", "alice")
    server.command("SET", "user:2:profile", "")
    server.command("SET", "session:abc", "s")
    server.command("HSET", "cart:9", "apples", "3")


EXPECTED = {
    ("redis", "get", "user", NO_ROUTE): (2, 1),  # "" is a hit: the key exists
    ("redis", "mget", "user", NO_ROUTE): (1, 1),
    ("redis", "mget", "session", NO_ROUTE): (1, 0),
    ("redis", "mget", "page", NO_ROUTE): (0, 1),
    ("redis", "hget", "cart", NO_ROUTE): (1, 1),
    ("redis", "hmget", "cart", NO_ROUTE): (1, 2),
    ("redis", "hgetall", "cart", NO_ROUTE): (1, 1),
    ("redis", "exists", "user", NO_ROUTE): (1, 1),
    ("redis", "getex", "session", NO_ROUTE): (1, 0),
}


def sync_lookups(client: Any) -> None:
    assert client.get("user:1:profile") == b"alice"
    assert client.get("user:2:profile") == b""
    assert client.get("user:3:profile") is None
    assert client.mget("user:1:profile", "user:404", "session:abc", "page:home") == [
        b"alice", None, b"s", None,
    ]  # fmt: skip
    assert client.hget("cart:9", "apples") == b"3"
    assert client.hget("cart:9", "pears") is None
    assert client.hmget("cart:9", ["apples", "pears", "plums"]) == [b"3", None, None]
    assert client.hgetall("cart:9") == {b"apples": b"3"}
    assert client.hgetall("cart:10") == {}
    assert client.exists("user:1:profile", "user:nope") == 1
    assert client.getex("session:abc", ex=60) == b"s"
    # writes, pipelines and other commands are not lookups
    client.set("user:4:profile", "x")
    client.delete("user:4:profile")
    client.incr("counter")
    pipe = client.pipeline()
    pipe.get("user:1:profile").get("user:404")
    assert pipe.execute() == [b"alice", None]


async def async_lookups(client: Any) -> None:
    assert await client.get("user:1:profile") == b"alice"
    assert await client.get("user:2:profile") == b""
    assert await client.get("user:3:profile") is None
    assert await client.mget("user:1:profile", "user:404", "session:abc", "page:home") == [
        b"alice", None, b"s", None,
    ]  # fmt: skip
    assert await client.hget("cart:9", "apples") == b"3"
    assert await client.hget("cart:9", "pears") is None
    assert await client.hmget("cart:9", ["apples", "pears", "plums"]) == [b"3", None, None]
    assert await client.hgetall("cart:9") == {b"apples": b"3"}
    assert await client.hgetall("cart:10") == {}
    assert await client.exists("user:1:profile", "user:nope") == 1
    assert await client.getex("session:abc", ex=60) == b"s"
    await client.set("user:4:profile", "x")
    await client.delete("user:4:profile")
    async with client.pipeline() as pipe:
        pipe.get("user:1:profile").get("user:404")
        assert await pipe.execute() == [b"alice", None]


@pytest.mark.integration
def test_sync_redis_hits_and_misses_by_command_and_prefix(
    redis: RedisServer, recorder: Recorder
) -> None:
    seed(redis)
    client = redis_lib.Redis.from_url(redis.url)
    try:
        sync_lookups(client)
    finally:
        client.close()
    assert counts(snapshot(recorder)) == EXPECTED


@pytest.mark.integration
def test_asyncio_redis_hits_and_misses_by_command_and_prefix(
    redis: RedisServer, recorder: Recorder
) -> None:
    seed(redis)

    async def run() -> None:
        client = redis_asyncio.Redis.from_url(redis.url)
        try:
            await async_lookups(client)
        finally:
            await client.aclose()

    asyncio.run(run())
    assert counts(snapshot(recorder)) == EXPECTED


@pytest.mark.integration
def test_lookups_in_a_request_count_for_its_route(redis: RedisServer, recorder: Recorder) -> None:
    seed(redis)
    client = redis_lib.Redis.from_url(redis.url, decode_responses=True)
    ctx = RequestContext("GET", perf())
    ctx.route = "/profile/{id}"
    token = current_request.set(ctx)
    try:
        assert client.get("user:1:profile") == "alice"
        assert client.get("user:3:profile") is None
        assert client.mget("user:1:profile", "user:2:profile") == ["alice", ""]
        perfpilot.instrument.cache_event("thumbnails", hit=False)
    finally:
        current_request.reset(token)
        client.close()
    ctx.status = 200
    recorder.finish(ctx, 0.01)
    assert (ctx.cache_hits, ctx.cache_misses) == (3, 2)
    snap = snapshot(recorder)
    (request,) = snap.requests
    assert (request.route, request.cache_hits, request.cache_misses) == ("/profile/{id}", 3, 2)
    assert counts(snap) == {
        ("redis", "get", "user", "/profile/{id}"): (1, 1),
        ("redis", "mget", "user", "/profile/{id}"): (2, 0),
        ("thumbnails", "get", "", "/profile/{id}"): (0, 1),
    }


@pytest.mark.integration
def test_redis_errors_reach_the_caller_unchanged_and_are_not_lookups(
    redis: RedisServer, recorder: Recorder
) -> None:
    seed(redis)
    client = redis_lib.Redis.from_url(redis.url)
    try:
        with pytest.raises(redis_lib.ResponseError, match="WRONGTYPE"):
            client.get("cart:9")
    finally:
        client.close()
    closed = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1, retry=None)
    with pytest.raises(redis_lib.ConnectionError):
        closed.get("user:1")
    out: list[AppSnapshot] = []
    Flusher(recorder, out.append, lambda sql, db: (sql, sql)).flush()
    assert out == []


@pytest.mark.integration
def test_an_error_inside_perfpilot_never_reaches_the_app(
    redis: RedisServer,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("perfpilot bug")

    seed(redis)
    monkeypatch.setattr(recorder, "cache", broken)
    monkeypatch.setattr(context, "_warned", set())
    client = redis_lib.Redis.from_url(redis.url)
    with caplog.at_level(logging.WARNING, logger="perfpilot"):
        try:
            assert client.get("user:1:profile") == b"alice"
            assert client.mget("user:1:profile") == [b"alice"]
        finally:
            client.close()

        async def run() -> bytes | None:
            aclient = redis_asyncio.Redis.from_url(redis.url)
            try:
                value: bytes | None = await aclient.get("user:1:profile")
                return value
            finally:
                await aclient.aclose()

        assert asyncio.run(run()) == b"alice"
    assert sum("perfpilot bug" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.integration
def test_nothing_is_recorded_when_not_instrumented(redis: RedisServer, recorder: Recorder) -> None:
    active.recorder = None
    client = redis_lib.Redis.from_url(redis.url)
    try:
        assert client.get("user:1:profile") is None
    finally:
        client.close()
    out: list[AppSnapshot] = []
    Flusher(recorder, out.append, lambda sql, db: (sql, sql)).flush()
    assert out == []


def test_cache_event_records_in_process_caches(recorder: Recorder) -> None:
    perfpilot.instrument.cache_event("thumbnails", hit=True)
    perfpilot.instrument.cache_event("thumbnails", hit=True)
    perfpilot.instrument.cache_event("thumbnails", hit=False, command="lookup", key_prefix="w800")
    assert counts(snapshot(recorder)) == {
        ("thumbnails", "get", "", NO_ROUTE): (2, 0),
        ("thumbnails", "lookup", "w800", NO_ROUTE): (0, 1),
    }


def test_install_is_idempotent() -> None:
    assert cache.install() == ["redis"]
    sync, aio = redis_lib.Redis.execute_command, redis_asyncio.Redis.execute_command
    assert cache.install() == ["redis"]
    assert (redis_lib.Redis.execute_command, redis_asyncio.Redis.execute_command) == (sync, aio)
    for method in (sync, aio):
        assert getattr(method, "__perfpilot__", False)
        assert not getattr(method.__perfpilot_original__, "__perfpilot__", False)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("key", "prefix"),
    [
        ("user:42:profile", "user"),
        (b"user:42", "user"),
        (bytearray(b"img:1"), "img"),
        (memoryview(b"q:1"), "q"),
        (b"caf\xe9:1", "café"),
        (":leading", ""),
        ("settings", "settings"),
        ("x" * 32, "x" * 32),
        ("d41d8cd98f00b204e9800998ecf8427e-and-more", "{long}"),
        (42, "42"),
        ("p" * 100 + ":1", "p" * 64),
    ],
)
def test_key_prefixes(key: Any, prefix: str) -> None:
    assert cache.key_prefix(key) == prefix


# -- time in cache commands ---------------------------------------------------------------

STEP_S = 0.002  # what the fake clock advances per reading: each command "takes" this long


@pytest.fixture
def stepping_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hooks' clock advances STEP_S per reading, so every command takes STEP_S."""
    readings = iter(range(1, 10**6))
    monkeypatch.setattr(cache, "perf", lambda: next(readings) * STEP_S)


def in_request(recorder: Recorder, work: Any, *, duration: float = 0.01) -> RequestContext:
    ctx = RequestContext("GET", perf())
    ctx.route = "/profile/{id}"
    token = current_request.set(ctx)
    try:
        work()
    finally:
        current_request.reset(token)
    ctx.status = 200
    recorder.finish(ctx, duration)
    return ctx


@pytest.mark.integration
def test_redis_commands_in_a_request_are_its_cache_time(
    redis: RedisServer, recorder: Recorder, stepping_clock: None
) -> None:
    seed(redis)
    client = redis_lib.Redis.from_url(redis.url, decode_responses=True)

    def work() -> None:
        assert client.get("user:1:profile") == "alice"
        assert client.get("user:3:profile") is None
        assert client.mget("user:1:profile", "user:404") == ["alice", None]
        client.set("user:5:profile", "y")  # a write: timed, neither hit nor miss
        client.incr("counter")  # not a cache command: app time
        pipe = client.pipeline()
        pipe.get("user:1:profile")
        pipe.execute()  # pipelines are not hooked

    try:
        ctx = in_request(recorder, work, duration=0.6)  # slow: traced
    finally:
        client.close()
    assert ctx.cache_time == pytest.approx(4 * STEP_S)
    snap = snapshot(recorder)
    (request,) = snap.requests
    assert request.cache_time_s == pytest.approx(4 * STEP_S)
    assert (request.cache_hits, request.cache_misses) == (2, 2)
    assert counts(snap) == {
        ("redis", "get", "user", "/profile/{id}"): (1, 1),
        ("redis", "mget", "user", "/profile/{id}"): (1, 1),
    }
    (trace,) = snap.traces
    # (start offsets mix the real clock with the fake durations: compare as a set)
    spans = sorted(
        (s.name, round(s.duration_s, 9), repr(s.detail)) for s in trace.spans if s.kind == "cache"
    )
    assert spans == [
        ("redis get user", STEP_S, "{'hit': False}"),
        ("redis get user", STEP_S, "{'hit': True}"),
        ("redis mget user", 0.0, "{'hit': False}"),
        ("redis mget user", STEP_S, "{'hit': True}"),  # the command's time, on its first key
        ("redis set user", STEP_S, "{}"),
    ]


@pytest.mark.integration
def test_asyncio_redis_commands_in_a_request_are_its_cache_time(
    redis: RedisServer, recorder: Recorder, stepping_clock: None
) -> None:
    seed(redis)

    async def run() -> RequestContext:
        client = redis_asyncio.Redis.from_url(redis.url)
        ctx = RequestContext("GET", perf())
        ctx.route = "/profile/{id}"
        token = current_request.set(ctx)
        try:
            assert await client.get("user:1:profile") == b"alice"
            assert await client.hmget("cart:9", ["apples", "pears"]) == [b"3", None]
            await client.delete("user:5:profile")
        finally:
            current_request.reset(token)
            await client.aclose()
        ctx.status = 200
        recorder.finish(ctx, 0.01)
        return ctx

    ctx = asyncio.run(run())
    assert (ctx.cache_hits, ctx.cache_misses) == (2, 1)
    (request,) = snapshot(recorder).requests
    assert request.cache_time_s == pytest.approx(3 * STEP_S)


@pytest.mark.integration
def test_redis_cache_time_is_measured_on_the_real_clock(
    redis: RedisServer, recorder: Recorder
) -> None:
    seed(redis)
    client = redis_lib.Redis.from_url(redis.url)
    try:
        in_request(recorder, lambda: client.get("user:1:profile"))
    finally:
        client.close()
    (request,) = snapshot(recorder).requests
    assert request.cache_time_s > 0


@pytest.mark.integration
def test_a_failed_redis_lookup_is_cache_time_but_neither_hit_nor_miss(
    redis: RedisServer, recorder: Recorder, stepping_clock: None
) -> None:
    seed(redis)
    client = redis_lib.Redis.from_url(redis.url)

    def work() -> None:
        with pytest.raises(redis_lib.ResponseError, match="WRONGTYPE"):
            client.get("cart:9")

    try:
        ctx = in_request(recorder, work)
    finally:
        client.close()
    assert (ctx.cache_hits, ctx.cache_misses) == (0, 0)
    snap = snapshot(recorder)
    (request,) = snap.requests
    assert request.cache_time_s == pytest.approx(STEP_S)
    assert snap.caches == ()


def test_requests_without_cache_commands_have_no_cache_time(recorder: Recorder) -> None:
    ctx = in_request(recorder, lambda: None)
    assert not hasattr(ctx, "cache_time")  # never set: the request paid nothing for it
    (request,) = snapshot(recorder).requests
    assert request.cache_time_s == 0.0


def test_cache_event_with_a_duration_is_cache_time(recorder: Recorder) -> None:
    def work() -> None:
        perfpilot.instrument.cache_event("thumbnails", hit=True, duration_s=0.003)
        perfpilot.instrument.cache_event("thumbnails", hit=False, duration_s=0.004)
        perfpilot.instrument.cache_event("thumbnails", hit=True)  # untimed: app time

    in_request(recorder, work)
    snap = snapshot(recorder)
    (request,) = snap.requests
    assert request.cache_time_s == pytest.approx(0.007)
    assert (request.cache_hits, request.cache_misses) == (2, 1)
    assert counts(snap) == {("thumbnails", "get", "", "/profile/{id}"): (2, 1)}


def test_cache_event_without_a_duration_counts_but_is_not_timed(recorder: Recorder) -> None:
    in_request(recorder, lambda: perfpilot.instrument.cache_event("thumbnails", hit=False))
    snap = snapshot(recorder)
    (request,) = snap.requests
    assert (request.cache_time_s, request.cache_misses) == (0.0, 1)


@pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf"), "soon", object()])
def test_cache_event_ignores_a_duration_that_is_not_one(recorder: Recorder, bad: Any) -> None:
    in_request(recorder, lambda: perfpilot.instrument.cache_event("t", hit=True, duration_s=bad))
    snap = snapshot(recorder)
    (request,) = snap.requests
    assert (request.cache_time_s, request.cache_hits) == (0.0, 1)


def test_cache_event_outside_a_request_counts_without_time(recorder: Recorder) -> None:
    perfpilot.instrument.cache_event("thumbnails", hit=True, duration_s=0.25)
    snap = snapshot(recorder)
    assert snap.requests == ()
    assert counts(snap) == {("thumbnails", "get", "", NO_ROUTE): (1, 0)}


def test_cache_time_past_the_event_bound_still_counts(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("perfpilot.instrument.recorder.MAX_EVENTS_PER_REQUEST", 2)

    def work() -> None:
        for _ in range(5):
            perfpilot.instrument.cache_event("t", hit=False, duration_s=0.001)

    ctx = in_request(recorder, work)
    assert ctx.dropped == 3
    snap = snapshot(recorder)
    (request,) = snap.requests
    assert request.cache_time_s == pytest.approx(0.005)
    assert counts(snap) == {("t", "get", "", "/profile/{id}"): (0, 5)}
