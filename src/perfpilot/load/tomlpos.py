"""Where keys sit in a TOML file, and typed reading that reports those places.

:mod:`tomllib` reports positions only for syntax errors. :class:`KeyLocator`
finds the line and column of each key of a valid document, and
:class:`TypedReader` checks the type and range of a value, raising a
:class:`~perfpilot.errors.ConfigError` that names the file, the field (as
:func:`field_name` spells it, ``requests[2].path``) and its line and column.
"""

from __future__ import annotations

import bisect
import contextlib
import difflib
import math
import re
import tomllib
from collections.abc import Collection
from typing import Any

from perfpilot.errors import ConfigError
from perfpilot.load.durations import parse_duration
from perfpilot.load.http_syntax import header_problem

FieldPath = tuple[str | int, ...]
"""A key path into a parsed document: ``("requests", 2, "path")``."""


class KeyLocator:
    """Finds the line and column of keys in TOML text that :mod:`tomllib` accepted.

    :mod:`tomllib` reports positions only for syntax errors, so this walks the
    text once more, recording where each key path (``("requests", 2, "path")``,
    ``("executor", "stages", 1)``) starts. It understands just enough TOML to
    do that on valid documents; if anything surprises it, positions are simply
    unknown.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.found: dict[FieldPath, tuple[int, int]] = {}
        self._aot: dict[FieldPath, int] = {}
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        # A best-effort aid for messages, never a reason to fail.
        with contextlib.suppress(Exception):
            self._document()

    def find(self, field: FieldPath) -> tuple[int | None, int | None]:
        """The 1-based line and column of ``field``, or of its nearest known parent."""
        for end in range(len(field), 0, -1):
            hit = self.found.get(field[:end])
            if hit is not None:
                return hit
        return None, None

    def _here(self, pos: int) -> tuple[int, int]:
        index = bisect.bisect_right(self._line_starts, pos) - 1
        return index + 1, pos - self._line_starts[index] + 1

    def _mark(self, path: FieldPath, pos: int) -> None:
        self.found.setdefault(path, self._here(pos))

    def _skip(self, newlines: bool) -> None:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            elif char == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return

    def _document(self) -> None:
        table: FieldPath = ()
        text = self.text
        while True:
            self._skip(newlines=True)
            if self.pos >= len(text):
                return
            start = self.pos
            if text.startswith("[[", self.pos):
                self.pos += 2
                segments = self._key()
                path = (*self._resolve(segments[:-1]), segments[-1])
                index = self._aot.get(path, 0)
                self._aot[path] = index + 1
                table = (*path, index)
                self._mark(table, start)
            elif text.startswith("[", self.pos):
                self.pos += 1
                table = self._resolve(self._key())
                self._mark(table, start)
            else:
                segments = self._key()
                path = table + segments
                self._mark(path, start)
                self._skip(newlines=False)
                self.pos += 1  # "="
                self._value(path)
            end = text.find("\n", self.pos)
            self.pos = len(text) if end < 0 else end

    def _resolve(self, segments: FieldPath) -> FieldPath:
        """Insert the current index after each array-of-tables in a header path."""
        out: FieldPath = ()
        for segment in segments:
            out = (*out, segment)
            if out in self._aot:
                out = (*out, self._aot[out] - 1)
        return out

    def _key(self) -> FieldPath:
        segments: list[str | int] = []
        text = self.text
        while True:
            self._skip(newlines=False)
            char = text[self.pos]
            if char in "\"'":
                start = self.pos
                self._string()
                segments.append(tomllib.loads("k = " + text[start : self.pos])["k"])
            else:
                start = self.pos
                while self.pos < len(text) and (text[self.pos].isalnum() or text[self.pos] in "_-"):
                    self.pos += 1
                segments.append(text[start : self.pos])
            self._skip(newlines=False)
            if self.pos < len(text) and text[self.pos] == ".":
                self.pos += 1
                continue
            return tuple(segments)

    def _string(self) -> None:
        text = self.text
        quote = text[self.pos]
        if text.startswith(quote * 3, self.pos):
            self.pos += 3
            while not text.startswith(quote * 3, self.pos):
                self.pos += 2 if quote == '"' and text[self.pos] == "\\" else 1
            self.pos += 3
            while self.pos < len(text) and text[self.pos] == quote:
                self.pos += 1
            return
        self.pos += 1
        while text[self.pos] != quote:
            self.pos += 2 if quote == '"' and text[self.pos] == "\\" else 1
        self.pos += 1

    def _value(self, path: FieldPath) -> None:
        self._skip(newlines=False)
        text = self.text
        char = text[self.pos]
        if char in "\"'":
            self._string()
        elif char == "[":
            self.pos += 1
            index = 0
            while True:
                self._skip(newlines=True)
                if text[self.pos] == "]":
                    self.pos += 1
                    return
                self._mark((*path, index), self.pos)
                self._value((*path, index))
                self._skip(newlines=True)
                if text[self.pos] == ",":
                    self.pos += 1
                    index += 1
        elif char == "{":
            self.pos += 1
            while True:
                self._skip(newlines=False)
                if text[self.pos] == "}":
                    self.pos += 1
                    return
                start = self.pos
                key = path + self._key()
                self._mark(key, start)
                self._skip(newlines=False)
                self.pos += 1  # "="
                self._value(key)
                self._skip(newlines=False)
                if text[self.pos] == ",":
                    self.pos += 1
        else:
            while self.pos < len(text) and text[self.pos] not in ",]}\n#":
                self.pos += 1


def field_name(field: FieldPath) -> str:
    """Spell a key path as in messages: ``requests[2].path``."""
    out = ""
    for part in field:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def suggest(word: str, choices: Collection[str]) -> str:
    """A " (did you mean 'x'?)" hint for a misspelt ``word``, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def describe(value: object) -> str:
    """Name the TOML type of ``value`` (and show it, if it is a scalar) for messages."""
    kind = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{kind} {shown}" if not isinstance(value, dict | list) else kind


