"""Cache hooks: redis-py hits and misses, by command and key prefix.

:func:`install` patches ``redis.Redis.execute_command`` and
``redis.asyncio.Redis.execute_command``. After a read command returns, each
key looked up is reported to the active recorder as
``recorder.cache("redis", command, prefix, hit, duration)``:

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

**Time.** Each of these commands, and the writes of cache-aside code (SET,
SETEX, PSETEX, SETNX, MSET, HSET, HMSET, DEL, UNLINK, EXPIRE, PEXPIRE,
JSON.SET), is timed: the duration of ``execute_command`` (the round trip and
the reply's parsing). Inside a request it is the request's cache time (the
first key of a multi-key lookup carries it); writes, failed commands and
lookups with nothing to count are recorded for their time only (``hit`` is
``None``: neither hit nor miss). Outside a request only hits and misses
count.

Other commands (queues, counters, pub/sub, scripts) are not recorded: their
time is application time. The **prefix** of
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

from perfpilot.instrument.context import active, perf, warn_once
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
# The writes of cache-aside code: timed, neither hit nor miss.
_WRITE_NAMES = ("SET", "SETEX", "PSETEX", "SETNX", "MSET", "HSET", "HMSET", "DEL", "UNLINK",
                "EXPIRE", "PEXPIRE", "JSON.SET")  # fmt: skip
_WRITES: dict[Any, str] = {
    spelled: name.lower() for name in _WRITE_NAMES for spelled in (name, name.lower())
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
        if recorder is None:
            return original(self, *args, **options)
        start = perf()
        try:
            result = original(self, *args, **options)
        except BaseException:
            _failed(recorder, args, perf() - start)
            raise
        _done(recorder, args, result, perf() - start)
        return result

    redis.Redis.execute_command = _mark(execute_command, original)  # type: ignore[method-assign]


def _patch_async() -> None:
    import redis.asyncio

    original: Callable[..., Any] = redis.asyncio.Redis.execute_command
    if getattr(original, MARK, False):
        return

    async def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        recorder = active.recorder
        if recorder is None:
            return await original(self, *args, **options)
        start = perf()
        try:
            result = await original(self, *args, **options)
        except BaseException:
            _failed(recorder, args, perf() - start)
            raise
        _done(recorder, args, result, perf() - start)
        return result

    redis.asyncio.Redis.execute_command = _mark(execute_command, original)  # type: ignore[method-assign]


def _done(recorder: Recorder, args: Sequence[Any], result: Any, duration: float) -> None:
    """Record a command that answered: lookups per key, writes as time only."""
    try:
        command = args[0] if args else None
        read = _READS.get(command)
        if read is not None:
            _record(recorder, read, args, result, duration)
        else:
            write = _WRITES.get(command)
            if write is not None:
                recorder.cache(CACHE, write, _first_prefix(args), None, duration)
    except Exception as exc:
        warn_once("cache-redis", "perfpilot: redis lookup not recorded: %r", exc)


def _failed(recorder: Recorder, args: Sequence[Any], duration: float) -> None:
    """A read or write that raised: its time counts, it is neither hit nor miss."""
    try:
        command = args[0] if args else None
        read = _READS.get(command)
        name = read[1] if read is not None else _WRITES.get(command)
        if name is not None:
            recorder.cache(CACHE, name, _first_prefix(args), None, duration)
    except Exception as exc:
        warn_once("cache-redis", "perfpilot: redis lookup not recorded: %r", exc)


def _first_prefix(args: Sequence[Any]) -> str:
    return key_prefix(args[1]) if len(args) > 1 else ""


def _record(
    recorder: Recorder, read: tuple[int, str], args: Sequence[Any], result: Any, duration: float
) -> None:
    """One event per key looked up; the first carries the command's duration."""
    kind, command = read
    found: list[tuple[str, bool]] = []
    if len(args) < 2:
        pass
    elif kind == _ONE:
        found.append((key_prefix(args[1]), result is not None))
    elif kind == _NONEMPTY:
        found.append((key_prefix(args[1]), bool(result)))
    elif kind == _EACH_KEY:
        if isinstance(result, list | tuple):
            found += [
                (key_prefix(key), value is not None)
                for key, value in zip(args[1:], result, strict=False)
            ]
    elif kind == _EACH_FIELD:
        if isinstance(result, list | tuple):
            prefix = key_prefix(args[1])
            found += [(prefix, value is not None) for value in result]
    elif isinstance(result, int):  # _COUNT
        keys = len(args) - 1
        hits = min(max(result, 0), keys)
        prefix = key_prefix(args[1])
        found += [(prefix, i < hits) for i in range(keys)]
    if not found:  # nothing looked up (an empty reply): the time still counts
        recorder.cache(CACHE, command, _first_prefix(args), None, duration)
        return
    for prefix, hit in found:
        recorder.cache(CACHE, command, prefix, hit, duration)
        duration = 0.0


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
