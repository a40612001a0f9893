"""Run a function right after a module is imported (a post-import hook).

:class:`PostImportFinder` sits first on ``sys.meta_path``. For a watched
module name it asks the finders after it for the module's spec and wraps the
spec's loader, so that once the module's code has run its hooks are called,
before the ``import`` statement that loaded it returns; ``from sqlite3 import
connect`` then binds the hooked function. Other names cost one dictionary
lookup. After the module ran, its ``__loader__`` and ``__spec__.loader`` are
the real loader again, so introspection (``importlib.resources``, ``pkgutil``)
sees nothing of perfpilot.

A module that is already imported when it is watched gets its hooks at once.
A hook that raises is logged once and never reaches the importer.

Example::

    finder = PostImportFinder()
    finder.watch("sqlite3", lambda module: print("sqlite3 is here"))
    finder.install()
"""

from __future__ import annotations

import importlib.machinery
import sys
import threading
import types
from collections.abc import Callable, Sequence
from typing import Any, cast

Hook = Callable[[types.ModuleType], None]

_warned: set[str] = set()


def warn_once(key: str, message: str, *args: Any) -> None:
    """Log ``message`` once per ``key`` on the ``perfpilot`` logger; never raises.

    (``perfpilot.instrument.context.warn_once`` would import the recorder and
    numpy into every process at start-up; this module must stay light.)
    """
    if key in _warned:
        return
    _warned.add(key)
    try:
        import logging  # only when something went wrong: start-up stays light

        logging.getLogger("perfpilot").warning(message, *args)
    except Exception:  # logging itself broken: nothing more to do
        return


class PostImportFinder:
    """A meta path finder that calls hooks after watched modules are imported.

    (Duck-typed rather than an ``importlib.abc`` subclass: that module would
    import ``importlib.resources`` into every process at start-up.)
    """

    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = {}
        self._lock = threading.RLock()
        # names being looked up by this thread: the finders after us may
        # import (rarely) and must not loop back into our own lookup
        self._busy = threading.local()

    def watch(self, name: str, hook: Hook) -> None:
        """Call ``hook(module)`` once ``name`` is imported (at once if it already is)."""
        with self._lock:
            self._hooks.setdefault(name, []).append(hook)
        module = sys.modules.get(name)
        if module is not None:
            _call(hook, module)

    @property
    def watched(self) -> Sequence[str]:
        """The module names that have hooks."""
        return tuple(self._hooks)

    def install(self) -> None:
        """Put this finder first on ``sys.meta_path`` (idempotent)."""
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def uninstall(self) -> None:
        """Take this finder off ``sys.meta_path`` (tests)."""
        while self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """The spec the other finders give, with a loader that runs the hooks."""
        if fullname not in self._hooks:
            return None
        busy: set[str] = self._busy.__dict__.setdefault("names", set())
        if fullname in busy:
            return None
        busy.add(fullname)
        try:
            spec = _find_after(self, fullname, path, target)
        except Exception as exc:  # a broken finder after us: let the normal import say so
            warn_once(f"importhook-{fullname}", "perfpilot: cannot watch %s: %r", fullname, exc)
            return None
        finally:
            busy.discard(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec  # namespace packages, legacy loaders: imported as is, not hooked
        loader = spec.loader
        spec.loader = cast(Any, _HookedLoader(loader, self, fullname))
        return spec

    def run_hooks(self, module: types.ModuleType) -> None:
        """Call the hooks of ``module`` (after it was executed)."""
        with self._lock:
            hooks = list(self._hooks.get(module.__name__, ()))
        for hook in hooks:
            _call(hook, module)


def _find_after(
    finder: PostImportFinder,
    fullname: str,
    path: Sequence[str] | None,
    target: types.ModuleType | None,
) -> importlib.machinery.ModuleSpec | None:
    for other in list(sys.meta_path):
        if other is finder:
            continue
        find_spec = getattr(other, "find_spec", None)
        if find_spec is None:
            continue
        spec: importlib.machinery.ModuleSpec | None = find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


def _call(hook: Hook, module: types.ModuleType) -> None:
    try:
        hook(module)
    except Exception as exc:  # never into the importer
        name = getattr(hook, "__qualname__", repr(hook))
        warn_once(f"importhook-{name}", "perfpilot: hook %s failed: %r", name, exc)


class _HookedLoader:
    """Delegates to the real loader, then runs the hooks and steps aside."""

    def __init__(self, loader: Any, finder: PostImportFinder, name: str) -> None:
        self._loader = loader
        self._finder = finder
        self._name = name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        """The real loader's module (or ``None`` for the default)."""
        create = getattr(self._loader, "create_module", None)
        if create is None:
            return None
        module: types.ModuleType | None = create(spec)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        """Run the module's code, put the real loader back, then call the hooks."""
        try:
            self._loader.exec_module(module)
        finally:
            _restore(module, self._loader)
        self._finder.run_hooks(module)

    def __getattr__(self, name: str) -> Any:
        # get_resource_reader, get_filename, is_package, get_code...
        return getattr(self._loader, name)


def _restore(module: types.ModuleType, loader: Any) -> None:
    spec = getattr(module, "__spec__", None)
    if spec is not None and isinstance(spec.loader, _HookedLoader):
        spec.loader = loader
    if isinstance(getattr(module, "__loader__", None), _HookedLoader):
        module.__loader__ = loader
