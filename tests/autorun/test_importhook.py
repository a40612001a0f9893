"""The post-import finder: hooks run right after a watched module is imported."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfpilot.autorun.importhook import PostImportFinder


@pytest.fixture
def modules(tmp_path: Path) -> Iterator[Path]:
    """A directory on sys.path for throwaway modules; they are forgotten afterwards."""
    sys.path.insert(0, str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in set(sys.modules) - before:
        del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture
def finder() -> Iterator[PostImportFinder]:
    finder = PostImportFinder()
    finder.install()
    yield finder
    finder.uninstall()


def test_a_hook_runs_before_the_importer_binds_names(
    modules: Path, finder: PostImportFinder
) -> None:
    (modules / "pp_lib.py").write_text("def connect():\n    return 'original'\n")
    (modules / "pp_user.py").write_text("from pp_lib import connect\n")

    def hook(module: types.ModuleType) -> None:
        module.connect = lambda: "hooked"

    finder.watch("pp_lib", hook)
    import pp_user  # type: ignore[import-not-found]

    assert pp_user.connect() == "hooked"


def test_the_module_keeps_its_real_loader_and_resources(
    modules: Path, finder: PostImportFinder
) -> None:
    package = modules / "pp_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "data.txt").write_text("hello")
    seen: list[str] = []
    finder.watch("pp_pkg", lambda module: seen.append(module.__name__))
    import importlib.resources

    import pp_pkg  # type: ignore[import-not-found]

    assert seen == ["pp_pkg"]
    assert type(pp_pkg.__loader__).__name__ == "SourceFileLoader"
    assert pp_pkg.__spec__.loader is pp_pkg.__loader__
    assert importlib.resources.files("pp_pkg").joinpath("data.txt").read_text() == "hello"


def test_an_imported_module_is_hooked_at_once_and_only_once(
    modules: Path, finder: PostImportFinder
) -> None:
    (modules / "pp_early.py").write_text("")
    import pp_early  # type: ignore[import-not-found]

    seen: list[object] = []
    finder.watch("pp_early", seen.append)
    assert seen == [pp_early]
    importlib.import_module("pp_early")
    assert seen == [pp_early]


def test_a_failing_hook_never_reaches_the_importer(
    modules: Path, finder: PostImportFinder, caplog: pytest.LogCaptureFixture
) -> None:
    (modules / "pp_fragile.py").write_text("VALUE = 1\n")

    def broken(module: types.ModuleType) -> None:
        raise RuntimeError("hook bug")

    finder.watch("pp_fragile", broken)
    import pp_fragile  # type: ignore[import-not-found]

    assert pp_fragile.VALUE == 1
    assert "hook bug" in caplog.text


def test_unwatched_and_missing_modules_are_left_to_python(
    modules: Path, finder: PostImportFinder
) -> None:
    finder.watch("pp_missing", lambda module: None)
    assert finder.find_spec("pp_other", None) is None
    with pytest.raises(ModuleNotFoundError):
        import pp_missing  # type: ignore[import-not-found]  # noqa: F401
    assert finder.watched == ("pp_missing",)


def test_an_error_in_the_module_still_raises_and_no_hook_runs(
    modules: Path, finder: PostImportFinder
) -> None:
    (modules / "pp_bad.py").write_text("raise ValueError('module bug')\n")
    seen: list[object] = []
    finder.watch("pp_bad", seen.append)
    with pytest.raises(ValueError, match="module bug"):
        import pp_bad  # type: ignore[import-not-found]  # noqa: F401
    assert seen == []
