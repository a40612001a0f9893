"""The optional C extension ``_speedups`` (``_speedups.c``), and whether to use it.

It is built when perfpilot is installed where a C compiler is; without one the
install goes on and perfpilot runs the same code in Python. ``module`` is the
extension if it imports, else ``None``; ``active`` is what perfpilot uses:
``module``, unless ``PERFPILOT_PURE_PYTHON`` is set (to anything non-empty) in
the environment at import.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["active", "module"]

module: Any
try:
    from perfpilot.instrument import _speedups as module
except ImportError:  # built without a C compiler
    module = None

active: Any = None if os.environ.get("PERFPILOT_PURE_PYTHON") else module
