"""The ``perfpilot`` entry point: argument errors and messages that never show a password."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from perfpilot.cli.main import main
from perfpilot.store import open_store
from tests.dbadvisor import blog
from tests.pg import PostgresServer
from tests.report.sample import sample_load

KEYWORDS = "host=127.0.0.1 port=1 user=u password=secret dbname=db"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PERFPILOT_STORE", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A store with one load run that ended a few seconds ago."""
    path = tmp_path / "perf.db"
    now = time.time()
    with open_store(str(path)) as db:
        db.save_run(dataclasses.replace(sample_load(), started_at=now - 40, ended_at=now - 30))
    return str(path)


def test_a_keyword_dsn_password_is_never_printed(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite_db = tmp_path / "app.db"
    open_store(str(sqlite_db)).close()  # any SQLite file will do for --from-store
    for argv in (
        ["db", "health", KEYWORDS],
        ["db", "advise", KEYWORDS],
        ["db", "advise", KEYWORDS, "--from-store", store],
        ["db", "advise", str(sqlite_db), "--from-store", KEYWORDS],
        ["report", "--store", KEYWORDS],
        ["report", "--run", "1", "--store", store, "--db", KEYWORDS],
        ["db", "health", "x password=secret"],
        ["report", "--store", "x password=secret"],
    ):
        assert main(argv) == 2, argv
        out, err = capsys.readouterr()
        assert "secret" not in out + err, argv
        assert err.startswith("perfpilot: error: ") and err.count("\n") == 1, err
        if KEYWORDS in argv:  # recognised as PostgreSQL, not taken for a SQLite path
            assert "cannot connect to host=127.0.0.1 port=1 user=u dbname=db" in err, argv


@pytest.mark.integration
def test_a_keyword_dsn_reaches_postgres(
    postgres: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    url = blog.create_postgres(postgres, "perfpilot_cli_keywords")
    keywords = make_conninfo("", **conninfo_to_dict(url))
    assert "://" not in keywords and f"password={blog.SECRET}" in keywords
    assert main(["db", "health", keywords, "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert blog.SECRET not in out + err
    assert "perfpilot_cli_keywords" in out


def test_an_unknown_option_names_the_sub_command_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv, hint in (
        (["db", "advise", "X", "--store", "pp.db"], "(see 'perfpilot db advise --help')"),
        (["report", "--bogus"], "(see 'perfpilot report --help')"),
        (["runs", "list", "--bogus"], "(see 'perfpilot runs list --help')"),
    ):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert "unrecognized arguments" in err and hint in err, err
        assert err.count("\n") == 1
