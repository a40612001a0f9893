"""Query hints: what a statement's text alone says about its cost.

:func:`query_hints` parses SQL with sqlglot and reports, each with a concrete
rewrite or index where one can be given:

- ``select_star``: ``SELECT *`` reads (and ships) every column, and rules out
  index-only scans;
- ``unbounded_select``: a row-returning ``SELECT`` with neither ``WHERE`` nor
  ``LIMIT`` reads the whole table, and grows with it;
- ``function_on_column``: ``WHERE lower(email) = ?`` cannot use an index on
  ``email``; an expression index can (the exact ``CREATE INDEX`` is given);
- ``or_across_columns``: ``a = ? OR b = ?`` needs an index on each column (or
  a ``UNION`` of two indexed queries, which is given);
- ``in_subquery`` / ``not_in_subquery``: ``IN (SELECT ...)`` reads better as
  ``EXISTS``; ``NOT IN (SELECT ...)`` is wrong with NULLs and cannot become an
  anti-join, ``NOT EXISTS`` is right and fast (the rewrite is given);
- ``implicit_cast``: a column compared with a literal of another type, which
  makes the database convert the column on every row and skip its index.
  With the schema (``schema=``) the column types are known; without it only
  two narrow patterns are reported, at low confidence.

Text that does not parse yields no hints: :func:`query_hints` never raises on
its input. Subjects are statement fingerprints, so literals in the SQL never
appear in a finding's subject (the suggested rewrites keep the statement's
own text, which may contain them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sqlglot import exp

from perfpilot.analyze.findings import Finding
from perfpilot.dbadvisor.health import health_finding
from perfpilot.dbadvisor.hint_rewrites import (
    as_exists,
    column_key,
    expression_index,
    predicate_sides,
    qualify_outer,
    union_rewrite,
)
from perfpilot.dbadvisor.hint_scope import Scope
from perfpilot.errors import UsageError
from perfpilot.instrument.fingerprint import fingerprint
from perfpilot.instrument.sqlglot_quiet import quiet_parse

__all__ = ["MAX_SQL_CHARS", "query_hints"]

#: Longer texts are not parsed (sqlglot is superlinear on huge statements).
MAX_SQL_CHARS = 100_000

_DIALECTS = {"postgres": "postgres", "postgresql": "postgres", "sqlite": "sqlite", "mysql": "mysql"}

_INTEGER_TYPES = frozenset(
    [
        "smallint",
        "integer",
        "int",
        "int2",
        "int4",
        "int8",
        "bigint",
        "serial",
        "bigserial",
        "smallserial",
        "tinyint",
    ]
)
_TEXT_TYPES = frozenset(
    [
        "text",
        "varchar",
        "char",
        "character",
        "citext",
        "string",
        "nvarchar",
        "nchar",
        "bpchar",
        "clob",
    ]
)


def query_hints(
    sql: str,
    dialect: str = "postgres",
    *,
    schema: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Finding]:
    """Hints about the statements in ``sql``.

    Args:
        sql: One or more SQL statements, literals or placeholders.
        dialect: ``postgres`` (default), ``sqlite`` or ``mysql``.
        schema: Column types by table then column (names case-insensitive),
            e.g. ``{"users": {"id": "integer", "phone": "text"}}``; it makes
            ``implicit_cast`` hints exact.

    Returns:
        The hints, in the order of the statements; ``[]`` for text that does
        not parse.

    Raises:
        UsageError: Unknown dialect.

    Example:
        >>> [f.kind for f in query_hints("SELECT * FROM users WHERE lower(email) = 'a@b.c'")]
        ['select_star', 'function_on_column']
    """
    name = _DIALECTS.get(dialect.lower())
    if name is None:
        raise UsageError(f"unknown SQL dialect {dialect!r}: use postgres, sqlite or mysql")
    if not sql.strip() or len(sql) > MAX_SQL_CHARS:
        return []
    try:
        trees = quiet_parse(sql, name)
    except Exception:  # sqlglot's parse and token errors, and its bugs
        return []
    types = {
        t.lower(): {c.lower(): v.lower() for c, v in cols.items()}
        for t, cols in (schema or {}).items()
    }
    findings: list[Finding] = []
    for tree in trees:
        if tree is None or isinstance(tree, exp.Command):
            continue
        try:
            findings.extend(_Statement(tree, name, types).hints())
        except Exception:  # an odd tree sqlglot accepted: no hints rather than a crash
            continue
    return findings


class _Statement:
    """The hints of one parsed statement."""

    def __init__(self, tree: exp.Expr, dialect: str, types: dict[str, dict[str, str]]) -> None:
        self.tree = tree
        self.dialect = dialect
        self.types = types
        self.text = tree.sql(dialect=dialect)
        self.fingerprint_id, self.normalized = fingerprint(self.text, dialect)
        self.subject = (
            self.normalized if len(self.normalized) <= 200 else self.normalized[:199] + "…"
        )
        self.found: list[Finding] = []
        self.seen: set[tuple[str, str]] = set()

    def add(
        self,
        kind: str,
        severity: str,
        title: str,
        detail: str,
        evidence: dict[str, Any],
        fix: str,
        code: str = "",
        confidence: float = 0.6,
    ) -> None:
        if (kind, detail) in self.seen:
            return
        self.seen.add((kind, detail))
        self.found.append(
            health_finding(
                kind,
                severity,
                title,
                self.subject,
                {"fingerprint": self.fingerprint_id, **evidence},
                fix,
                code,
                confidence=confidence,
                key=(self.normalized, detail),
            )
        )

    def hints(self) -> list[Finding]:
        self._unbounded()
        for select in self.tree.find_all(exp.Select):
            self._star(select)
        for where in self.tree.find_all(exp.Where):
            self._functions(where)
            self._ors(where)
        for node in self.tree.find_all(exp.In):
            self._in_subquery(node)
        self._casts()
        return self.found

    # -- SELECT * and unbounded selects ----------------------------------------------

    def _star(self, select: exp.Select) -> None:
        if select.find_ancestor(exp.Exists) is not None:
            return  # EXISTS (SELECT * ...) reads no columns
        stars = [e for e in select.expressions if isinstance(e, exp.Star) or e.is_star]
        scope = Scope(select)
        if not stars or not scope.tables:
            return
        tables = ", ".join(sorted(set(scope.tables.values())))
        self.add(
            "select_star",
            "low",
            f"SELECT * reads every column of {tables}",
            tables,
            {"tables": sorted(set(scope.tables.values()))},
            "List the columns the code uses: fewer bytes read and sent, no surprise "
            "when a wide column is added, and index-only scans become possible.",
            confidence=0.6,
        )

    def _unbounded(self) -> None:
        select = self.tree
        if not isinstance(select, exp.Select):
            return
        if any(select.args.get(key) for key in ("where", "limit", "group", "having", "offset")):
            return
        if any(e.find(exp.AggFunc) for e in select.expressions):
            return  # an aggregate returns one row
        scope = Scope(select)
        if not scope.tables:
            return
        bounded = select.copy().limit(100)
        tables = sorted(set(scope.tables.values()))
        self.add(
            "unbounded_select",
            "low",
            f"SELECT without WHERE or LIMIT returns all of {', '.join(tables)}",
            ",".join(tables),
            {"tables": tables},
            "Filter, or page through the rows with LIMIT and a keyset (WHERE key > last "
            "ORDER BY key): the whole table is read and sent, and it grows.",
            bounded.sql(dialect=self.dialect) + ";",
            confidence=0.5,
        )

    # -- functions on columns --------------------------------------------------------

    def _functions(self, where: exp.Where) -> None:
        scope = Scope.of(where)
        for side, other in predicate_sides(where):
            if not isinstance(side, exp.Func) or isinstance(side, exp.AggFunc | exp.Window):
                continue
            columns = list(side.find_all(exp.Column))
            if not columns or any(True for _ in other.find_all(exp.Column)):
                continue  # a constant expression, or a join condition
            owners = {scope.table_of(c, self.types) if scope else None for c in columns}
            table = owners.pop() if len(owners) == 1 else None
            code, expression = expression_index(side, table, self.dialect)
            names = ", ".join(sorted({c.name for c in columns}))
            self.add(
                "function_on_column",
                "medium",
                f"WHERE filters on {expression}: a plain index on {names} cannot be used",
                f"{table}:{expression}",
                {
                    "expression": expression,
                    "table": table,
                    "columns": sorted({c.name for c in columns}),
                },
                "Create an expression index on exactly this expression (its function must be "
                "IMMUTABLE), or rewrite the condition so the column stands alone (a range on "
                "created_at rather than date(created_at) = ...).",
                code,
                confidence=0.6,
            )

    # -- OR across columns -----------------------------------------------------------

    def _ors(self, where: exp.Where) -> None:
        scope = Scope.of(where)
        for node in where.find_all(exp.Or):
            if isinstance(node.parent, exp.Or) or (
                isinstance(node.parent, exp.Paren) and isinstance(node.parent.parent, exp.Or)
            ):
                continue  # only the outermost OR of a chain
            terms = list(node.flatten())
            keys = [
                {column_key(c, scope, self.types) for c in t.find_all(exp.Column)} for t in terms
            ]
            if any(not k for k in keys) or len({frozenset(k) for k in keys}) < 2:
                continue  # an optional-filter pattern, or one column (an IN list)
            columns = sorted({c for k in keys for c in k})
            code = union_rewrite(self.tree, node, terms, self.dialect)
            self.add(
                "or_across_columns",
                "low",
                f"OR across columns {', '.join(columns)}: one index cannot serve it",
                ",".join(columns),
                {"columns": columns},
                "Index each column (PostgreSQL combines them with a BitmapOr), or run one "
                "query per condition and UNION them so each uses its own index.",
                code,
                confidence=0.5,
            )

    # -- IN (subquery) ---------------------------------------------------------------

    def _in_subquery(self, node: exp.In) -> None:
        subquery = node.args.get("query")
        if subquery is None:
            return
        negated = isinstance(node.parent, exp.Not)
        target: exp.Expr = node.parent if negated and node.parent is not None else node
        outer = qualify_outer(node.this, Scope.of(node), self.types)
        code = ""
        exists = as_exists(subquery, outer, negated=negated)
        if exists is not None:
            rewritten = self.tree.copy()
            for candidate in rewritten.walk():
                if candidate == target:
                    candidate.replace(exists)
                    code = rewritten.sql(dialect=self.dialect) + ";"
                    break
        column = node.this.sql(dialect=self.dialect)
        if negated:
            self.add(
                "not_in_subquery",
                "medium",
                f"{column} NOT IN (SELECT ...): wrong with NULLs and cannot be an anti-join",
                column,
                {"column": column},
                "Use NOT EXISTS: NOT IN returns no row at all once the subquery yields a NULL, "
                "and the planner must run it as a (hashed) subplan instead of an anti-join.",
                code,
                confidence=0.8,
            )
        else:
            self.add(
                "in_subquery",
                "info",
                f"{column} IN (SELECT ...) reads better as EXISTS",
                column,
                {"column": column},
                "Write it as EXISTS with the correlation spelled out; PostgreSQL plans both "
                "as a semi-join, older MySQL and some ORMs' subqueries do not.",
                code,
                confidence=0.4,
            )

    # -- implicit casts --------------------------------------------------------------

    def _casts(self) -> None:
        numeric_seen: dict[str, str] = {}
        quoted_seen: dict[str, str] = {}
        for column, literal in self._comparisons():
            scope = Scope.of(column)
            key = column_key(column, scope, self.types)
            declared = scope.column_type(column, self.types) if scope else None
            text = str(literal.this)
            if declared is not None:
                base = declared.split("(")[0].strip().split()[0] if declared.strip() else ""
                if base in _INTEGER_TYPES and not literal.is_string and _fractional(text):
                    self._cast(
                        key, declared, text, "the integer column is converted to numeric", 0.8
                    )
                elif base in _TEXT_TYPES and not literal.is_string:
                    self._cast(key, declared, text, "a text column compared with a number", 0.8)
                continue
            if literal.is_string and _numeric(text):
                quoted_seen.setdefault(key, text)
            elif not literal.is_string:
                numeric_seen.setdefault(key, text)
                name = column.name.lower()
                if (name == "id" or name.endswith("_id")) and _fractional(text):
                    self._cast(key, None, text, "an id compared with a fractional number", 0.4)
        for key in sorted(set(numeric_seen) & set(quoted_seen)):
            self.add(
                "implicit_cast",
                "info",
                f"{key} is compared with both a number and a quoted number",
                key,
                {"column": key, "number": numeric_seen[key], "quoted": quoted_seen[key]},
                "Compare the column with literals of its own type everywhere; a mismatch makes "
                "some databases convert the column on every row and skip its index.",
                confidence=0.3,
            )

    def _cast(self, key: str, declared: str | None, literal: str, why: str, conf: float) -> None:
        self.add(
            "implicit_cast",
            "medium" if declared else "low",
            f"{key} = {literal}: {why}, so its index is not used",
            key,
            {"column": key, "column_type": declared, "literal": literal},
            "Write the literal in the column's type (an integer for an integer column, a "
            "quoted string for a text column) so the index on the column can be used.",
            confidence=conf,
        )

    def _comparisons(self) -> Iterator[tuple[exp.Column, exp.Literal]]:
        for where in self.tree.find_all(exp.Where):
            for side, other in predicate_sides(where):
                if isinstance(side, exp.Column):
                    literal = other.this if isinstance(other, exp.Neg) else other
                    if isinstance(literal, exp.Literal):
                        yield side, literal
                    elif isinstance(other, exp.Tuple):
                        for item in other.expressions:
                            if isinstance(item, exp.Literal):
                                yield side, item


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() != "" and text.strip().lower() not in ("nan", "inf", "-inf", "infinity")


def _fractional(text: str) -> bool:
    return _numeric(text) and any(ch in text for ch in ".eE")
