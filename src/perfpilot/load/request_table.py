"""The ``[[requests]]`` tables of a scenario file, and their checks.

A request has a ``path`` (joined to ``base_url``) or an absolute ``url``, an
optional ``method``, ``name``, ``weight``, ``tags`` and ``headers``, at most
one body (``json``, ``form`` or ``body``, each setting its Content-Type) and a
list of ``checks`` (``status``, ``body_contains``, or ``json`` with an optional
``equals``).
"""

from __future__ import annotations

import json
import urllib.parse

from perfpilot.load.http_syntax import TOKEN, URL_EXPECTED, check_url, placeholder_problem
from perfpilot.load.plan import Check, RequestSpec
from perfpilot.load.tomlpos import FieldPath, TypedReader, describe

REQUEST_KEYS = (
    "name",
    "method",
    "path",
    "url",
    "weight",
    "tags",
    "headers",
    "json",
    "form",
    "body",
    "checks",
)
CHECK_KEYS = ("status", "body_contains", "json", "equals", "name")


def read_request(
    reader: TypedReader,
    raw: object,
    index: int,
    base_url: str | None,
    default_content_type: bool,
) -> RequestSpec:
    """Read the ``[[requests]]`` table at ``index``.

    Args:
        reader: The scenario file's reader.
        raw: The table.
        index: Its position in the ``requests`` array, for messages.
        base_url: The scenario's base URL; ``load_scenario`` ensures there is
            one when the request has a ``path``.
        default_content_type: ``[defaults]`` sets ``Content-Type``, so a body
            does not add one.

    Returns:
        The request, with its body encoded and its checks read.

    Raises:
        ConfigError: The table is wrong; the error names the field.
    """
    field: FieldPath = ("requests", index)
    table = reader.table(raw, field)
    reader.keys(table, REQUEST_KEYS, field)

    def at(key: str) -> FieldPath:
        return (*field, key)

    method = "GET"
    if "method" in table:
        method = reader.string(table["method"], at("method")).strip().upper()
        if not TOKEN.fullmatch(method):
            raise reader.error(f"invalid HTTP method {method!r}", at("method"))
    if "path" in table and "url" in table:
        raise reader.error("give either path or url, not both", at("url"))
    if "url" in table:
        url = reader.string(table["url"], at("url")).strip()
        parts = check_url(url)
        if parts is None:
            raise reader.error(f"invalid URL {url!r}: {URL_EXPECTED}", at("url"))
        shown_path = parts.path or "/"
        source = "url"
    elif "path" in table:
        path = reader.string(table["path"], at("path")).strip()
        if any(c.isspace() or ord(c) < 32 for c in path) or "://" in path:
            raise reader.error(
                f"invalid path {path!r}: expected a path such as /users?id=1 "
                "(use url = ... for an absolute URL)",
                at("path"),
            )
        if not path.startswith("/"):
            path = "/" + path
        assert base_url is not None  # load_scenario checked
        url = base_url.rstrip("/") + path
        shown_path = urllib.parse.urlsplit(path).path or "/"
        source = "path"
    else:
        raise reader.error("a request needs a path (or an absolute url)", field)
    problem = placeholder_problem(url)
    if problem:
        raise reader.error(problem, at(source))

    name = f"{method} {shown_path}"
    if "name" in table:
        name = reader.string(table["name"], at("name")).strip()
    weight = 1.0
    if "weight" in table:
        weight = reader.number(table["weight"], at("weight"), positive=True)
    tags: dict[str, str] = {}
    if "tags" in table:
        tags = reader.string_map(table["tags"], at("tags"))
        if "name" in tags:
            raise reader.error(
                "'name' is the request's name; set it with name = ... instead",
                (*at("tags"), "name"),
            )
    headers = list(reader.headers(table["headers"], at("headers")) if "headers" in table else ())

    bodies = [key for key in ("json", "form", "body") if key in table]
    if len(bodies) > 1:
        raise reader.error(
            f"a request takes one of json, form or body, not {' and '.join(bodies)}",
            at(bodies[1]),
        )
    body: bytes | None = None
    content_type: str | None = None
    if bodies:
        key = bodies[0]
        value = table[key]
        if key == "json":
            try:
                body = json.dumps(
                    value,
                    separators=(",", ":"),
                    ensure_ascii=False,
                    allow_nan=False,
                    default=_json_default,
                ).encode("utf-8")
            except (TypeError, ValueError, RecursionError) as exc:
                raise reader.error(f"cannot encode as JSON: {exc}", at(key)) from None
            content_type = "application/json"
        elif key == "form":
            form = reader.table(value, at(key))
            pairs: list[tuple[str, str]] = []
            for form_key, item in form.items():
                items = item if isinstance(item, list) else [item]
                for element in items:
                    if isinstance(element, bool):
                        pairs.append((form_key, "true" if element else "false"))
                    elif isinstance(element, str | int | float):
                        pairs.append((form_key, str(element)))
                    else:
                        raise reader.error(
                            f"form values are strings or numbers, got {describe(element)}",
                            (*at(key), form_key),
                        )
            body = urllib.parse.urlencode(pairs).encode("ascii")
            content_type = "application/x-www-form-urlencoded"
        else:
            if not isinstance(value, str):
                raise reader.error(f"expected a string, got {describe(value)}", at(key))
            body = value.encode("utf-8")
            content_type = "text/plain; charset=utf-8"
    has_content_type = default_content_type or any(k.lower() == "content-type" for k, _ in headers)
    if content_type is not None and not has_content_type:
        headers.append(("Content-Type", content_type))

    checks: tuple[Check, ...] = ()
    if "checks" in table:
        raw_checks = table["checks"]
        if not isinstance(raw_checks, list):
            raise reader.error("expected an array of check tables", at("checks"))
        checks = tuple(
            _check(reader, item, (*at("checks"), i)) for i, item in enumerate(raw_checks)
        )
    return RequestSpec(
        name=name,
        method=method,
        url=url,
        headers=tuple(headers),
        body=body,
        weight=weight,
        tags=tags,
        checks=checks,
    )


