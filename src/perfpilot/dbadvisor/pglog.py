"""Statements and their durations from a PostgreSQL server log.

With ``log_min_duration_statement`` set, PostgreSQL logs each slow statement
as one entry::

    2024-06-01 12:00:00.123 UTC [42] LOG:  duration: 12.345 ms  statement: SELECT ...
    2024-06-01 12:00:01.456 UTC [42] LOG:  duration: 3.2 ms  execute <unnamed>: SELECT ... $1
    2024-06-01 12:00:01.456 UTC [42] DETAIL:  parameters: $1 = '42'

An entry starts on a line with a severity (``LOG:``, ``DETAIL:``...) after any
``log_line_prefix``; a statement spanning several lines continues on lines that
PostgreSQL starts with a tab (or on any line that does not start an entry).
Extended-protocol ``execute`` entries get their parameter values from the
``DETAIL:  parameters:`` line that follows, so the statements keep their real
values; ``parse`` and ``bind`` entries are skipped (the ``execute`` entry
carries the run time). Only the ``stderr`` log format is read.
"""

from __future__ import annotations

import re
from pathlib import Path

from perfpilot.dbadvisor.sqlfile import SourceStatement, read_text
from perfpilot.errors import ConfigError

_ENTRY = re.compile(
    r"^(?!\t)(?P<prefix>.*?)\b(?P<level>LOG|ERROR|WARNING|NOTICE|INFO|DEBUG[1-5]?|FATAL|PANIC"
    r"|DETAIL|HINT|CONTEXT|STATEMENT|LOCATION|QUERY):\s\s(?P<message>.*)$"
)
_DURATION = re.compile(
    r"duration:\s+(?P<ms>\d+(?:\.\d+)?)\s+ms\s+(?P<kind>statement|execute|parse|bind)"
    r"(?:\s+[^:]*)?:\s?(?P<sql>.*)$",
    re.DOTALL,
)
_PARAMETERS = re.compile(r"parameters:\s*(?P<list>.*)$", re.DOTALL)
_PARAMETER = re.compile(r"\s*\$(?P<n>\d+)\s*=\s*(?P<value>'(?:[^']|'')*'|NULL)\s*(?:,|$)")
_PLACEHOLDER = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|\$(?P<n>\d+)(?!\d)""")


def parse_pg_log(text: str, *, path: str = "<log>") -> list[SourceStatement]:
    """The timed statements of a PostgreSQL log, in order.

    Args:
        text: The log's text.
        path: The file name used in error messages.

    Returns:
        One :class:`SourceStatement` per ``duration: ... statement:`` or
        ``execute`` entry, with its duration in milliseconds, parameter
        values substituted when the log gives them.

    Raises:
        ConfigError: A ``parameters:`` line cannot be read, the text is
            binary, or no timed statement is found (with the file and line).

    Example:
        >>> log = "2024-06-01 UTC [7] LOG:  duration: 2.5 ms  statement: SELECT 1"
        >>> parse_pg_log(log)[0].duration_ms
        2.5
    """
    nul = text.find("\0")
    if nul >= 0:
        raise ConfigError(
            "not a text file (NUL character)", path=path, line=text.count("\n", 0, nul) + 1
        )
    found: list[SourceStatement] = []
    for level, message, line in _entries(text):
        if level == "DETAIL" and found and found[-1].line < 0:
            found[-1] = _with_parameters(found[-1], message, path, line)
            continue
        if found and found[-1].line < 0:  # an execute entry without parameters
            found[-1] = _settle(found[-1])
        if level != "LOG":
            continue
        timed = _DURATION.search(message)
        if timed is None or timed.group("kind") in ("parse", "bind"):
            continue
        sql = timed.group("sql").strip()
        if not sql:
            continue
        ms = float(timed.group("ms"))
        # a negative line marks an execute entry still waiting for its DETAIL line
        mark = -line if timed.group("kind") == "execute" else line
        found.append(SourceStatement(sql, mark, ms))
    if found and found[-1].line < 0:
        found[-1] = _settle(found[-1])
    if not found:
        raise ConfigError(
            "no 'duration: ... ms  statement: ...' entries found "
            "(set log_min_duration_statement and use the stderr log format)",
            path=path,
            line=1,
        )
    return found


def read_pg_log(path: str | Path) -> list[SourceStatement]:
    """The timed statements of a PostgreSQL log file (see :func:`parse_pg_log`).

    Raises:
        ConfigError: The file cannot be read or holds no timed statement.
    """
    return parse_pg_log(read_text(path), path=str(path))


def _entries(text: str) -> list[tuple[str, str, int]]:
    """``(level, message, line)`` for each entry, continuation lines joined."""
    entries: list[tuple[str, str, int]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        match = _ENTRY.match(raw)
        if match is not None:
            entries.append((match.group("level"), match.group("message"), number))
        elif entries:
            level, message, line = entries[-1]
            entries[-1] = (level, f"{message}\n{raw.removeprefix(chr(9))}", line)
    return entries


def _settle(statement: SourceStatement) -> SourceStatement:
    return SourceStatement(statement.sql, -statement.line, statement.duration_ms)


def _with_parameters(
    statement: SourceStatement, message: str, path: str, line: int
) -> SourceStatement:
    """``statement`` with the ``$n`` of a ``DETAIL:  parameters:`` message substituted."""
    settled = _settle(statement)
    listing = _PARAMETERS.match(message.strip())
    if listing is None:
        return settled
    values: dict[str, str] = {}
    rest = listing.group("list").strip()
    pos = 0
    while pos < len(rest):
        match = _PARAMETER.match(rest, pos)
        if match is None or match.end() == pos:
            raise ConfigError(
                f"cannot read the parameter list at {rest[pos : pos + 30]!r}", path=path, line=line
            )
        values[match.group("n")] = match.group("value")
        pos = match.end()

    def substitute(token: re.Match[str]) -> str:
        number = token.group("n")
        if number is None:
            return token.group()
        return values.get(number, token.group())

    sql = _PLACEHOLDER.sub(substitute, settled.sql)
    return SourceStatement(sql, settled.line, settled.duration_ms)
