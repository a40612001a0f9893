"""Connection strings without their secrets, for messages, logs and stored rows.

A PostgreSQL URL such as ``postgresql://app:s3cret@db:5432/perf``, or the same
as libpq keywords (``host=db user=app password=s3cret dbname=perf``), must never
be shown or stored with its password. :func:`redact_dsn` masks it
(``postgresql://app:***@db:5432/perf``), :func:`display_dsn` drops it
(``postgresql://app@db:5432/perf``), and :func:`redact_credentials` masks every
password inside a longer text: ``scheme://user:password@``, ``?password=...``
and ``password=...``. Every message that echoes a location passes it through
:func:`redact_credentials`. :func:`is_postgres_dsn` tells a PostgreSQL
connection string (URL or keywords) from a SQLite path.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable

MASK = "***"

# scheme://user:password@ (the password may be empty); stops at the first '@'.
_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@\s]*@")
_SECRET_KEYS = ("password", "passfile", "sslpassword")
_SECRET_NAMES = "|".join(_SECRET_KEYS)
# ?password=... or &password=... in a URL's query: the value stops at '&', '#' or a space.
_QUERY_SECRET = re.compile(rf"(?P<head>[?&](?:{_SECRET_NAMES})=)[^&#\s]*", re.IGNORECASE)
# password=... as libpq keywords: a quoted value ('it\'s') or one up to a space.
_KEYWORD_VALUE = r"'(?:\\.|[^'\\])*'?|(?:\\.|[^\s\\])*"
_KEYWORD_SECRET = re.compile(
    rf"(?<![\w?&.-])(?P<head>(?:{_SECRET_NAMES})\s*=\s*)(?:{_KEYWORD_VALUE})", re.IGNORECASE
)
# One libpq keyword/value pair, as a whole keyword DSN is a run of them.
_KEYWORD_PAIR = re.compile(rf"\s*(?P<key>[A-Za-z_]+)\s*=\s*(?P<value>{_KEYWORD_VALUE})\s*")

#: The connection keywords of libpq (``host=... dbname=...``).
LIBPQ_KEYWORDS = frozenset(
    {
        "host", "hostaddr", "port", "dbname", "user", "password", "passfile",
        "require_auth", "channel_binding", "connect_timeout", "client_encoding", "options",
        "application_name", "fallback_application_name", "keepalives", "keepalives_idle",
        "keepalives_interval", "keepalives_count", "tcp_user_timeout", "replication",
        "gssencmode", "sslmode", "sslnegotiation", "requiressl", "sslcompression", "sslcert",
        "sslkey", "sslpassword", "sslcertmode", "sslrootcert", "sslcrl", "sslcrldir", "sslsni",
        "requirepeer", "ssl_min_protocol_version", "ssl_max_protocol_version", "krbsrvname",
        "gsslib", "gssdelegation", "service", "target_session_attrs", "load_balance_hosts",
    }
)  # fmt: skip
_POSTGRES_SCHEMES = ("postgresql", "postgres")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def redact_credentials(text: str) -> str:
    """``text`` with every password in it masked: the shared redaction of locations.

    Masks ``scheme://user:password@``, ``?password=...`` (and ``passfile``,
    ``sslpassword``) in URL queries, and ``password=...`` as libpq keywords
    (``host=db password=s3cret``, the value quoted or not).

    Example:
        >>> redact_credentials("pool postgresql://app:pw@db/perf")
        'pool postgresql://app:***@db/perf'
        >>> redact_credentials("no store at host=db password='a b' dbname=perf")
        'no store at host=db password=*** dbname=perf'
    """
    text = _CREDENTIALS.sub(lambda m: f"{m.group('head')}:{MASK}@", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group('head')}{MASK}", text)
    return _KEYWORD_SECRET.sub(lambda m: f"{m.group('head')}{MASK}", text)


def keyword_pairs(dsn: str) -> list[tuple[str, str]] | None:
    """The ``(keyword, value)`` pairs of a libpq keyword/value DSN, or ``None``.

    ``dsn`` is one when it is wholly ``key=value`` pairs (values may be
    single-quoted) and at least one key is a libpq keyword
    (:data:`LIBPQ_KEYWORDS`); an unknown key is left for libpq to refuse.

    Example:
        >>> keyword_pairs("host=db port=5432 password='a b'")
        [('host', 'db'), ('port', '5432'), ('password', 'a b')]
        >>> keyword_pairs("shop.db") is None
        True
    """
    pairs: list[tuple[str, str]] = []
    position, text = 0, dsn.strip()
    while position < len(text):
        match = _KEYWORD_PAIR.match(text, position)
        if match is None or match.end() == position:
            return None
        pairs.append((match.group("key"), _unquote(match.group("value"))))
        position = match.end()
    if not any(key in LIBPQ_KEYWORDS for key, _ in pairs):
        return None
    return pairs


def is_postgres_dsn(dsn: str) -> bool:
    """Whether ``dsn`` names a PostgreSQL database rather than a SQLite path.

    A ``postgresql://`` or ``postgres://`` URL (``+driver`` allowed), or libpq
    keywords (:func:`keyword_pairs`).

    Example:
        >>> is_postgres_dsn("postgresql+psycopg://db/perf"), is_postgres_dsn("host=db dbname=perf")
        (True, True)
        >>> is_postgres_dsn("shop.db")
        False
    """
    scheme, sep, _ = dsn.strip().partition("://")
    if sep and _SCHEME.fullmatch(scheme):
        return scheme.lower().partition("+")[0] in _POSTGRES_SCHEMES
    return keyword_pairs(dsn) is not None


def libpq_url(dsn: str) -> str:
    """``dsn`` as libpq takes it: ``postgresql+psycopg://`` becomes ``postgresql://``.

    Example:
        >>> libpq_url(" postgresql+psycopg://db/perf "), libpq_url("host=db")
        ('postgresql://db/perf', 'host=db')
    """
    scheme, sep, rest = dsn.strip().partition("://")
    if sep and scheme.lower().partition("+")[0] in _POSTGRES_SCHEMES:
        return f"postgresql://{rest}"
    return dsn.strip()


def _keywords_only(dsn: str) -> list[tuple[str, str]] | None:
    """The pairs of ``dsn`` when it is libpq keywords rather than a URL."""
    scheme, sep, _ = dsn.strip().partition("://")
    return None if sep and _SCHEME.fullmatch(scheme) else keyword_pairs(dsn)


def redact_dsn(dsn: str) -> str:
    """``dsn`` with its password (in the user part or the query) masked.

    Example:
        >>> redact_dsn("postgresql://app:s3cret@db:5432/perf?sslmode=require")
        'postgresql://app:***@db:5432/perf?sslmode=require'
    """
    return _rebuild(dsn, keep_password_mark=True)


def display_dsn(dsn: str) -> str:
    """``dsn`` without its password, as shown in error messages.

    Example:
        >>> display_dsn("postgresql://app:s3cret@db:5432/perf")
        'postgresql://app@db:5432/perf'
    """
    return _rebuild(dsn, keep_password_mark=False)


def secrets_of(dsn: str) -> list[str]:
    """The passwords in ``dsn`` (user part, secret query keys or keywords), to scrub from text."""
    found: list[str] = []
    pairs = _keywords_only(dsn)
    if pairs is not None:
        found += [value for key, value in pairs if key in _SECRET_KEYS and value]
        return sorted(set(found), key=len, reverse=True)
    try:
        parts = urllib.parse.urlsplit(dsn)
        if parts.password:
            found += [parts.password, urllib.parse.unquote(parts.password)]
        found += [v for k, v in urllib.parse.parse_qsl(parts.query) if k in _SECRET_KEYS and v]
    except ValueError:
        match = re.search(r"://[^:/@\s]*:([^@\s]+)@", dsn)
        if match:
            found.append(match.group(1))
    return sorted(set(found), key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` (say, a driver's error message) with ``secrets`` and URL passwords masked."""
    text = redact_credentials(text)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def _unquote(value: str) -> str:
    """A libpq keyword value without its quotes and backslash escapes."""
    if value.startswith("'"):
        value = value[1:-1] if len(value) > 1 and value.endswith("'") else value[1:]
    return re.sub(r"\\(.)", r"\1", value)


def _rebuild(dsn: str, *, keep_password_mark: bool) -> str:
    if _keywords_only(dsn) is not None:
        if keep_password_mark:
            return redact_credentials(dsn.strip())
        pairs = _KEYWORD_PAIR.finditer(dsn.strip())
        kept = (m for m in pairs if m.group("key") not in _SECRET_KEYS)
        return " ".join(f"{m.group('key')}={m.group('value')}" for m in kept)
    try:
        parts = urllib.parse.urlsplit(dsn)
        user = parts.username
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        # Unparseable (a bad port, say): fall back to masking by pattern only.
        return redact_credentials(dsn)
    netloc = ""
    if user is not None:
        netloc = user
        if parts.password is not None and keep_password_mark:
            netloc += f":{MASK}"
        netloc += "@"
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    netloc += host
    if port is not None:
        netloc += f":{port}"
    query = "&".join(
        f"{key}={MASK if key in _SECRET_KEYS else value}"
        for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if keep_password_mark or key not in _SECRET_KEYS
    )
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
