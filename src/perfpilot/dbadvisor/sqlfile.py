"""Splitting a file of SQL statements on ``;``, with the line each starts on.

Semicolons inside string literals (``'...'``, ``E'...'``), quoted identifiers
(``"..."``), comments (``--``, ``/* */``, nested as PostgreSQL allows) and
dollar-quoted bodies (``$$...$$``, ``$tag$...$tag$``) do not split. An
unterminated literal, identifier, comment or dollar quote is a
:class:`~perfpilot.errors.ConfigError` naming the file and the line it opens
on, as is a file that is not UTF-8 text or holds no statement.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from perfpilot.errors import ConfigError

# What can open a quoted or commented region, or end a statement.
_TOKEN = re.compile(r"""(?P<e>(?<![\w$])[Ee]')|'|"|--|/\*|\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$|;""")
_STRING = re.compile(r"(?:[^']|'')*'")
_ESTRING = re.compile(r"(?:[^'\\]|\\.|'')*'", re.DOTALL)
_IDENT = re.compile(r'(?:[^"]|"")*"')
_COMMENT_PART = re.compile(r"/\*|\*/")
_SIGNIFICANT = re.compile(r"\S")


@dataclasses.dataclass(frozen=True)
class SourceStatement:
    """One statement read from a file.

    Attributes:
        sql: The statement text, without its ``;`` and surrounding blanks.
        line: 1-based line the statement starts on.
        duration_ms: How long it ran, when the source says (a server log).
    """

    sql: str
    line: int
    duration_ms: float | None = None


def split_sql(text: str, *, path: str = "<sql>") -> list[SourceStatement]:
    """The statements of ``text``, split on ``;`` outside quotes and comments.

    Args:
        text: SQL text.
        path: The file name used in error messages.

    Returns:
        The non-empty statements in order (a piece holding only comments is
        not a statement).

    Raises:
        ConfigError: A quote, comment or dollar quote is not closed, or a NUL
            character shows the text is binary.

    Example:
        >>> [s.sql for s in split_sql("select 1; select ';'")]
        ['select 1', "select ';'"]
    """
    nul = text.find("\0")
    if nul >= 0:
        raise ConfigError("not a text file (NUL character)", path=path, line=_line_of(text, nul))
    statements: list[SourceStatement] = []
    start = 0  # start of the current statement
    first = -1  # offset of its first significant character, -1 while none
    pos = 0
    while True:
        match = _TOKEN.search(text, pos)
        end_of_text = match is None
        token_at = len(text) if match is None else match.start()
        if first < 0:
            gap = _SIGNIFICANT.search(text, pos, token_at)
            if gap is not None:
                first = gap.start()
        if match is None or match.group() == ";":
            if first >= 0:
                body = text[start:token_at].strip()
                statements.append(SourceStatement(body, _line_of(text, first)))
            if end_of_text:
                return statements
            start = pos = token_at + 1
            first = -1
            continue
        token = match.group()
        if token == "--":
            newline = text.find("\n", match.end())
            pos = len(text) if newline < 0 else newline + 1
            continue
        if token == "/*":
            pos = _skip_comment(text, match.start(), path)
            continue
        if first < 0:
            first = match.start()
        pos = _skip_quoted(text, match, path)


def read_sql_file(path: str | Path) -> list[SourceStatement]:
    """The statements of a SQL file (see :func:`split_sql`).

    Raises:
        ConfigError: The file cannot be read, is not UTF-8, holds no
            statement, or a quote or comment is not closed.
    """
    name = str(path)
    text = read_text(path)
    statements = split_sql(text, path=name)
    if not statements:
        raise ConfigError("no SQL statement found", path=name, line=1)
    return statements


def read_text(path: str | Path) -> str:
    """A UTF-8 text file's content; errors name the file and the line.

    Raises:
        ConfigError: The file cannot be read or is not UTF-8.
    """
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", path=name) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x})", path=name, line=line
        ) from None


def _skip_quoted(text: str, match: re.Match[str], path: str) -> int:
    """Offset just past the literal, identifier or dollar quote ``match`` opens."""
    token = match.group()
    opened = match.start()
    if match.group("e"):
        found, what = _ESTRING.match(text, match.end()), "string literal"
    elif token == "'":
        found, what = _STRING.match(text, match.end()), "string literal"
    elif token == '"':
        found, what = _IDENT.match(text, match.end()), "quoted identifier"
    else:  # a dollar quote: the same tag closes it
        close = text.find(token, match.end())
        if close < 0:
            raise ConfigError(
                f"unterminated dollar quote {token}", path=path, line=_line_of(text, opened)
            )
        return close + len(token)
    if found is None:
        raise ConfigError(f"unterminated {what}", path=path, line=_line_of(text, opened))
    return found.end()


def _skip_comment(text: str, opened: int, path: str) -> int:
    """Offset just past the (possibly nested) block comment opening at ``opened``."""
    depth = 0
    pos = opened
    for part in _COMMENT_PART.finditer(text, opened):
        if part.start() < pos:
            continue  # the '*' of '/*/' cannot also close
        depth += 1 if part.group() == "/*" else -1
        pos = part.end()
        if depth == 0:
            return pos
    raise ConfigError("unterminated /* comment", path=path, line=_line_of(text, opened))


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1
