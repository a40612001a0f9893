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
        service: Name of the service under test, used to label runs.
    """

    store: str = DEFAULT_STORE
    processes: int | None = None
    service: str = "default"


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
    if not isinstance(value, str):
        raise ConfigError(f"expected a string, got {value!r}", path=source, field=name)
    return value


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
