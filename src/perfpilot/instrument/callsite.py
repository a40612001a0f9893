"""Call sites: where in the application a statement or an outbound call is made.

:func:`find_call_site` walks the stack from the hook outwards to the first
frame outside the standard library, installed packages and perfpilot itself
(perfpilot's sample app counts as application code), and keeps up to three
application frames. The recorder caches the answer per SQL text and per
outbound (method, host, template), so a frame walk happens once per key.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from types import FrameType

_LIBRARY_PREFIXES = tuple(
    {
        p
        for p in (
            sysconfig.get_paths().get("stdlib"),
            sysconfig.get_paths().get("platstdlib"),
            sysconfig.get_paths().get("purelib"),
            sysconfig.get_paths().get("platlib"),
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        if p
    }
)
# perfpilot's sample app is application code, wherever perfpilot is installed
_DEMO_APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "demo", "")
_library_cache: dict[str, bool] = {}


def is_library(filename: str) -> bool:
    """Whether ``filename`` is library code (stdlib, installed packages, perfpilot)."""
    known = _library_cache.get(filename)
    if known is None:
        known = not filename.startswith(_DEMO_APP) and (
            filename.startswith(_LIBRARY_PREFIXES)
            or filename.startswith("<")
            or "site-packages" in filename
            or "dist-packages" in filename
        )
        _library_cache[filename] = known
    return known


def find_call_site(skip: int = 2, depth: int = 3) -> str | None:
    """Where the application made a call: ``file:line`` of the innermost frame
    outside the standard library, installed packages and perfpilot itself,
    then `` < file:line`` for each application frame that called it, up to
    ``depth`` frames in all; ``None`` when there is no application frame.

    The callers matter when the app reaches its database through a helper of
    its own (a ``run_query()``): the loop that makes an N+1 is the caller's.
    """
    try:
        frame = sys._getframe(skip)
    except ValueError:
        return None
    sites: list[str] = []
    current: FrameType | None = frame
    while current is not None and len(sites) < depth:
        filename = current.f_code.co_filename
        if not is_library(filename):
            sites.append(f"{filename}:{current.f_lineno}")
        elif sites:  # the app's own frames end where a framework called them
            break
        current = current.f_back
    return " < ".join(sites) if sites else None
