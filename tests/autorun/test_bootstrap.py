"""The bootstrap ``sitecustomize``: activation by environment only, chaining, a light start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from perfpilot.autorun.launch import BOOTSTRAP_DIR
from tests.autorun.harness import ROOT

PROBE = (
    "import sys\n"
    "print('runtime' if 'perfpilot.autorun.runtime' in sys.modules else 'no-runtime')\n"
    "print('numpy' if 'numpy' in sys.modules else 'no-numpy')\n"
    "print(getattr(sys, 'user_site_customized', 'no-user-sitecustomize'))\n"
)


def python(code: str, *paths: Path | str, active: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFPILOT_")}
    env["PYTHONPATH"] = os.pathsep.join([BOOTSTRAP_DIR, *map(str, paths), str(ROOT)])
    if active:
        env["PERFPILOT_AUTORUN"] = "1"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=False, timeout=60)  # fmt: skip


def test_without_the_variable_nothing_is_activated() -> None:
    done = python(PROBE, active=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["no-runtime", "no-numpy", "no-user-sitecustomize"]
    assert done.stderr == ""


def test_activation_is_light_and_the_shadowed_sitecustomize_still_runs(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\nsys.user_site_customized = 'user-sitecustomize'\n"
    )
    done = python(PROBE, tmp_path, active=True)
    assert done.returncode == 0, done.stderr
    # no library imported: perfpilot's recorder (and numpy) stay out of the process
    assert done.stdout.split() == ["runtime", "no-numpy", "user-sitecustomize"]
    assert done.stderr == ""  # not the process perfpilot run became: it says nothing


def test_libraries_imported_by_the_shadowed_sitecustomize_are_hooked(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import sqlite3\n")
    hooked = python("import sqlite3; print(getattr(sqlite3.connect, '__perfpilot__', False))",
                    tmp_path, active=True)  # fmt: skip
    assert hooked.stdout.strip() == "True", hooked.stderr


def test_a_failing_sitecustomize_is_reported_as_python_would_and_the_program_runs(
    tmp_path: Path,
) -> None:
    (tmp_path / "sitecustomize.py").write_text("raise RuntimeError('site bug')\n")
    done = python("print('ran')", tmp_path, active=False)
    assert done.returncode == 0
    assert done.stdout == "ran\n"
    assert "Error in sitecustomize" in done.stderr and "site bug" in done.stderr


def test_a_python_without_perfpilot_runs_with_one_line(tmp_path: Path) -> None:
    # -S skips site-packages and the editable install; then import sitecustomize by hand
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFPILOT_")}
    env.update(PYTHONPATH=BOOTSTRAP_DIR, PERFPILOT_AUTORUN="1")
    done = subprocess.run(
        [sys.executable, "-S", "-c", "import sitecustomize; print('ran')"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0
    assert done.stdout == "ran\n"
    assert done.stderr.count("\n") == 1 and "cannot import perfpilot" in done.stderr