def _json_default(value: object) -> str:
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return str(isoformat())
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _format_expected(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value, default=_json_default, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _check(reader: TypedReader, raw: object, field: FieldPath) -> Check:
    table = reader.table(raw, field)
    reader.keys(table, CHECK_KEYS, field)
    kinds = [key for key in ("status", "body_contains", "json") if key in table]
    if not kinds:
        raise reader.error("expected one of status, body_contains or json in a check", field)
    if len(kinds) > 1:
        raise reader.error(
            f"one check per table: split {' and '.join(kinds)} into separate checks",
            (*field, kinds[1]),
        )
    if "equals" in table and kinds[0] != "json":
        raise reader.error("equals goes with a json check", (*field, "equals"))
    custom = reader.string(table["name"], (*field, "name")) if "name" in table else None
    kind = kinds[0]
    at: FieldPath = (*field, kind)
    value = table[kind]
    if kind == "status":
        values = value if isinstance(value, list) else [value]
        if not values:
            raise reader.error("expected a status such as 200 or a list [200, 201]", at)
        statuses = []
        for position, item in enumerate(values):
            where = (*at, position) if isinstance(value, list) else at
            status = reader.integer(item, where, minimum=100)
            if status > 599:
                raise reader.error(f"expected an HTTP status 100-599, got {status}", where)
            statuses.append(status)
        name = (
            f"status is {statuses[0]}"
            if len(statuses) == 1
            else f"status in [{', '.join(map(str, statuses))}]"
        )
        return Check(kind="status", name=custom or name, statuses=tuple(statuses))
    text = reader.string(value, at)
    if kind == "body_contains":
        return Check(kind="body_contains", name=custom or f"body contains {text!r}", text=text)
    if "equals" in table:
        expected = table["equals"]
        name = f"json {text} == {_format_expected(expected)}"
        return Check(
            kind="json_field",
            name=custom or name,
            path=text,
            expected=expected,
            has_expected=True,
        )
    return Check(kind="json_field", name=custom or f"json {text} exists", path=text)
