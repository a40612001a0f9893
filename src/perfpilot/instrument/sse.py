"""Token usage read from a streamed response body, chunk by chunk, in bounded memory.

OpenAI-compatible APIs answer ``"stream": true`` with server-sent events:
``data: {...}`` lines, the last one ``data: [DONE]``. With
``stream_options: {"include_usage": true}`` the final chunk carries
``usage`` (``prompt_tokens``/``completion_tokens``); earlier chunks carry
``"usage": null``. Other shapes read the same way: the Responses API sends
``usage`` inside ``response`` of its ``response.completed`` event, Anthropic's
Messages API ``input_tokens`` in ``message_start`` (inside ``message``) and
``output_tokens`` in ``message_delta``; later figures replace earlier ones,
field by field.

:class:`UsageReader` keeps only the line being received (at most
:data:`MAX_EVENT_BYTES`; a longer line is skipped) and the usage seen so far;
only lines holding a ``"usage"`` object are parsed as JSON. A streamed JSON
body (``stream=True`` on an ordinary answer) is kept up to
:data:`MAX_JSON_BYTES` and read by :func:`~perfpilot.instrument.cost.extract_usage`
at the end; past that bound it is not read. ``gzip`` and ``deflate`` bodies are
decompressed for reading when the client hands over the raw bytes (httpx).
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

from perfpilot.instrument.cost import Usage, extract_usage

# The longest server-sent event line kept for parsing (a Responses API
# "response.completed" event repeats the whole answer).
MAX_EVENT_BYTES = 1024 * 1024
# The largest streamed JSON body kept for reading its usage.
MAX_JSON_BYTES = 1024 * 1024

_MODEL_RE = re.compile(rb'"model"\s*:\s*"((?:[^"\\]|\\.){1,200})"')
_USAGE_OBJECT_RE = re.compile(rb'"usage"\s*:\s*\{')


def body_kind(content_type: object) -> str | None:
    """``"sse"`` for ``text/event-stream``, ``"json"`` for a JSON type, else ``None``."""
    if not isinstance(content_type, str):
        return None
    lower = content_type.lower()
    if "text/event-stream" in lower:
        return "sse"
    if "json" in lower:
        return "json"
    return None


class UsageReader:
    """Reads token usage from a body fed chunk by chunk.

    Args:
        kind: ``"sse"`` (server-sent events) or ``"json"`` (one JSON document).
        encoding: The response's ``Content-Encoding`` when the chunks are the
            raw, still encoded bytes; ``None`` when they are already decoded.

    Never raises: a body it cannot read gives no usage.
    """

    __slots__ = (
        "_buffer",
        "_completion",
        "_decoder",
        "_kind",
        "_model",
        "_prompt",
        "_seen",
        "_skipping",
        "unreadable",
    )

    def __init__(self, kind: str, encoding: str | None = None) -> None:
        self._kind = kind
        self._buffer = bytearray()
        self._skipping = False
        self._model: str | None = None
        self._prompt = 0
        self._completion = 0
        self._seen = False
        self._decoder: Any = None
        self.unreadable = False
        coding = (encoding or "").strip().lower()
        if coding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._decoder = _Deflate()
        elif coding not in ("", "identity"):
            self.unreadable = True  # br, zstd: not decoded here

    def feed(self, chunk: bytes) -> None:
        """Take the next chunk of the body."""
        if self.unreadable or not chunk:
            return
        try:
            if self._decoder is not None:
                chunk = self._decoder.decompress(chunk)
            if self._kind == "sse":
                self._feed_events(chunk)
            elif len(self._buffer) + len(chunk) <= MAX_JSON_BYTES:
                self._buffer += chunk
            else:
                self._buffer = bytearray()
                self.unreadable = True
        except (zlib.error, ValueError, TypeError):
            self._buffer = bytearray()
            self.unreadable = True

    def usage(self) -> Usage | None:
        """The usage read so far (call at the end of the body), or ``None``."""
        if self.unreadable:
            return None
        if self._kind == "json":
            return extract_usage(bytes(self._buffer))
        if self._buffer and not self._skipping:  # a last line without its newline
            self._line(bytes(self._buffer))
            self._buffer = bytearray()
        if not self._seen:
            return None
        return Usage(self._model, self._prompt, self._completion)

    # -- server-sent events -------------------------------------------------
    def _feed_events(self, chunk: bytes) -> None:
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if lines:
            if self._skipping:  # the end of an over-long line
                self._skipping = False
                lines[0] = b""
            elif self._buffer:
                lines[0] = bytes(self._buffer) + lines[0]
                self._buffer = bytearray()
            for line in lines:
                if line.startswith(b"data:"):
                    self._line(line)
        if self._skipping or not tail:
            return
        if len(self._buffer) + len(tail) > MAX_EVENT_BYTES:
            self._buffer = bytearray()
            self._skipping = True
        else:
            self._buffer += tail

    def _line(self, line: bytes) -> None:
        if not line.startswith(b"data:"):
            return
        if self._model is None and b'"model"' in line:
            found = _MODEL_RE.search(line)
            if found is not None:
                self._model = _string(found.group(1))
        if b'"usage"' not in line or _USAGE_OBJECT_RE.search(line) is None:
            return
        try:
            document = json.loads(line[5:])
        except (ValueError, RecursionError):
            return
        if not isinstance(document, dict):
            return
        for holder in (document, document.get("response"), document.get("message")):
            if isinstance(holder, dict):
                self._merge(holder)

    def _merge(self, holder: dict[str, Any]) -> None:
        usage = holder.get("usage")
        if not isinstance(usage, dict):
            return
        self._seen = True
        prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
        completion = usage.get("completion_tokens", usage.get("output_tokens"))
        if (count := _count(prompt)) is not None:
            self._prompt = count
        if (count := _count(completion)) is not None:
            self._completion = count
        model = holder.get("model")
        if isinstance(model, str) and model:
            self._model = model


def _count(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _string(raw: bytes) -> str | None:
    try:
        value = json.loads(b'"' + raw + b'"')
    except ValueError:
        return None
    return value if isinstance(value, str) and value else None


class _Deflate:
    """``deflate`` as servers send it: zlib-wrapped, or raw (some servers)."""

    __slots__ = ("_inner", "_started")

    def __init__(self) -> None:
        self._inner: Any = zlib.decompressobj()
        self._started = False

    def decompress(self, data: bytes) -> bytes:
        if not self._started:
            self._started = True
            try:
                return bytes(self._inner.decompress(data))
            except zlib.error:
                self._inner = zlib.decompressobj(-zlib.MAX_WBITS)
        return bytes(self._inner.decompress(data))
