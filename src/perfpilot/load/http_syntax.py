"""What a usable URL, HTTP method, header and URL placeholder look like.

Shared by scenario files (:mod:`perfpilot.load.scenario`) and the command
line (:mod:`perfpilot.load.urlplan`), so both reject the same things with
the same words.
"""

from __future__ import annotations

import re
import urllib.parse

PLACEHOLDERS = ("iter", "vu", "rand")
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""An HTTP token (RFC 9110): what a method or a header name may be made of."""
URL_EXPECTED = "expected http://host[:port]/path"


def header_problem(name: str, value: str) -> str | None:
    """What is wrong with a header, as a message, or ``None`` when it is valid."""
    if not TOKEN.fullmatch(name):
        return f"invalid header name {name!r}"
    if any(c in value for c in "\r\n\0"):
        return f"header {name} must not contain line breaks or NUL"
    return None


def check_url(url: str) -> urllib.parse.SplitResult | None:
    """The split URL when it is a usable ``http``/``https`` URL, else ``None``."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        return None
    return parts


def placeholder_problem(text: str) -> str | None:
    """What is wrong with the ``${...}`` placeholders in ``text``, or ``None``."""
    for match in _PLACEHOLDER.finditer(text):
        if match.group(1) not in PLACEHOLDERS:
            return (
                f"unknown placeholder ${{{match.group(1)}}}; "
                "expected ${iter}, ${vu} or ${rand}"
            )
    return None
