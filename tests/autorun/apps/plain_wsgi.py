"""A bare WSGI function: not a framework app, so ``perfpilot run`` does not find it.

``app`` is served as is; ``instrumented``, made only when ``PERFPILOT_TEST_STORE``
is set, is the same function wrapped in code with ``perfpilot.instrument``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import perfpilot


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"plain"]


if os.environ.get("PERFPILOT_TEST_STORE"):
    instrumented = perfpilot.instrument(app, store=os.environ["PERFPILOT_TEST_STORE"])
