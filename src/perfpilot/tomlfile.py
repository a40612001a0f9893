"""Reading TOML files with errors that point at the file, line and column."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from perfpilot.errors import ConfigError

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_AT_END = re.compile(r"\s*\(at end of document\)\s*$")


def read_text(path: str, what: str = "file") -> str:
    """Read ``path`` as UTF-8 text (a BOM is allowed).

    Raises:
        ConfigError: unreadable, or not UTF-8 (with the line of the bad byte).
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror or exc}", path=path) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{what} is not UTF-8 text (byte 0x{raw[exc.start]:02x})", path=path, line=line
        ) from None


def parse_toml(text: str, path: str) -> dict[str, Any]:
    """Parse TOML text read from ``path``.

    Python 3.11's ``tomllib`` puts the position in the message only; it is
    pulled out into the error's ``line`` and ``column``.

    Raises:
        ConfigError: the text is not valid TOML.
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(getattr(exc, "msg", None) or exc)
        line: int | None = getattr(exc, "lineno", None)
        column: int | None = getattr(exc, "colno", None)
        match = _TOML_POSITION.search(message)
        if match:
            line, column = int(match.group(1)), int(match.group(2))
            message = message[: match.start()]
        elif _TOML_AT_END.search(message):
            message = _TOML_AT_END.sub("", message) + " at the end of the file"
            line = text.count("\n") + 1
        raise ConfigError(f"invalid TOML: {message}", path=path, line=line, column=column) from None
    except RecursionError:
        raise ConfigError("invalid TOML: values are nested too deeply", path=path) from None


def read_toml(path: str, what: str = "file") -> dict[str, Any]:
    """Read and parse a TOML file; see :func:`read_text` and :func:`parse_toml`."""
    return parse_toml(read_text(path, what), path)
