"""SQL fingerprints: one stable id per statement shape, literals redacted.

``fingerprint(sql, db)`` returns ``(id, normalized)``: the statement with every
string and number literal and every driver placeholder (``?``, ``?1``, ``%s``,
``%(name)s``, ``:name``, ``$1``) written ``?``, ``IN`` lists, ``VALUES`` rows and
``ARRAY[...]`` of placeholders collapsed to one (``IN (1, 2, 3)`` and
``IN (4, 5)`` share an id), comments dropped, keywords upper-cased and
unquoted identifiers lower-cased (sqlglot, in the dialect of ``db``); ``id``
is the first 16 hex digits of the SHA-1 of ``normalized``. ``NULL``, ``TRUE``
and ``FALSE`` are kept: they are part of a statement's shape, not data.

It runs in the flusher's thread, never on the request path, in two steps:

1. A regex scanner (linear, tens of microseconds) turns the text into its
   *shape*: literals and placeholders ``?``, whitespace collapsed.
2. sqlglot parses one statement per shape (about a millisecond), so an app
   that inlines literals into its SQL costs one parse per shape, not one per
   distinct text. Both steps are cached (bounded, cleared when full).

Literals never get through: sqlglot's tree is redacted node by node, and its
output is scanned once more. If sqlglot turned a literal into something else
(SQLite reads ``SELECT a 'x'`` as an alias), fails, or falls back to an opaque
command (vendor syntax), the shape from step 1 is the normalized text.
:func:`fingerprint` never raises.
"""

from __future__ import annotations

import hashlib
import re

from perfpilot.instrument.sqlglot_quiet import load_sqlglot, quiet_parse, quiet_sqlglot

__all__ = ["fingerprint", "shape"]

MAX_CACHE = 10_000
# sqlglot is superlinear on huge texts (multi-megabyte bulk INSERTs); past
# this many characters the regex shape is the normalized text.
MAX_PARSE_CHARS = 20_000

_DIALECTS = {
    "sqlite": "sqlite",
    "postgresql": "postgres",
    "postgres": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "mssql": "tsql",
    "oracle": "oracle",
    "duckdb": "duckdb",
}

# Words upper-cased in a shape (only the unparsable ones are shown as shapes).
_KEYWORD_LIST = """
    select from where and or not in is null insert into values update set delete join left
    right inner outer full cross on as order by group having limit offset union all distinct
    case when then else end exists between like ilike create table index drop alter add
    primary foreign references with returning conflict do nothing asc desc true false begin
    commit rollback savepoint release pragma vacuum analyze explain replace default unique
    using natural lateral window over partition fetch first next rows only for share nowait
    skip locked truncate grant revoke copy show"""
_KEYWORDS = frozenset(_KEYWORD_LIST.split())


class _Flavor:
    """How one SQL dialect quotes strings, identifiers and placeholders."""

    def __init__(self, name: str | None) -> None:
        self.dialect = name
        backslash = name == "mysql"
        plain = r"(?:[^'\\]|\\.|'')*" if backslash else r"(?:[^']|'')*"
        parts = [r"(?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))"]
        if name == "mysql":
            parts.append(r"(?P<comment2>\#[^\n]*)")
        if name in ("postgres", None):
            parts.append(r"(?P<estr>(?<![\w$])[Ee]'(?:[^'\\]|\\.|'')*(?:'|\Z))")
        parts.append(rf"(?P<str>(?:(?<![\w$])(?:[BbXxNn]|[Uu]&))?'{plain}(?:'|\Z))")
        if name in ("postgres", None):
            parts.append(r"(?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?(?:\$(?P=tag)\$|\Z))")
        if backslash:
            parts.append(r'(?P<dstr>"(?:[^"\\]|\\.|"")*(?:"|\Z))')
            parts.append(r"(?P<ident>`(?:[^`]|``)*`)")
        else:
            parts.append(r'(?P<ident>"(?:[^"]|"")*"|`(?:[^`]|``)*`)')
        params = [r"%\([^)]*\)[sbt]", r"%[sbt]", r"\$\d+", r"(?<![:\w]):[A-Za-z_]\w*"]
        if name == "sqlite":
            params += [r"@[A-Za-z_]\w*", r"\$[A-Za-z_]\w*"]
        parts.append(rf"(?P<param>{'|'.join(params)})")
        parts.append(r"(?P<qmark>\?\d*)")
        parts.append(r"(?P<pct>%%)")
        parts.append(
            r"(?P<num>(?<![\w$])(?:0[xX][0-9A-Fa-f]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?))"
        )
        # the look-ahead lets the engine skip plain words and punctuation fast
        first = r"""(?=[-/'"`$%?:@#0-9.EeBbXxNnUu])"""
        self.scanner = re.compile(f"{first}(?:{'|'.join(parts)})", re.DOTALL)
        # sqlglot's postgres reader takes ``?`` for the JSONB operator: there,
        # placeholders are handed to it as ``%s``.
        self.parse_placeholder = "%s" if name == "postgres" else "?"


