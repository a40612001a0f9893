"""Flow files: a scenario's ``[flow]`` names an ``async def`` in a Python file.

:func:`load_flow` imports the file and returns the function, turning every
way an import can fail into a :class:`~perfpilot.errors.ConfigError` that
points at the file and, when known, the line.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, cast

from perfpilot.errors import ConfigError
from perfpilot.load.plan import FlowSpec
from perfpilot.load.tomlpos import suggest


def _line_in(tb: TracebackType | None, path: str) -> int | None:
    line = None
    while tb is not None:
        if os.path.abspath(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def load_flow(spec: FlowSpec) -> Callable[..., Awaitable[Any]]:
    """Import a flow file and return its ``async def`` flow function.

    The file's directory is on ``sys.path`` while it is imported, so it can
    import modules next to it. The module is registered in ``sys.modules``
    under a name derived from its path (dataclasses and pickling need that).

    Args:
        spec: The flow file and function name.

    Returns:
        The coroutine function, called as ``await flow(session)``.

    Raises:
        ConfigError: The file is missing or fails to import (any exception
            while running it, with the line when known), or the function is
            missing or not ``async``.
    """
    path = os.path.abspath(spec.path)
    field = "flow.file"
    if not os.path.isfile(path):
        raise ConfigError(f"flow file not found: {path}", path=path, field=field)
    module_name = (
        "perfpilot_flow_" + hashlib.sha256(path.encode("utf-8", "replace")).hexdigest()[:16]
    )
    directory = os.path.dirname(path)
    sys.path.insert(0, directory)
    try:
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(
                "flow file failed to import: not a Python file", path=path, field=field
            )
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        module_spec.loader.exec_module(module)
    except ConfigError:
        sys.modules.pop(module_name, None)
        raise
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        here = exc.filename is not None and os.path.abspath(exc.filename) == path
        where = "" if here else f" (in {exc.filename}:{exc.lineno})"
        raise ConfigError(
            f"flow file failed to import: {type(exc).__name__}: {exc.msg}{where}",
            path=path,
            line=exc.lineno if here else _line_in(exc.__traceback__, path),
            column=exc.offset if here else None,
            field=field,
        ) from None
    except (Exception, SystemExit) as exc:
        sys.modules.pop(module_name, None)
        raise ConfigError(
            f"flow file failed to import: {type(exc).__name__}: {exc}",
            path=path,
            line=_line_in(exc.__traceback__, path),
            field=field,
        ) from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(directory)
    function = getattr(module, spec.function, None)
    if function is None:
        available = sorted(
            name
            for name, value in vars(module).items()
            if inspect.iscoroutinefunction(value) and not name.startswith("_")
        )
        hint = suggest(spec.function, available)
        listed = f"; async functions in it: {', '.join(available)}" if available else ""
        raise ConfigError(
            f"flow file has no function {spec.function!r}{hint}{listed}",
            path=path,
            field="flow.function",
        )
    if not inspect.iscoroutinefunction(function):
        code = getattr(function, "__code__", None)
        raise ConfigError(
            f"{spec.function} must be an async function: async def {spec.function}(session)",
            path=path,
            line=getattr(code, "co_firstlineno", None),
            field="flow.function",
        )
    return cast(Callable[..., Awaitable[Any]], function)
