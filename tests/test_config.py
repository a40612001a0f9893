"""Settings precedence: command line > PERFPILOT_* > perfpilot.toml / [tool.perfpilot] > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from perfpilot.config import DEFAULT_STORE, load_settings
from perfpilot.errors import ConfigError


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.store == DEFAULT_STORE
    assert settings.processes is None


def test_precedence(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.perfpilot]\nstore = "py.db"\nprocesses = 3\n')
    assert load_settings(environ={}, cwd=tmp_path).store == "py.db"
    (tmp_path / "perfpilot.toml").write_text('store = "own.db"\n')
    settings = load_settings(environ={}, cwd=tmp_path)
    assert settings.store == "own.db"
    assert settings.processes is None  # perfpilot.toml wins over pyproject entirely
    env = {"PERFPILOT_STORE": "env.db", "PERFPILOT_PROCESSES": "4"}
    settings = load_settings(environ=env, cwd=tmp_path)
    assert (settings.store, settings.processes) == ("env.db", 4)
    settings = load_settings({"store": "cli.db", "processes": None}, environ=env, cwd=tmp_path)
    assert (settings.store, settings.processes) == ("cli.db", 4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("store = 1\n", "expected a string"),
        ("processes = 0\n", "positive"),
        ("processes = 'many'\n", "integer"),
        ("stroe = 'x'\n", "unknown setting"),
        ("store = \n", "perfpilot.toml:1:"),
    ],
)
def test_bad_file_values(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "perfpilot.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, cwd=tmp_path)
    assert expected in str(info.value)
    assert info.value.exit_code == 2


def test_bad_environment_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PERFPILOT_PROCESSES"):
        load_settings(environ={"PERFPILOT_PROCESSES": "x"}, cwd=tmp_path)