_FLAVORS: dict[str | None, _Flavor] = {}
_LITERAL_GROUPS = frozenset({"estr", "str", "dollar", "dstr", "num"})


def _flavor(db: str) -> _Flavor:
    name = _DIALECTS.get(db.lower()) if db else None
    flavor = _FLAVORS.get(name)
    if flavor is None:
        flavor = _FLAVORS[name] = _Flavor(name)
    return flavor


def _count_literals(text: str, flavor: _Flavor) -> int:
    return sum(1 for m in flavor.scanner.finditer(text) if m.lastgroup in _LITERAL_GROUPS)


_ROW = r"\(\s*\?(?:\s*,\s*\?)*\s*\)"
_PLACEHOLDER_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")
_ROW_LIST = re.compile(rf"\(\s*({_ROW})(?:\s*,\s*{_ROW})+\s*\)")
_ROWS = re.compile(rf"({_ROW})(?:\s*,\s*{_ROW})+")
_ARRAY = re.compile(r"\[\s*\?(?:\s*,\s*\?)+\s*\]")


def _after(match: re.Match[str], keyword: str) -> bool:
    """Whether the match follows the word ``keyword`` (any case)."""
    start = match.start()
    before = match.string[max(0, start - len(keyword) - 8) : start].rstrip()
    if before[-len(keyword) :].upper() != keyword:
        return False
    rest = before[: -len(keyword)]
    return not rest or not (rest[-1].isalnum() or rest[-1] in "_$")


def _in_list(match: re.Match[str]) -> str:
    return "(?)" if _after(match, "IN") else match.group()


def _in_rows(match: re.Match[str]) -> str:
    return f"({match.group(1)})" if _after(match, "IN") else match.group()


def _values_rows(match: re.Match[str]) -> str:
    return match.group(1) if _after(match, "VALUES") else match.group()


def _collapse(text: str) -> str:
    """``IN (?, ?)`` → ``IN (?)``; the same for ``IN`` row lists, ``VALUES``
    rows and ``ARRAY[...]``, so list lengths do not split fingerprints."""
    if "?," not in text and "?)," not in text:  # no list of two or more
        return text
    text = _ROW_LIST.sub(_in_rows, text)
    text = _PLACEHOLDER_LIST.sub(_in_list, text)
    text = _ROWS.sub(_values_rows, text)
    return _ARRAY.sub("[?]", text)