class TypedReader:
    """Typed access to a parsed scenario, raising located ConfigErrors.

    Args:
        path: The file, named in every error.
        text: Its text, which :class:`KeyLocator` searches for positions.
    """

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.locator = KeyLocator(text)

    def error(self, message: str, field: FieldPath) -> ConfigError:
        """A ConfigError about ``field``, with its file, line and column."""
        line, column = self.locator.find(field)
        return ConfigError(
            message, path=self.path, line=line, column=column, field=field_name(field) or None
        )

    def line(self, field: FieldPath) -> int | None:
        """The 1-based line of ``field`` (or of its nearest known parent)."""
        return self.locator.find(field)[0]

    def table(self, value: object, field: FieldPath) -> dict[str, Any]:
        """``value`` if it is a table."""
        if not isinstance(value, dict):
            raise self.error(f"expected a table, got {describe(value)}", field)
        return value

    def keys(self, table: dict[str, Any], allowed: Collection[str], field: FieldPath) -> None:
        """Reject a key of ``table`` that is not ``allowed``, suggesting the closest."""
        for key in table:
            if key not in allowed:
                raise self.error(
                    f"unknown field '{key}'{suggest(key, allowed)}; "
                    f"expected one of {', '.join(sorted(allowed))}",
                    (*field, key),
                )

    def string(self, value: object, field: FieldPath) -> str:
        """``value`` if it is a non-blank string."""
        if not isinstance(value, str):
            raise self.error(f"expected a string, got {describe(value)}", field)
        if not value.strip():
            raise self.error("expected a non-empty string", field)
        return value

    def boolean(self, value: object, field: FieldPath) -> bool:
        """``value`` if it is ``true`` or ``false``."""
        if not isinstance(value, bool):
            raise self.error(f"expected true or false, got {describe(value)}", field)
        return value

    def integer(self, value: object, field: FieldPath, *, minimum: int) -> int:
        """``value`` as a whole number ``>= minimum`` (``2.0`` counts as ``2``)."""
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"expected a whole number, got {describe(value)}", field)
        if value < minimum:
            raise self.error(f"expected a whole number >= {minimum}, got {value}", field)
        return value

    def number(self, value: object, field: FieldPath, *, positive: bool) -> float:
        """``value`` as a finite number, ``> 0`` if ``positive`` else ``>= 0``."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"expected a number, got {describe(value)}", field)
        number = float(value)
        if not math.isfinite(number):
            raise self.error(f"expected a finite number, got {value!r}", field)
        if positive and number <= 0:
            raise self.error(f"expected a number > 0, got {value!r}", field)
        if number < 0:
            raise self.error(f"expected a number >= 0, got {value!r}", field)
        return number

    def duration(self, value: object, field: FieldPath, *, allow_zero: bool = False) -> float:
        """``value`` as seconds: a number or a string such as ``"1m30s"``."""
        try:
            seconds = parse_duration(value)
        except ConfigError as exc:
            raise self.error(exc.message, field) from None
        if seconds == 0 and not allow_zero:
            raise self.error(f"expected a duration > 0, got {value!r}", field)
        return seconds

    def string_map(self, value: object, field: FieldPath) -> dict[str, str]:
        """``value`` as a table of strings (numbers are turned into strings)."""
        table = self.table(value, field)
        out: dict[str, str] = {}
        for key, item in table.items():
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                raise self.error(f"expected a string, got {describe(item)}", (*field, key))
            out[key] = str(item)
        return out

    def headers(self, value: object, field: FieldPath) -> tuple[tuple[str, str], ...]:
        """``value`` as a table of valid HTTP header names and values."""
        out = []
        for key, item in self.string_map(value, field).items():
            problem = header_problem(key, item)
            if problem:
                raise self.error(problem, (*field, key))
            out.append((key, item))
        return tuple(out)
