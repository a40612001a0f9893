"""Streamed outbound responses against a loopback streaming API: httpx, requests, aiohttp.

Each client streams an OpenAI-compatible chat completion (server-sent events,
chunked) the way apps do, and the call must be recorded exactly once, when the
body ends or is abandoned, priced from the final usage chunk when there is one.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import requests

from perfpilot.app_records import AppSnapshot, OutboundRow
from perfpilot.instrument import outbound, streams
from perfpilot.instrument.context import RequestContext, active, current_request, perf
from perfpilot.instrument.flusher import Flusher
from perfpilot.instrument.recorder import NO_ROUTE, Recorder
from perfpilot.instrument.streams import UNPRICED, StreamWatch
from tests.paid_api import PaidAPI

pytestmark = pytest.mark.integration

CLIENTS = ("httpx", "httpx-async", "requests", "aiohttp")
PRICES = """\
[[api]]
host = "{host}"
path = "/v1"
kind = "openai"
[api.models."gpt-4o-mini"]
input_per_1m = 1.0
output_per_1m = 2.0
"""
PER_CALL_PRICES = """\
[[api]]
host = "{host}"
path = "/v1/chat"
kind = "per_call"
per_call = 0.01
"""
CHAT_COST = (1200 * 1.0 + 300 * 2.0) / 1e6
WITH_USAGE = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True}}
WITHOUT_USAGE = {"model": "gpt-4o-mini", "stream": True}


@pytest.fixture
def api() -> Iterator[PaidAPI]:
    with PaidAPI() as server:
        yield server


def install(api: PaidAPI, tmp_path: Path, table: str = PRICES) -> Recorder:
    path = tmp_path / "prices.toml"
    path.write_text(table.format(host=api.host))
    assert outbound.install(str(path)) == ["httpx", "requests", "aiohttp"]
    rec = Recorder("svc", slow_s=10.0, sample_rate=0.0, seed=1)
    active.recorder = rec
    return rec


@pytest.fixture
def recorder(api: PaidAPI, tmp_path: Path) -> Iterator[Recorder]:
    try:
        yield install(api, tmp_path)
    finally:
        active.recorder = None
        outbound.state.prices = None


def snapshot(rec: Recorder) -> AppSnapshot:
    out: list[AppSnapshot] = []
    Flusher(rec, out.append, lambda sql, db: (sql, sql)).flush()
    assert len(out) == 1
    return out[0]


def only_call(snap: AppSnapshot) -> OutboundRow:
    assert len(snap.outbound) == 1, snap.outbound
    return snap.outbound[0]


def stream_chat(
    client: str, url: str, body: dict[str, Any], stop_after: int | None = None
) -> list[str]:
    """Stream a chat completion as apps do, line by line; returns the non-empty
    lines the app read (all of them, or the first ``stop_after``, then it
    leaves the ``with`` block, which closes the response)."""
    seen: list[str] = []

    def keep(line: str) -> bool:
        if line.strip():
            seen.append(line.strip())
        return stop_after is not None and len(seen) >= stop_after

    if client == "httpx":
        with httpx.Client() as c, c.stream("POST", url, json=body) as r:
            for line in r.iter_lines():
                if keep(line):
                    break
        return seen
    if client == "requests":
        with requests.Session() as s, s.post(url, json=body, stream=True, timeout=10) as resp:
            for raw in resp.iter_lines():
                if keep(raw.decode()):
                    break
        return seen

    async def run() -> None:
        if client == "httpx-async":
            async with httpx.AsyncClient() as c, c.stream("POST", url, json=body) as r:
                async for line in r.aiter_lines():
                    if keep(line):
                        break
            return
        async with aiohttp.ClientSession() as s, s.post(url, json=body) as r:
            async for raw in r.content:
                if keep(raw.decode()):
                    break

    asyncio.run(run())
    return seen


def in_request(route: str) -> tuple[RequestContext, Any]:
    ctx = RequestContext("POST", perf())
    ctx.route = route
    ctx.status = 200
    return ctx, current_request.set(ctx)


# ------------------------------------------------------------------------ tests


@pytest.mark.parametrize("client", CLIENTS)
def test_a_stream_with_usage_is_priced_from_its_last_chunk(
    client: str, api: PaidAPI, recorder: Recorder
) -> None:
    url = f"{api.url}/v1/chat/completions"
    lines = stream_chat(client, url, WITH_USAGE)
    # the app read every event, unchanged
    assert lines[-1] == "data: [DONE]"
    assert len(lines) == 2 + 1 + 1
    assert json.loads(lines[2][5:])["usage"]["completion_tokens"] == 300
    snap = snapshot(recorder)
    row = only_call(snap)
    assert (row.count, row.status_class, row.template) == (1, 2, "/v1/chat/completions")
    assert (row.prompt_tokens, row.completion_tokens, row.model) == (1200, 300, "gpt-4o-mini")
    assert row.cost_usd == pytest.approx(CHAT_COST)
    assert row.bytes_in >= sum(len(line) for line in lines)
    assert row.bytes_out > 0
    assert UNPRICED not in snap.drops


@pytest.mark.parametrize("client", CLIENTS)
def test_a_stream_without_usage_is_not_priced_and_is_counted(
    client: str, api: PaidAPI, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{api.url}/v1/chat/completions"
    with caplog.at_level(logging.WARNING, "perfpilot"):
        assert stream_chat(client, url, WITHOUT_USAGE)[-1] == "data: [DONE]"
        stream_chat(client, url, WITHOUT_USAGE)
    snap = snapshot(recorder)
    row = only_call(snap)
    assert (row.count, row.prompt_tokens, row.completion_tokens, row.cost_usd) == (2, 0, 0, 0.0)
    assert row.model is None
    assert row.bytes_in > 0
    assert snap.drops[UNPRICED] == 2
    warnings = [r.getMessage() for r in caplog.records if "include_usage" in r.getMessage()]
    assert len(warnings) <= 1  # once per host per process (an earlier test may have logged it)


@pytest.mark.parametrize("client", CLIENTS)
def test_an_app_that_stops_reading_early_is_recorded_once(
    client: str, api: PaidAPI, recorder: Recorder
) -> None:
    api.stream_chunks = 2000  # far more than the app reads
    url = f"{api.url}/v1/chat/completions"
    assert len(stream_chat(client, url, WITH_USAGE, stop_after=1)) == 1
    gc.collect()
    snap = snapshot(recorder)
    row = only_call(snap)
    assert row.count == 1
    # the usage chunk never arrived: tokens unknown, not guessed
    assert (row.prompt_tokens, row.cost_usd) == (0, 0.0)
    assert snap.drops[UNPRICED] == 1
    gc.collect()
    assert recorder.collect().outbound == {}  # nothing more at garbage collection


def test_responses_never_read_nor_closed_are_recorded_at_garbage_collection(
    api: PaidAPI, recorder: Recorder
) -> None:
    url = f"{api.url}/v1/chat/completions"
    client = httpx.Client()
    response = client.send(client.build_request("POST", url, json=WITH_USAGE), stream=True)
    session = requests.Session()
    resp = session.post(url, json=WITH_USAGE, stream=True, timeout=10)
    assert recorder._interval.outbound == {}  # not ended yet: not recorded
    raw = resp.raw  # to close its socket afterwards
    del response, resp
    gc.collect()
    row = only_call(snapshot(recorder))
    assert row.count == 2
    raw.close()
    client.close()
    session.close()


def test_aiohttp_responses_never_read_are_recorded_once_collected(
    api: PaidAPI, recorder: Recorder
) -> None:
    # aiohttp's connection keeps such a response alive (an end-of-body
    # callback), so it is collected once the session closed the connection
    api.stream_chunks = 2000  # more than aiohttp buffers before the app reads

    async def run() -> None:
        async with aiohttp.ClientSession() as s:
            response = await s.post(f"{api.url}/v1/chat/completions", json=WITH_USAGE)
            assert response.status == 200
            del response
            gc.collect()
            assert recorder._interval.outbound == {}  # not ended yet: not recorded

    asyncio.run(run())
    gc.collect()
    assert only_call(snapshot(recorder)).count == 1
    gc.collect()
    assert recorder.collect().outbound == {}  # once


@pytest.mark.parametrize("client", ["httpx", "requests"])
def test_a_streamed_json_answer_is_priced_from_its_body(
    client: str, api: PaidAPI, recorder: Recorder
) -> None:
    url = f"{api.url}/v1/chat/completions"
    body = {"model": "gpt-4o-mini", "messages": []}
    if client == "httpx":
        with httpx.Client() as c, c.stream("POST", url, json=body) as r:
            assert json.loads(r.read())["usage"]["prompt_tokens"] == 1200
    else:
        with requests.post(url, json=body, stream=True, timeout=10) as resp:
            assert resp.json()["usage"]["prompt_tokens"] == 1200
    row = only_call(snapshot(recorder))
    assert (row.prompt_tokens, row.completion_tokens) == (1200, 300)
    assert row.cost_usd == pytest.approx(CHAT_COST)


def test_httpx_gzip_streams_are_decoded_for_their_usage(api: PaidAPI, recorder: Recorder) -> None:
    api.stream_gzip = True
    lines = stream_chat("httpx", f"{api.url}/v1/chat/completions", WITH_USAGE)
    assert lines[-1] == "data: [DONE]"
    row = only_call(snapshot(recorder))
    assert (row.prompt_tokens, row.completion_tokens) == (1200, 300)


@pytest.mark.parametrize("client", CLIENTS)
def test_a_per_call_rule_prices_a_stream_without_usage(
    client: str, api: PaidAPI, tmp_path: Path
) -> None:
    try:
        rec = install(api, tmp_path, PER_CALL_PRICES)
        stream_chat(client, f"{api.url}/v1/chat/completions", WITHOUT_USAGE)
        snap = snapshot(rec)
    finally:
        active.recorder = None
        outbound.state.prices = None
    assert only_call(snap).cost_usd == pytest.approx(0.01)
    assert UNPRICED not in snap.drops  # the table prices it per call: nothing unpriced


@pytest.mark.parametrize("client", CLIENTS)
def test_a_stream_read_in_a_request_belongs_to_it(
    client: str, api: PaidAPI, recorder: Recorder
) -> None:
    ctx, token = in_request("/chat")
    try:
        stream_chat(client, f"{api.url}/v1/chat/completions", WITH_USAGE)
    finally:
        current_request.reset(token)
    assert (ctx.out_count, ctx.cost) == (1, pytest.approx(CHAT_COST))
    recorder.finish(ctx, 0.5)
    snap = snapshot(recorder)
    assert only_call(snap).route == "/chat"
    (request,) = snap.requests
    assert request.cost_usd == pytest.approx(CHAT_COST)


def test_a_stream_ending_after_its_request_keeps_the_route(
    api: PaidAPI, recorder: Recorder
) -> None:
    ctx, token = in_request("/chat")
    client = httpx.Client()
    try:
        response = client.send(
            client.build_request("POST", f"{api.url}/v1/chat/completions", json=WITH_USAGE),
            stream=True,
        )
    finally:
        current_request.reset(token)
    recorder.finish(ctx, 0.1)
    other, token = in_request("/other")  # another request is current when it ends
    try:
        assert response.read().endswith(b"data: [DONE]\n\n")
    finally:
        current_request.reset(token)
    client.close()
    assert other.out_count == 0
    row = only_call(snapshot(recorder))
    assert (row.route, row.count) == ("/chat", 1)
    assert row.cost_usd == pytest.approx(CHAT_COST)


def test_a_stream_started_outside_requests_stays_outside(api: PaidAPI, recorder: Recorder) -> None:
    client = httpx.Client()
    response = client.send(
        client.build_request("POST", f"{api.url}/v1/chat/completions", json=WITH_USAGE),
        stream=True,
    )
    ctx, token = in_request("/later")
    try:
        response.read()
    finally:
        current_request.reset(token)
    client.close()
    assert ctx.out_count == 0
    assert only_call(snapshot(recorder)).route == NO_ROUTE


@pytest.mark.parametrize("client", CLIENTS)
def test_an_error_inside_perfpilot_never_reaches_the_app(
    client: str, api: PaidAPI, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("perfpilot bug")

    monkeypatch.setattr(recorder, "outbound", broken)
    monkeypatch.setattr(streams.UsageReader, "feed", broken)
    lines = stream_chat(client, f"{api.url}/v1/chat/completions", WITH_USAGE)
    assert len(lines) == 4 and lines[-1] == "data: [DONE]"


def test_garbage_collection_inside_the_recorders_lock_does_not_deadlock(
    recorder: Recorder,
) -> None:
    watch = StreamWatch(recorder, "POST", "api.example", "/v1/x", 200, perf(), 0, None, None, None)
    with recorder._lock:  # as if the collector ran inside the recorder on this thread
        watch._collected()
        assert snapshot_is_empty_later(recorder)
    for thread in threading.enumerate():
        if thread.name == "perfpilot-stream":
            thread.join(10)
    assert only_call(snapshot(recorder)).count == 1


def snapshot_is_empty_later(rec: Recorder) -> bool:
    """Nothing is recorded while the lock is held (checked without taking it)."""
    return not rec._interval.outbound
