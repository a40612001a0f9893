"""Connection URLs without their secrets, for messages, logs and stored rows.

A PostgreSQL URL such as ``postgresql://app:s3cret@db:5432/perf`` must never be
shown or stored with its password. :func:`redact_dsn` masks it
(``postgresql://app:***@db:5432/perf``), :func:`display_dsn` drops it
(``postgresql://app@db:5432/perf``), and :func:`redact_credentials` masks every
``scheme://user:password@`` inside a longer text.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable

MASK = "***"

# scheme://user:password@ (the password may be empty); stops at the first '@'.
_CREDENTIALS = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):[^@\s]*@")
_SECRET_KEYS = ("password", "passfile", "sslpassword")


def redact_credentials(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` masked.

    Example:
        >>> redact_credentials("pool postgresql://app:pw@db/perf")
        'pool postgresql://app:***@db/perf'
    """
    return _CREDENTIALS.sub(lambda m: f"{m.group('head')}:{MASK}@", text)


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
    """The passwords in ``dsn`` (user part and secret query keys), to scrub from text."""
    found: list[str] = []
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


def _rebuild(dsn: str, *, keep_password_mark: bool) -> str:
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
