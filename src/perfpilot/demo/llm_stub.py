"""A local stand-in for a paid LLM API (OpenAI-compatible), used by the demo app.

It answers like the real service, slowly, and reports token usage, so outbound
call detectors and API cost models have something true to measure, without a
network or a bill. Token counts and delays depend only on the request body, so
runs are repeatable.

Routes: ``POST /v1/chat/completions``, ``POST /v1/embeddings``, ``GET /v1/models``,
``GET /health`` and ``GET /stats`` (calls served per route, for tests).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeGuard

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CHAT_MODEL = "gpt-4o-mini"
"""The model the demo app asks for; the stub echoes whatever model it is sent."""
EMBEDDING_MODEL = "text-embedding-3-small"
EMBEDDING_DIMENSIONS = 16

Sleep = Callable[[float], Awaitable[None]]


def count_tokens(text: str) -> int:
    """Estimate tokens the way OpenAI's rule of thumb does: about 4 characters each.

    Args:
        text: Any text.

    Returns:
        ``ceil(len(text) / 4)``, at least 1.
    """
    return max(1, (len(text) + 3) // 4)


def chat_usage(messages: list[dict[str, Any]], max_tokens: int | None = None) -> dict[str, int]:
    """Token usage the stub reports for a chat completion.

    Each message costs its content's tokens plus 4 for its framing, and every
    reply is primed with 3 more, as OpenAI documents for its chat models. The
    answer's length grows with the prompt and is capped by ``max_tokens``.

    Args:
        messages: OpenAI-style messages (``role`` and ``content``).
        max_tokens: The request's cap on completion tokens, if any.

    Returns:
        ``prompt_tokens``, ``completion_tokens`` and ``total_tokens``.
    """
    prompt = 3 + sum(4 + count_tokens(str(m.get("content", ""))) for m in messages)
    completion = 16 + prompt // 4
    if max_tokens is not None:
        completion = max(1, min(completion, max_tokens))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status)


async def _json_body(request: Request) -> dict[str, Any] | JSONResponse:
    if not request.headers.get("authorization", "").startswith("Bearer "):
        return _error(401, "missing bearer token", "authentication_error")
    try:
        body = await request.json()
    except ValueError:
        return _error(400, "the body is not JSON")
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return _error(400, "the body must be an object with a 'model' string")
    return body


def _is_text_list(value: Any) -> TypeGuard[list[str]]:
    return isinstance(value, list) and bool(value) and all(isinstance(s, str) for s in value)


def _jitter(body: dict[str, Any]) -> float:
    """A fraction in [0, 1] that depends only on the request body."""
    raw = json.dumps(body, sort_keys=True).encode()
    return (zlib.crc32(raw) % 1000) / 999


def create_llm_app(
    *,
    chat_delay_s: float = 0.15,
    chat_jitter_s: float = 0.15,
    embeddings_delay_s: float = 0.04,
    sleep: Sleep = asyncio.sleep,
) -> Starlette:
    """Build the stub LLM API.

    Args:
        chat_delay_s: Least time a chat completion takes, in seconds.
        chat_jitter_s: Extra time, from 0 to this, derived from the request
            body, so the same request always takes as long.
        embeddings_delay_s: Time an embeddings call takes, in seconds.
        sleep: The coroutine used to wait; tests can pass one that returns at once.

    Returns:
        An ASGI app.

    Example:
        >>> app = create_llm_app(chat_delay_s=0.0, chat_jitter_s=0.0)
        >>> # uvicorn.run(app, host="127.0.0.1", port=8081)
    """
    calls: Counter[str] = Counter()

    async def chat_completions(request: Request) -> JSONResponse:
        body = await _json_body(request)
        if isinstance(body, JSONResponse):
            return body
        messages = body.get("messages")
        if (
            not isinstance(messages, list)
            or not messages
            or not all(isinstance(m, dict) and "content" in m for m in messages)
        ):
            return _error(400, "'messages' must be a non-empty list of {role, content}")
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and not isinstance(max_tokens, int):
            return _error(400, "'max_tokens' must be an integer")
        calls["chat.completions"] += 1
        await sleep(chat_delay_s + chat_jitter_s * _jitter(body))
        usage = chat_usage(messages, max_tokens)
        last = str(messages[-1].get("content", ""))
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return JSONResponse(
            {
                "id": f"chatcmpl-demo-{digest[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": f"In short: {last[:160]}",
                        },
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
        )

    async def embeddings(request: Request) -> JSONResponse:
        body = await _json_body(request)
        if isinstance(body, JSONResponse):
            return body
        raw_input = body.get("input")
        inputs = [raw_input] if isinstance(raw_input, str) else raw_input
        if not _is_text_list(inputs):
            return _error(400, "'input' must be a string or a non-empty list of strings")
        calls["embeddings"] += 1
        await sleep(embeddings_delay_s)
        data = []
        for index, text in enumerate(inputs):
            digest = hashlib.sha256(text.encode()).digest()
            vector = [round(b / 255 - 0.5, 4) for b in digest[:EMBEDDING_DIMENSIONS]]
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(count_tokens(text) for text in inputs)
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def models(request: Request) -> JSONResponse:
        calls["models"] += 1
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": CHAT_MODEL, "object": "model", "owned_by": "perfpilot-demo"},
                    {"id": EMBEDDING_MODEL, "object": "model", "owned_by": "perfpilot-demo"},
                ],
            }
        )

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"calls": dict(calls)})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/stats", stats, methods=["GET"]),
        ]
    )
