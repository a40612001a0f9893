"""Flat report records: frozen dataclasses whose fields are numbers, strings or ``None``.

Most rows of a report (a route's time split, a health check, an alert rule) are
such records. :class:`FlatRecord` gives them one ``to_dict``/``from_dict`` pair
that checks field names and converts JSON numbers back to the declared type,
so a report read from JSON equals the report that was written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Self, cast

from perfpilot.errors import ConfigError

_CONVERT: dict[str, type] = {"float": float, "int": int, "str": str, "bool": bool}


class FlatRecord:
    """Mixin of frozen dataclasses with only ``int``, ``float``, ``str``, ``bool``
    fields, any of them optional (``X | None``)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: one key per field."""
        return dataclasses.asdict(cast(Any, self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`; missing fields take their defaults.

        Raises:
            ConfigError: A field without a default is missing, or a value has
                the wrong type.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"malformed report: expected an object for {cls.__name__}")
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cast(Any, cls)):
            if field.name not in data:
                if field.default is dataclasses.MISSING:
                    raise ConfigError(f"malformed report: {cls.__name__} needs {field.name!r}")
                continue
            values[field.name] = _convert(
                cls.__name__, field.name, str(field.type), data[field.name]
            )
        return cls(**values)


def _convert(owner: str, name: str, declared: str, value: Any) -> Any:
    kinds = [part.strip() for part in declared.split("|")]
    if value is None:
        if "None" in kinds:
            return None
        raise ConfigError(f"malformed report: {owner}.{name} must not be null")
    kind = _CONVERT.get(kinds[0])
    if kind is None:  # not a flat field: keep as is
        return value
    valid = (
        isinstance(value, bool)
        if kind is bool
        else isinstance(value, str)
        if kind is str
        else isinstance(value, int | float) and not isinstance(value, bool)
    )
    if not valid:
        raise ConfigError(f"malformed report: {owner}.{name} must be {kinds[0]}, got {value!r}")
    return kind(value)
