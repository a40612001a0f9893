"""Token usage read from streamed bodies, chunk by chunk, in bounded memory."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfpilot.instrument.cost import Usage
from perfpilot.instrument.sse import MAX_EVENT_BYTES, MAX_JSON_BYTES, UsageReader, body_kind


def event(document: Any) -> bytes:
    return b"data: " + json.dumps(document).encode() + b"\n\n"


def chat_stream(words: int = 3, usage: bool = True, model: str = "gpt-4o-mini") -> bytes:
    body = b"".join(
        event({"model": model, "choices": [{"delta": {"content": f"w{i}"}}], "usage": None})
        for i in range(words)
    )
    if usage:
        body += event(
            {"model": model, "choices": [],
             "usage": {"prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46}}
        )  # fmt: skip
    return body + b"data: [DONE]\n\n"


def read(
    body: bytes, kind: str = "sse", size: int | None = None, encoding: str | None = None
) -> Usage | None:
    reader = UsageReader(kind, encoding)
    step = size or len(body) or 1
    for at in range(0, len(body), step):
        reader.feed(body[at : at + step])
    return reader.usage()


def test_content_types() -> None:
    assert body_kind("text/event-stream; charset=utf-8") == "sse"
    assert body_kind("application/json") == "json"
    assert body_kind("text/plain") is None
    assert body_kind(None) is None


@pytest.mark.parametrize("size", [1, 2, 7, 64, None])
def test_openai_final_usage_chunk_whatever_the_chunking(size: int | None) -> None:
    assert read(chat_stream(), size=size) == Usage("gpt-4o-mini", 12, 34)


def test_crlf_line_endings() -> None:
    body = chat_stream().replace(b"\n", b"\r\n")
    assert read(body, size=5) == Usage("gpt-4o-mini", 12, 34)


def test_a_stream_without_usage_gives_none() -> None:
    assert read(chat_stream(usage=False), size=9) is None


def test_a_last_line_without_its_newline_is_read() -> None:
    body = chat_stream(usage=True).removesuffix(b"data: [DONE]\n\n").rstrip(b"\n")
    assert read(body, size=4) == Usage("gpt-4o-mini", 12, 34)


def test_anthropic_messages_usage_merges_start_and_delta() -> None:
    body = b"".join(
        [
            b"event: message_start\n",
            event(
                {
                    "type": "message_start",
                    "message": {
                        "model": "claude-x",
                        "usage": {"input_tokens": 25, "output_tokens": 1},
                    },
                }
            ),
            b"event: content_block_delta\n",
            event({"type": "content_block_delta", "delta": {"text": "hi"}}),
            b"event: message_delta\n",
            event({"type": "message_delta", "usage": {"output_tokens": 15}}),
        ]
    )
    assert read(body, size=11) == Usage("claude-x", 25, 15)


def test_responses_api_completed_event() -> None:
    body = event({"type": "response.created", "response": {"model": "gpt-5", "usage": None}})
    body += event(
        {"type": "response.completed",
         "response": {"model": "gpt-5", "usage": {"input_tokens": 7, "output_tokens": 9}}}
    )  # fmt: skip
    assert read(body, size=13) == Usage("gpt-5", 7, 9)


def test_model_from_the_first_chunk_when_the_usage_chunk_has_none() -> None:
    body = event({"model": "gpt-4o", "choices": []})
    body += event({"usage": {"prompt_tokens": 1, "completion_tokens": 2}})
    assert read(body) == Usage("gpt-4o", 1, 2)


def test_an_over_long_line_is_skipped_and_the_next_ones_read() -> None:
    huge = b"data: " + b"x" * (MAX_EVENT_BYTES + 10) + b"\n\n"
    body = huge + event({"model": "m", "usage": {"prompt_tokens": 3, "completion_tokens": 4}})
    reader = UsageReader("sse")
    for at in range(0, len(body), 65536):
        reader.feed(body[at : at + 65536])
        assert len(reader._buffer) <= MAX_EVENT_BYTES  # bounded all along
    assert reader.usage() == Usage("m", 3, 4)


def test_a_streamed_json_body_is_read_at_the_end_and_bounded() -> None:
    document = {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 5, "completion_tokens": 6}}
    assert read(json.dumps(document).encode(), "json", size=3) == Usage("gpt-4o-mini", 5, 6)
    reader = UsageReader("json")
    reader.feed(b" " * MAX_JSON_BYTES)
    reader.feed(json.dumps(document).encode())
    assert reader.unreadable and len(reader._buffer) == 0
    assert reader.usage() is None


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_raw_bytes_are_decoded(encoding: str) -> None:
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    compressor = zlib.compressobj(wbits=wbits)
    raw = compressor.compress(chat_stream()) + compressor.flush()
    assert read(raw, size=10, encoding=encoding) == Usage("gpt-4o-mini", 12, 34)


def test_encodings_it_cannot_decode_give_none() -> None:
    assert read(chat_stream(), encoding="br") is None
    assert read(b"not gzip at all", encoding="gzip") is None


@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=64))
def test_fuzz_never_raises(body: bytes, size: int) -> None:
    for kind in ("sse", "json"):
        result = read(body, kind, size=size)
        assert result is None or isinstance(result, Usage)
