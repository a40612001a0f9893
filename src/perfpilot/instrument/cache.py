"""Cache hooks: redis-py hits and misses, by command and key prefix.

:func:`install` patches ``redis.Redis.execute_command`` and
``redis.asyncio.Redis.execute_command``. After a read command returns, each
key looked up is reported to the active recorder as
``recorder.cache("redis", command, prefix, hit)``:

=========================================  ===================================
command                                    hit when
=========================================  ===================================
GET, GETEX, GETDEL, HGET, JSON.GET         the reply is not ``None`` (an empty
                                           string is a hit: the key exists)
HGETALL, HEXISTS                           the reply is not empty / true
MGET                                       per key: its value is not ``None``
HMGET                                      per field: its value is not ``None``
EXISTS k1 k2 ...                           the reply counts the hits; the rest
                                           are misses, all under ``k1``'s prefix
=========================================  ===================================

Other commands (writes, pipelines, errors) are not recorded. The **prefix** of
a key is the part before its first ``:`` (``user:42:profile`` → ``user``); a
key without ``:`` is its own prefix when at most 32 characters long, else
``{long}`` (long keys without a separator are usually hashes). Bytes keys are
decoded as latin-1. Key values never leave the hook, only prefixes.

Not hooked: pipelines and transactions (``Pipeline.execute_command`` only
queues commands; their replies come back together from ``execute()``), and
``redis.cluster.RedisCluster``.

In-process caches report through :func:`perfpilot.instrument.cache_event`.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

from perfpilot.instrument.context import active, warn_once
from perfpilot.instrument.recorder import Recorder

MARK = "__perfpilot__"
CACHE = "redis"
MAX_SHORT_KEY = 32
MAX_PREFIX = 64
LONG_KEY = "{long}"

# How a reply says hit or miss.
_ONE, _NONEMPTY, _EACH_KEY, _EACH_FIELD, _COUNT = range(5)
_KINDS = {
    "GET": _ONE,
    "GETEX": _ONE,
    "GETDEL": _ONE,
    "HGET": _ONE,
    "JSON.GET": _ONE,
    "HGETALL": _NONEMPTY,
    "HEXISTS": _NONEMPTY,
    "MGET": _EACH_KEY,
    "HMGET": _EACH_FIELD,
    "EXISTS": _COUNT,
}
# command name as redis-py sends it (and in lower case) -> (kind, lower-case name)
_READS: dict[Any, tuple[int, str]] = {
    spelled: (kind, name.lower())
    for name, kind in _KINDS.items()
    for spelled in (name, name.lower())
}


def install() -> list[str]:
    """Hook redis-py when it is installed; returns ``["redis"]`` or ``[]``.

    Idempotent: hooked methods are marked and not wrapped twice.
    """
    if importlib.util.find_spec("redis") is None:
        return []
    try:
        _patch_sync()
    except Exception as exc:
        warn_once("cache-install-redis", "perfpilot: redis not hooked: %r", exc)
        return []
    try:
        _patch_async()
    except Exception as exc:  # an old redis-py without redis.asyncio
        warn_once("cache-install-redis-asyncio", "perfpilot: redis.asyncio not hooked: %r", exc)
    return ["redis"]


def _mark(wrapper: Any, original: Any) -> Any:
    functools.update_wrapper(wrapper, original)
    setattr(wrapper, MARK, True)
    wrapper.__perfpilot_original__ = original
    return wrapper


def _patch_sync() -> None:
    import redis

    original: Callable[..., Any] = redis.Redis.execute_command
    if getattr(original, MARK, False):
        return

    def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        recorder = active.recorder
        result = original(self, *args, **options)
        if recorder is not None:
            try:
                read = _READS.get(args[0])
                if read is not None:
                    _record(recorder, read, args, result)
            except Exception as exc:
                warn_once("cache-redis", "perfpilot: redis lookup not recorded: %r", exc)
        return result

    redis.Redis.execute_command = _mark(execute_command, original)  # type: ignore[method-assign]


def _patch_async() -> None:
    import redis.asyncio

    original: Callable[..., Any] = redis.asyncio.Redis.execute_command
    if getattr(original, MARK, False):
        return

    async def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        recorder = active.recorder
        result = await original(self, *args, **options)
        if recorder is not None:
            try:
                read = _READS.get(args[0])
                if read is not None:
                    _record(recorder, read, args, result)
            except Exception as exc:
                warn_once("cache-redis", "perfpilot: redis lookup not recorded: %r", exc)
        return result

    redis.asyncio.Redis.execute_command = _mark(execute_command, original)  # type: ignore[method-assign]


def _record(recorder: Recorder, read: tuple[int, str], args: Sequence[Any], result: Any) -> None:
    kind, command = read
    if len(args) < 2:
        return
    if kind == _ONE:
        recorder.cache(CACHE, command, key_prefix(args[1]), result is not None)
    elif kind == _NONEMPTY:
        recorder.cache(CACHE, command, key_prefix(args[1]), bool(result))
    elif kind == _EACH_KEY:
        if isinstance(result, list | tuple):
            for key, value in zip(args[1:], result, strict=False):
                recorder.cache(CACHE, command, key_prefix(key), value is not None)
    elif kind == _EACH_FIELD:
        if isinstance(result, list | tuple):
            prefix = key_prefix(args[1])
            for value in result:
                recorder.cache(CACHE, command, prefix, value is not None)
    elif isinstance(result, int):  # _COUNT
        keys = len(args) - 1
        hits = min(max(result, 0), keys)
        prefix = key_prefix(args[1])
        for i in range(keys):
            recorder.cache(CACHE, command, prefix, i < hits)


def key_prefix(key: Any) -> str:
    """The prefix a key is counted under: ``user:42`` → ``user`` (see the module docstring)."""
    if isinstance(key, str):
        text = key
    elif isinstance(key, bytes | bytearray | memoryview):
        text = bytes(key).decode("latin-1")
    else:
        text = str(key)
    head, sep, _ = text.partition(":")
    if sep:
        return head[:MAX_PREFIX]
    return text if len(text) <= MAX_SHORT_KEY else LONG_KEY
