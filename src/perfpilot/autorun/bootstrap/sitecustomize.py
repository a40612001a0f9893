"""perfpilot's ``sitecustomize``: ``perfpilot run`` puts this directory first on PYTHONPATH.

Python imports ``sitecustomize`` at start-up (``site.py``), so every Python
process ``perfpilot run`` starts, and every process those start, runs this
file before the program. It activates perfpilot only when
``PERFPILOT_AUTORUN=1`` is set, then runs the ``sitecustomize`` this one hides
(a distribution's or a virtualenv's), as Python would have. Importing it by
its package name (``perfpilot.autorun.bootstrap.sitecustomize``) does nothing.

Only the standard library is used here: the interpreter may not have
perfpilot installed, and that must cost the program one line, not its start.
"""

from __future__ import annotations

import importlib
import os
import sys


def _activate() -> None:
    if os.environ.get("PERFPILOT_AUTORUN") != "1":
        return
    try:
        from perfpilot.autorun.runtime import activate
    except ImportError as exc:
        print(
            f"perfpilot: cannot import perfpilot in {sys.executable} ({exc}); "
            "this process is not instrumented",
            file=sys.stderr,
        )
        return
    try:
        activate()
    except Exception as exc:  # never stop the program from starting
        print(f"perfpilot: not instrumented: {exc!r}", file=sys.stderr)


def _chain() -> None:
    """Import the ``sitecustomize`` that this directory shadows, if there is one."""
    here = os.path.dirname(os.path.abspath(__file__))
    ours = sys.modules.get("sitecustomize")
    kept = [p for p in sys.path if _same(p, here)]
    sys.path[:] = [p for p in sys.path if not _same(p, here)]
    sys.modules.pop("sitecustomize", None)
    try:
        importlib.import_module("sitecustomize")  # the next one on the path
    except ImportError as exc:
        if exc.name != "sitecustomize":
            _report(exc)
    except Exception as exc:
        _report(exc)
    finally:
        if "sitecustomize" not in sys.modules and ours is not None:
            sys.modules["sitecustomize"] = ours
        sys.path[:0] = kept


def _same(entry: str, directory: str) -> bool:
    try:
        return os.path.abspath(entry or os.curdir) == directory
    except (TypeError, ValueError):
        return False


def _report(exc: BaseException) -> None:
    # what site.py prints when a sitecustomize fails
    print(
        f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{type(exc).__name__}: {exc}",
        file=sys.stderr,
    )


if __name__ == "sitecustomize":
    _activate()
    _chain()
