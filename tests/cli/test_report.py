"""``perfpilot report``: formats, outputs and exit codes."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest

from perfpilot.app_records import AppSnapshot, RequestRow
from perfpilot.cli import main as cli_main
from perfpilot.errors import EXIT_OK, EXIT_USAGE
from perfpilot.store import open_store
from tests.dbadvisor import blog
from tests.pg import PostgresServer
from tests.report.sample import EVIL_ROUTE, hist, sample_load


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cli_main, "SUBCOMMANDS", ("report",))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("PERFPILOT_STORE", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A store with a load run that ended a few seconds ago and the app's view of it."""
    path = tmp_path / "perf.db"
    now = time.time()
    load = dataclasses.replace(sample_load(), started_at=now - 40, ended_at=now - 30)
    with open_store(str(path)) as db:
        db.save_run(load)
        for route, latency_s in (("/orders", 0.2), (EVIL_ROUTE, 0.01)):
            db.save_app_snapshot(
                AppSnapshot(
                    service="shop",
                    host="h",
                    pid=1,
                    started_at=now - 40,
                    ended_at=now - 35,
                    requests=(
                        RequestRow(
                            route,
                            "GET",
                            2,
                            50,
                            0,
                            hist(*[latency_s] * 50),
                            db_time_s=1.0,
                            db_count=50,
                        ),
                    ),
                )
            )
    return str(path)


def run(*argv: str) -> int:
    return cli_main.main(["report", *argv])


