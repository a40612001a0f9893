"""The public surface and the import rules of docs/architecture.md."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import perfpilot

SRC = Path(__file__).resolve().parent.parent / "src" / "perfpilot"


def test_public_api_is_pinned() -> None:
    assert perfpilot.__all__ == [
        "Histogram",
        "LoadPlan",
        "LoadResult",
        "__version__",
        "cache_event",
        "instrument",
        "load_scenario",
        "merge_results",
        "metrics_app",
        "plan_from_url",
        "run_load",
        "unit",
    ]
    for name in perfpilot.__all__:
        assert getattr(perfpilot, name) is not None


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_nothing_imports_the_cli() -> None:
    for path in SRC.rglob("*.py"):
        if "cli" in path.relative_to(SRC).parts or path.name == "__main__.py":
            continue
        assert not any(m.startswith("perfpilot.cli") for m in _imported_modules(path)), path


def test_stats_imports_no_io() -> None:
    io_modules = {"os", "socket", "sqlite3", "asyncio", "subprocess", "http", "urllib", "shutil"}
    for path in (SRC / "stats").rglob("*.py"):
        roots = {m.split(".")[0] for m in _imported_modules(path)}
        assert not roots & io_modules, path
        assert not any(
            m.startswith("perfpilot.") and not m.startswith("perfpilot.stats")
            for m in _imported_modules(path)
        )


def test_importing_perfpilot_loads_only_the_standard_library() -> None:
    code = (
        "import sys, perfpilot, perfpilot.errors, perfpilot.clock, perfpilot.config\n"
        "third = sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names)"
        " - {'perfpilot', '__main__', '_distutils_hack'})\n"
        "print(','.join(third))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_importing_every_module_has_no_side_effects(tmp_path: Path) -> None:
    modules = sorted(
        ".".join(p.relative_to(SRC.parent).with_suffix("").parts)
        for p in SRC.rglob("*.py")
        if p.name != "__main__.py"
    )
    code = (
        "import importlib, os, signal, sys\n"
        f"mods = {modules!r}\n"
        "before = (signal.getsignal(signal.SIGINT), sorted(os.listdir('.')))\n"
        "for m in mods:\n"
        "    importlib.import_module(m.replace('.__init__', ''))\n"
        "after = (signal.getsignal(signal.SIGINT), sorted(os.listdir('.')))\n"
        "assert before == after, (before, after)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)


def test_top_level_monitoring_names_work_whatever_was_imported_first() -> None:
    code = (
        "import perfpilot\n"
        "f = perfpilot.instrument\n"
        "import perfpilot.instrument.recorder\n"
        "assert callable(perfpilot.instrument) and callable(f)\n"
        "app = lambda environ, start_response: [b'ok']\n"
        "wrapped = perfpilot.instrument(app, flush=False, hooks=False)\n"
        "assert wrapped is not app\n"
        "perfpilot.unit('listing')\n"
        "perfpilot.cache_event('c', hit=True)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
