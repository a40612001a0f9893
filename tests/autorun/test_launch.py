"""What ``perfpilot run`` prepares before it becomes the command."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from perfpilot.autorun.launch import BOOTSTRAP_DIR, Launch, absolute_store, is_python, prepare
from perfpilot.errors import ConfigError, UsageError


def script(path: Path, text: str, executable: bool = True) -> Path:
    path.write_text(text)
    if executable:
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def bindir(tmp_path: Path) -> Path:
    """A PATH directory with a Python script, a shell script and an interpreter-named file."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    script(bin_ / "gunicorn", "#!/opt/venv/bin/python3\nimport gunicorn\n")
    script(bin_ / "envpy", "#!/usr/bin/env python3\n")
    script(bin_ / "envs", "#!/usr/bin/env -S python3.11 -X dev\n")
    script(bin_ / "tool", "#!/bin/sh\nexit 0\n")
    script(bin_ / "python3.12", "not really\n")
    script(bin_ / "notes", "#!/usr/bin/python3\n", executable=False)
    return bin_


def test_python_is_recognized_by_interpreter_name_or_shebang(bindir: Path) -> None:
    for name in ("gunicorn", "envpy", "envs", "python3.12"):
        assert is_python(str(bindir / name)), name
    assert not is_python(str(bindir / "tool"))
    assert not is_python("/bin/sh")
    (bindir / "pypy3").symlink_to(bindir / "tool")
    assert is_python(str(bindir / "pypy3"))
    (bindir / "py").symlink_to(bindir / "python3.12")
    assert is_python(str(bindir / "py"))  # through the symlink


def test_the_bootstrap_goes_first_on_pythonpath_and_the_rest_is_kept(
    bindir: Path, tmp_path: Path
) -> None:
    environ = {"PATH": str(bindir), "PYTHONPATH": f"/a{os.pathsep}/b", "OTHER": "kept"}
    launch = prepare(["gunicorn", "app:app"], environ=environ, cwd=tmp_path, pid=4242)
    assert launch.executable == str(bindir / "gunicorn")
    assert launch.argv == ("gunicorn", "app:app")
    assert launch.python and launch.note is None
    assert launch.env["PYTHONPATH"].split(os.pathsep) == [BOOTSTRAP_DIR, "/a", "/b"]
    assert launch.env["OTHER"] == "kept"
    assert launch.env["PERFPILOT_AUTORUN"] == "1"
    assert launch.env["PERFPILOT_AUTORUN_PID"] == "4242"
    assert len(launch.env["PERFPILOT_AUTORUN_ID"]) == 16
    assert (Path(BOOTSTRAP_DIR) / "sitecustomize.py").is_file()
    # nested perfpilot run: the bootstrap is not repeated
    again = prepare(["gunicorn"], environ=dict(launch.env), cwd=tmp_path, pid=1)
    assert again.env["PYTHONPATH"].split(os.pathsep) == [BOOTSTRAP_DIR, "/a", "/b"]


def test_settings_come_from_options_then_environment_then_perfpilot_toml(
    bindir: Path, tmp_path: Path
) -> None:
    (tmp_path / "perfpilot.toml").write_text(
        'store = "data/pp.db"\nservice = "from-file"\nflush_interval_s = 2\nprices = "prices.toml"\n'
    )
    environ = {"PATH": str(bindir), "PERFPILOT_SERVICE": "from-env"}
    launch = prepare(["tool"], {"trace_sample_rate": 0.5, "service": None}, environ=environ,
                     cwd=tmp_path)  # fmt: skip
    env = launch.env
    assert env["PERFPILOT_STORE"] == str(tmp_path / "data" / "pp.db")  # absolute
    assert env["PERFPILOT_SERVICE"] == "from-env"
    assert env["PERFPILOT_FLUSH_INTERVAL_S"] == "2.0"
    assert env["PERFPILOT_TRACE_SAMPLE_RATE"] == "0.5"
    assert env["PERFPILOT_PRICES"] == str(tmp_path / "prices.toml")
    assert env["PERFPILOT_SERVER_TIMING"] == "0"
    assert not launch.python
    assert launch.note is not None and "tool is not a Python program" in launch.note


def test_store_urls_are_left_as_they_are(tmp_path: Path) -> None:
    url = "postgresql://perf@db:5432/perf"
    assert absolute_store(url, tmp_path) == url
    assert absolute_store(":memory:", tmp_path) == ":memory:"
    assert absolute_store("x.db", tmp_path) == str(tmp_path / "x.db")
    assert absolute_store("/abs/x.db", tmp_path) == "/abs/x.db"


def test_bad_commands_and_settings_are_usage_errors(bindir: Path, tmp_path: Path) -> None:
    environ = {"PATH": str(bindir)}
    with pytest.raises(UsageError, match="no command"):
        prepare([], environ=environ, cwd=tmp_path)
    with pytest.raises(UsageError, match="command not found: nope"):
        prepare(["nope"], environ=environ, cwd=tmp_path)
    with pytest.raises(UsageError, match=r"command not found: \./missing"):
        prepare(["./missing"], environ=environ, cwd=tmp_path)
    with pytest.raises(UsageError, match="not executable"):
        prepare([str(bindir / "notes")], environ=environ, cwd=tmp_path)
    with pytest.raises(ConfigError, match="trace_sample_rate"):
        prepare(["tool"], {"trace_sample_rate": 3}, environ=environ, cwd=tmp_path)


def test_a_relative_program_path_is_resolved_against_the_working_directory(
    bindir: Path, tmp_path: Path
) -> None:
    launch = prepare(["bin/gunicorn"], environ={"PATH": ""}, cwd=tmp_path)
    assert launch.executable == str(tmp_path / "bin" / "gunicorn")
    assert launch.argv[0] == "bin/gunicorn"


def test_launch_round_trips_through_a_dict(bindir: Path, tmp_path: Path) -> None:
    launch = prepare(["tool", "-x"], environ={"PATH": str(bindir)}, cwd=tmp_path)
    assert Launch.from_dict(launch.to_dict()) == launch
