"""Path templates for raw paths: ``/v1/users/42/orders`` → ``/v1/users/{id}/orders``.

Used where no framework route exists: outbound calls, and bare WSGI/ASGI apps.
A segment becomes ``{id}`` when it is a number, a UUID, a long hex string, or a
long mixed token; everything else is kept, so the template stays readable.
"""

from __future__ import annotations

import re

_ID = re.compile(
    r"""^(
        \d+                                   # 42
      | [0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}  # uuid
      | [0-9a-fA-F]{16,}                      # hashes, object ids
      | (?=[^/]*\d)[A-Za-z0-9_\-]{20,}        # long tokens with digits
    )$""",
    re.VERBOSE,
)
_cache: dict[str, str] = {}
MAX_CACHE = 4096


def path_template(path: str) -> str:
    """The template of ``path`` (query string dropped); cached."""
    cached = _cache.get(path)
    if cached is not None:
        return cached
    bare = path.split("?", 1)[0] or "/"
    template = "/".join("{id}" if _ID.match(part) else part for part in bare.split("/"))
    if len(_cache) >= MAX_CACHE:
        _cache.clear()
    _cache[path] = template
    return template