def _redact(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "ident":
        return match.group()
    if kind in ("comment", "comment2"):
        return " "
    if kind == "pct":
        return "%"
    return "?"  # literals and placeholders


def _finish(text: str) -> str:
    # whitespace inside a quoted identifier is collapsed too: harmless here
    return _collapse(" ".join(text.split()).rstrip(";").rstrip())


_WORDS = re.compile(r'"(?:[^"]|"")*"|`(?:[^`]|``)*`|[A-Za-z_][\w$]*')


def _upper_keywords(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        word = match.group()
        return word.upper() if word.lower() in _KEYWORDS else word

    return _WORDS.sub(replace, text)


def shape(sql: str, db: str = "") -> str:
    """The regex-normalized statement: literals and placeholders ``?``, no
    comments, collapsed whitespace. Linear time."""
    return _finish(_flavor(db).scanner.sub(_redact, sql))


def _presubstitute(sql: str, flavor: _Flavor) -> str:
    """Placeholders as sqlglot reads them in this dialect; ``%%`` as ``%``."""
    token = flavor.parse_placeholder

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup
        if kind == "param" or (kind == "qmark" and token == "?"):
            return token
        if kind == "pct":
            return "%"
        return match.group()

    return flavor.scanner.sub(replace, sql)


# -- sqlglot -------------------------------------------------------------------
def _parse_normalize(sql: str, flavor: _Flavor) -> str | None:
    """sqlglot's normalized text with literals redacted, or ``None`` when it
    cannot be trusted (parse error, opaque command, a literal gone missing)."""
    sqlglot = load_sqlglot()
    if sqlglot is None:
        return None
    exp = sqlglot.exp
    literal_types = (
        exp.Literal, exp.HexString, exp.BitString, exp.ByteString, exp.National,
        exp.RawString, exp.UnicodeString,
    )  # fmt: skip
    text = _presubstitute(sql, flavor)
    with quiet_sqlglot():
        trees = [t for t in quiet_parse(text, flavor.dialect) if t is not None]
        if not trees:
            return None
        redacted = 0
        outputs = []
        for tree in trees:
            for node in list(tree.walk()):
                if isinstance(node, exp.Command):
                    return None
                if isinstance(node, literal_types):
                    redacted += 1
                    node.replace(exp.Placeholder())
                elif isinstance(node, exp.Placeholder | exp.Parameter):
                    node.replace(exp.Placeholder())
            for neg in list(tree.find_all(exp.Neg)):
                if isinstance(neg.this, exp.Placeholder):
                    neg.replace(exp.Placeholder())
            outputs.append(
                tree.sql(
                    dialect=flavor.dialect,
                    normalize=True,
                    comments=False,
                    unsupported_level=sqlglot.ErrorLevel.IGNORE,
                )
            )
    # a literal sqlglot did not see as one (an alias, an identifier) could
    # still be in its output: then trust only the scanner
    if redacted < _count_literals(sql, flavor):
        return None
    output = "; ".join(outputs)
    return _finish(flavor.scanner.sub(_redact, output))


# -- the entry point -------------------------------------------------------------
_by_text: dict[tuple[str, str], tuple[str, str]] = {}
_by_shape: dict[tuple[str, str], tuple[str, str]] = {}


def _digest(normalized: str) -> str:
    return hashlib.sha1(normalized.encode("utf-8", "replace"), usedforsecurity=False).hexdigest()[
        :16
    ]


def _compute(sql: str, db: str) -> tuple[str, str]:
    flavor = _flavor(db)
    statement_shape = _finish(flavor.scanner.sub(_redact, sql))
    key = (statement_shape, db)
    known = _by_shape.get(key)
    if known is not None:
        return known
    normalized = None
    if len(sql) <= MAX_PARSE_CHARS:
        try:
            normalized = _parse_normalize(sql, flavor)
        except Exception:  # sqlglot's errors, and its bugs: the shape will do
            normalized = None
    if not normalized:
        normalized = _upper_keywords(statement_shape)
    result = (_digest(normalized), normalized)
    if len(_by_shape) >= MAX_CACHE:
        _by_shape.clear()
    _by_shape[key] = result
    return result


def fingerprint(sql: str, db: str = "") -> tuple[str, str]:
    """The fingerprint id and the normalized text of one SQL statement.

    Args:
        sql: The statement as the driver got it (literals, placeholders).
        db: The database kind (``sqlite``, ``postgresql``, ``mysql``...), which
            picks the SQL dialect; unknown or empty means generic SQL.

    Returns:
        ``(id, normalized)``: 16 hex digits, and the statement with literals
        and placeholders as ``?``. Never raises.

    Example::

        >>> fingerprint("select * from users where id in (1, 2, 3)", "sqlite")[1]
        'SELECT * FROM users WHERE id IN (?)'
    """
    key = (sql, db)
    known = _by_text.get(key)
    if known is not None:
        return known
    try:
        given: object = sql  # callers outside mypy's reach may pass bytes, None...
        if not isinstance(given, str):
            given = given.decode("utf-8", "replace") if isinstance(given, bytes) else str(given)
        result = _compute(str(given), str(db))
    except Exception:  # never raise into the flusher; never let a literal out
        result = (_digest("<unparsable>"), "<unparsable>")
    if len(_by_text) >= MAX_CACHE:
        _by_text.clear()
    _by_text[key] = result
    return result
