"""Settings, resolved from four sources in order of precedence.

1. command-line options (passed in as ``overrides``),
2. ``PERFPILOT_*`` environment variables,
3. ``perfpilot.toml`` in the working directory, or ``[tool.perfpilot]`` in
   ``pyproject.toml`` when there is no ``perfpilot.toml``,
4. the defaults on :class:`Settings`.

Example:
    >>> load_settings(environ={"PERFPILOT_STORE": "/tmp/x.db"}, cwd="/nonexistent").store
    '/tmp/x.db'
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from perfpilot.errors import ConfigError
from perfpilot.tomlfile import read_toml

DEFAULT_STORE = ".perfpilot/perfpilot.db"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Resolved perfpilot settings.

    Attributes:
        store: Path of the SQLite store (or a store URL).
        processes: Load-generator processes; ``None`` means one per core.
        service: Name of the service under test, used to label runs and
            in-app monitoring data.
        flush_interval_s: Seconds between the in-app recorder's writes to the store.
        slow_request_ms: In-app requests at least this slow are traced.
        trace_sample_rate: Fraction (0..1) of other in-app requests traced at random.
        server_timing: Add ``Server-Timing`` / ``X-Response-Time`` headers to responses.
        prices: Path of a TOML price table for outbound API calls.
        profile_interval_ms: Milliseconds between the in-app stack sampler's
            looks at the threads serving requests (top frames per route for
            CPU hotspots); 0 turns the sampler off.
    """

    store: str = DEFAULT_STORE
    processes: int | None = None
    service: str = "default"
    flush_interval_s: float = 5.0
    slow_request_ms: float = 500.0
    trace_sample_rate: float = 0.01
    server_timing: bool = False
    prices: str | None = None
    profile_interval_ms: float = 10.0


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, value: Any, source: str) -> Any:
    """Convert ``value`` to the type of field ``name``, or raise ConfigError."""
    kind = _FIELDS[name].type
    if kind in ("int | None", "int"):
        if value is None and kind == "int | None":
            return None
        if isinstance(value, bool):
            raise ConfigError(f"expected an integer, got {value!r}", path=source, field=name)
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"expected an integer, got {value!r}", path=source, field=name
            ) from None
        if number < 1:
            raise ConfigError(f"expected a positive integer, got {number}", path=source, field=name)
        return number
    if kind == "float":
        return _coerce_float(name, value, source)
    if kind == "bool":
        return _coerce_bool(name, value, source)
    if value is None and kind == "str | None":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"expected a string, got {value!r}", path=source, field=name)
    return value


def _coerce_float(name: str, value: Any, source: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"expected a number, got {value!r}", path=source, field=name)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"expected a number, got {value!r}", path=source, field=name) from None
    if not number >= 0 or number == float("inf"):
        raise ConfigError(f"expected a finite number >= 0, got {value!r}", path=source, field=name)
    if name == "trace_sample_rate" and number > 1:
        raise ConfigError(
            f"expected a fraction from 0 to 1, got {value!r}", path=source, field=name
        )
    return number


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _coerce_bool(name: str, value: Any, source: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"expected true or false, got {value!r}", path=source, field=name)


def _file_settings(cwd: Path) -> tuple[dict[str, Any], str | None]:
    """Read ``perfpilot.toml`` or ``[tool.perfpilot]`` from ``cwd``."""
    own = cwd / "perfpilot.toml"
    if own.is_file():
        return _read_toml(own), str(own)
    pyproject = cwd / "pyproject.toml"
    if pyproject.is_file():
        table = _read_toml(pyproject).get("tool", {}).get("perfpilot", {})
        if not isinstance(table, dict):
            raise ConfigError("[tool.perfpilot] must be a table", path=str(pyproject))
        return table, str(pyproject)
    return {}, None


def _read_toml(path: Path) -> dict[str, Any]:
    return read_toml(str(path), "settings file")


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Settings:
    """Resolve settings from the command line, the environment and files.

    Args:
        overrides: Values from the command line; ``None`` values are ignored.
        environ: The environment (defaults to ``os.environ``).
        cwd: Where to look for ``perfpilot.toml`` / ``pyproject.toml``.

    Returns:
        The resolved :class:`Settings`.

    Raises:
        ConfigError: A file does not parse or a value has the wrong type.
    """
    env = os.environ if environ is None else environ
    where = Path.cwd() if cwd is None else Path(cwd)
    values: dict[str, Any] = {}

    table, source = _file_settings(where)
    if source is not None:
        section = "perfpilot.toml" if source.endswith("perfpilot.toml") else "[tool.perfpilot]"
        for key, value in table.items():
            name = key.replace("-", "_")
            if name not in _FIELDS:
                known = ", ".join(sorted(_FIELDS))
                raise ConfigError(
                    f"unknown setting in {section} (known: {known})", path=source, field=key
                )
            values[name] = _coerce(name, value, source)

    for name in _FIELDS:
        raw = env.get(f"PERFPILOT_{name.upper()}")
        if raw is not None and raw != "":
            values[name] = _coerce(name, raw, f"PERFPILOT_{name.upper()}")

    for name, value in (overrides or {}).items():
        if value is not None and name in _FIELDS:
            values[name] = _coerce(name, value, "command line")

    return Settings(**values)