def test_terminal_report_of_the_last_hour_by_default(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("--store", store) == EXIT_OK
    out = capsys.readouterr().out
    assert "1. Performance Assessment" in out and "5. Monitoring Strategy" in out
    assert "GET /orders" in out
    assert "server side (in-app)" in out


def test_html_file_from_a_run_format_from_the_extension(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out" / "report.html"
    target.parent.mkdir()
    assert run("--run", "1", "--store", store, "-o", str(target)) == EXIT_OK
    assert capsys.readouterr().out == f"report written to {target}\n"
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "load run <strong>shop &lt;smoke&gt;</strong>" in page
    assert EVIL_ROUTE not in page.split("<script", 1)[0]
    assert not list(target.parent.glob(".*.tmp"))  # written atomically, nothing left behind


def test_markdown_and_json_go_to_standard_output(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run("--since", "10m", "--service", "shop", "--format", "markdown", "--store", store)
        == EXIT_OK
    )
    assert "## 3. Optimization Plan" in capsys.readouterr().out
    assert run("--run", "1", "--format", "json", "--store", store) == EXIT_OK
    document = json.loads(capsys.readouterr().out)
    assert (document["format"], document["run_name"]) == (1, "shop <smoke>")


def test_format_option_wins_over_the_extension(store: str, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    assert run("--since", "1h", "--format", "json", "-o", str(target), "--store", store) == EXIT_OK
    assert json.loads(target.read_text())["kind"] == "perfpilot.report"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--run", "7"], "no run with id 7"),
        (["--since", "soon"], "--since: cannot read 'soon'"),
        (["--since", "0s"], "--since must be longer than zero"),
        (["--since", "1s", "--service", "shop"], "nothing was recorded for service 'shop'"),
        (["--since", "1h", "--service", "nobody"], "nothing was recorded"),
    ],
)
def test_bad_input_is_a_one_line_error(
    store: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(*argv, "--store", store) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("perfpilot: error: ") and err.count("\n") == 1
    assert message in err


@pytest.mark.parametrize(
    "argv",
    [["--run", "1", "--since", "1h"], ["--format", "pdf"], ["--run", "x"], ["--run", "0"]],
)
def test_bad_options_exit_2(
    store: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stop:
        run(*argv, "--store", store)
    assert stop.value.code == EXIT_USAGE
    assert capsys.readouterr().err.count("\n") == 1


def test_missing_store_and_unwritable_output_exit_2(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.db"
    assert run("--store", str(missing)) == EXIT_USAGE
    assert capsys.readouterr().err == f"perfpilot: error: no store at {missing}\n"
    assert not missing.exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run("--store", store, "-o", str(blocker / "r.html")) == EXIT_USAGE
    err = capsys.readouterr().err
    assert (
        err.startswith(f"perfpilot: error: cannot write {blocker / 'r.html'}")
        and err.count("\n") == 1
    )
    missing = tmp_path / "nodir"
    for argv in (
        ["-o", str(missing / "r.html")],
        ["-o", str(missing / "a" / "r.xyz"), "--format", "json"],
    ):
        assert run("--store", store, *argv) == EXIT_USAGE, argv
        err = capsys.readouterr().err
        assert err.startswith(f"perfpilot: error: cannot write {missing}/") and err.count("\n") == 1
        assert "does not exist" in err
    assert not missing.exists()  # nothing created
    for name, shown in (("r.xyz", ".xyz"), ("report", "'report' (no extension)")):
        assert run("--store", store, "-o", str(tmp_path / name)) == EXIT_USAGE
        err = capsys.readouterr().err
        assert err == f"perfpilot: error: cannot tell the format from {shown}; use --format\n"
        assert not (tmp_path / name).exists()
    assert run("--store", store, "-o", str(tmp_path / "r.xyz"), "--format", "markdown") == EXIT_OK
    assert (tmp_path / "r.xyz").read_text().startswith("#")


def db_store(path: Path, dialect: str) -> str:
    """A store whose last minutes hold a slow lookup on posts(user_id), run by /posts."""
    from perfpilot.app_records import QueryRow

    now = time.time()
    sql = "SELECT * FROM posts WHERE user_id = ?"
    with open_store(str(path)) as db:
        db.save_app_snapshot(
            AppSnapshot(
                service="blog",
                host="h",
                pid=1,
                started_at=now - 90,
                ended_at=now - 30,
                requests=(
                    RequestRow(
                        "/posts", "GET", 2, 50, 0, hist(*[0.3] * 50), db_time_s=14.0, db_count=50
                    ),
                ),
                queries=(
                    QueryRow(
                        "f0f0f0f0f0f0f0f0",
                        sql,
                        dialect,
                        "/posts",
                        50,
                        0,
                        hist(*[0.28] * 50),
                        rows=50,
                    ),
                ),
            )
        )
    return str(path)


def test_db_adds_the_advisor_and_health_findings_to_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = db_store(tmp_path / "perf.db", "sqlite")
    database = blog.create_sqlite(tmp_path / "blog.db")
    assert run("--since", "1h", "--store", store, "--format", "json") == EXIT_OK
    plain = json.loads(capsys.readouterr().out)
    guessed = [
        f
        for f in plain["optimization_plan"]
        if f["evidence"].get("fingerprint") == "f0f0f0f0f0f0f0f0"
    ]
    assert [f["kind"] for f in guessed] == ["missing_index"]  # the detectors' guess

    assert (
        run("--since", "1h", "--store", store, "--db", str(database), "--format", "json") == EXIT_OK
    )
    document = json.loads(capsys.readouterr().out)
    plan = document["optimization_plan"]
    kinds = [f["kind"] for f in plan]
    # the advisor's costed index replaces the detector's guess; its impact ranks it first
    (index,) = [f for f in plan if f["kind"] == "missing_index"]
    assert plan[0] is index and index["id"] not in {f["id"] for f in guessed}
    assert index["evidence"]["queries"][0]["fingerprint"] == "f0f0f0f0f0f0f0f0"
    assert index["evidence"]["queries"][0]["values"] == "sampled"
    assert index["fix"]["code"].startswith("CREATE INDEX idx_posts_user_id ON posts (user_id);")
    assert "unindexed_foreign_key" in kinds  # a health check
    # the SELECT * hint on the statement is left out: the app recorded it, and the
    # detectors, which saw its rows, did not flag it
    assert "select_star" not in kinds
    guide = {g["finding"] for g in document["implementation_guide"]}
    assert index["id"] in guide
    assert any(
        n.startswith(f"Database {database}: ") and "1 in-app finding(s) replaced" in n
        for n in document["notes"]
    )
    assert any(
        n.startswith("Index advice on 1 statement(s) from store (ms): 1 recommended")
        for n in document["notes"]
    )

    target = tmp_path / "report.html"
    assert (
        run("--since", "1h", "--store", store, "--db", str(database), "-o", str(target)) == EXIT_OK
    )
    page = target.read_text(encoding="utf-8")
    assert "Missing index posts(user_id)" in page and "Foreign key posts(user_id)" in page


def test_db_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = db_store(tmp_path / "perf.db", "sqlite")
    assert run("--since", "1h", "--store", store, "--db", str(tmp_path / "none.db")) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "none.db: no such SQLite database file" in err and err.count("\n") == 1


@pytest.mark.integration
def test_db_on_postgres_never_shows_the_password(
    postgres: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = blog.create_postgres(postgres, "perfpilot_report_db")
    store = db_store(tmp_path / "perf.db", "postgresql")
    for fmt in ("json", "markdown", "html", "terminal"):
        assert run("--since", "1h", "--store", store, "--db", secret, "--format", fmt) == EXIT_OK, (
            fmt
        )
        out, err = capsys.readouterr()
        assert blog.SECRET not in out + err, fmt
        assert "perfpilot_report_db" in out.replace("\\_", "_"), fmt  # markdown escapes _
        if fmt == "json":
            plan = json.loads(out)["optimization_plan"]
            assert any(
                f["kind"] == "missing_index"
                and f["fix"]["code"].startswith("CREATE INDEX CONCURRENTLY")
                for f in plan
            )
            assert any(f["kind"] == "unindexed_foreign_key" for f in plan)
