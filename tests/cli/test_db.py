"""``perfpilot db advise|health`` on SQLite: formats, errors, --apply."""

from __future__ import annotations

import builtins
import json
import sqlite3
from pathlib import Path

import pytest

from perfpilot.analyze.findings import Finding, Fix, Impact
from perfpilot.cli.main import main
from tests.dbadvisor import blog
from tests.pg import PostgresServer


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT)")
    conn.executemany(
        "INSERT INTO posts VALUES (?, ?, ?)", ((i, i % 9000, f"t{i}") for i in range(60_000))
    )
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def sql(tmp_path: Path) -> Path:
    path = tmp_path / "q.sql"
    path.write_text(
        "SELECT * FROM posts WHERE user_id = 42;\nSELECT * FROM posts WHERE title LIKE '%x';\n"
    )
    return path


def indexes(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
    stats = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
    ).fetchone()[0]
    conn.close()
    return names + (["<stats>"] if stats else [])


def test_advise_json_markdown_and_terminal(
    db: Path, sql: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "advise", str(db), "--sql", str(sql), "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["format"] == 1 and document["cost_unit"] == "ms"
    kinds = [f["kind"] for f in document["findings"]]
    # index findings first, then one hint per (kind, statement)
    assert kinds == ["missing_index", "no_index_helps", "select_star", "select_star"]
    fingerprints = [q["query"]["fingerprint"] for q in document["queries"]]
    assert [f["evidence"]["fingerprint"] for f in document["findings"][2:]] == fingerprints
    assert document["findings"][0]["fix"]["code"].startswith(
        "CREATE INDEX idx_posts_user_id ON posts (user_id);"
    )
    assert [q["status"] for q in document["queries"]] == ["recommended", "no_index_helps"]

    assert main(["db", "advise", f"sqlite:///{db}", "--sql", str(sql), "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("# Index advice")
    assert "```sql\nCREATE INDEX idx_posts_user_id ON posts (user_id);" in markdown
    assert "| recommended |" in markdown

    assert main(["db", "advise", str(db), "--sql", str(sql)]) == 0
    terminal = capsys.readouterr().out
    assert "Missing index posts(user_id)" in terminal and "No index helps" in terminal
    assert indexes(db) == []  # advice alone changes nothing


def test_apply_asks_first_and_creates_the_index(
    db: Path, sql: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    answers = iter(["n"])
    monkeypatch.setattr(builtins, "input", lambda *a: next(answers))
    assert main(["db", "advise", str(db), "--sql", str(sql), "--apply"]) == 0
    assert "Nothing created." in capsys.readouterr().out
    assert indexes(db) == []
    assert main(["db", "advise", str(db), "--sql", str(sql), "--apply", "--yes"]) == 0
    assert "created CREATE INDEX IF NOT EXISTS idx_posts_user_id" in capsys.readouterr().out
    assert indexes(db) == ["idx_posts_user_id", "<stats>"]


def test_bad_input_is_one_line_and_exit_2(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.sql"
    bad.write_text("SELECT 1;\nSELECT 'open\n")
    cases = [
        (["db", "advise", str(db), "--sql", str(bad)], f"{bad}:2: unterminated string literal"),
        (["db", "advise", str(db)], "give the SQLite workload with --sql FILE or --from-store"),
        (
            ["db", "advise", str(tmp_path / "none.db"), "--sql", str(bad)],
            "no such SQLite database file",
        ),
        (["db", "advise", str(db), "--sql", str(bad), "--yes"], "--yes goes with --apply"),
        (["db", "advise", str(db), "--from-statements"], "PostgreSQL only"),
        (["db", "advise", "mysql://x@y/z", "--sql", str(bad)], "unsupported database URL"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    with pytest.raises(SystemExit) as exited:  # argparse's own errors
        main(["db", "advise", str(db), "--sql", str(bad), "--min-gain", "2"])
    assert exited.value.code == 2
    assert "expected a number in (0, 1], got 2.0" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    good = tmp_path / "good.sql"
    good.write_text("SELECT * FROM posts WHERE user_id = 1")
    assert main(["db", "advise", str(db), "--sql", str(good), "--apply"]) == 2
    assert "add --yes" in capsys.readouterr().err


def test_health_renders_the_findings_of_check_health(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []

    def fake_check_health(target: str) -> list[Finding]:
        seen.append(target)
        return [
            Finding("h:1", "unindexed_foreign_key", "medium", "FK posts(user_id) has no index",
                    "posts", {"table": "posts"}, Impact(), Fix("Index it.", "CREATE INDEX ...;", "sql"))
        ]  # fmt: skip

    monkeypatch.setattr("perfpilot.dbadvisor.health.check_health", fake_check_health)
    dsn = "postgresql://app:pw123@127.0.0.1:1/x"
    assert main(["db", "health", dsn, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert seen == [dsn]
    assert document["database"] == "postgresql://app@127.0.0.1:1/x"
    assert document["findings"][0]["kind"] == "unindexed_foreign_key"
    assert main(["db", "health", str(db)]) == 0
    assert "FK posts(user_id) has no index" in capsys.readouterr().out


def test_advise_from_the_store(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from perfpilot.app_records import AppSnapshot, QueryRow
    from perfpilot.stats.histogram import Histogram
    from perfpilot.store import open_store

    latency = Histogram()
    latency.record(0.005)
    row = QueryRow(
        "f1", "SELECT * FROM posts WHERE user_id = ?", "sqlite", "/posts", 12, 0, latency
    )
    store_path = tmp_path / "perf.db"
    with open_store(str(store_path)) as store:
        store.save_app_snapshot(AppSnapshot("svc", "h", 1, 1000.0, 1060.0, queries=(row,)))
    assert main(["db", "advise", str(db), "--from-store", str(store_path), "--format", "json"]) == 0
    (query,) = json.loads(capsys.readouterr().out)["queries"]
    assert (query["status"], query["values"]) == ("recommended", "sampled")
    assert query["query"]["calls"] == 12


def test_no_hints_leaves_the_query_hints_out(
    db: Path, sql: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["db", "advise", str(db), "--sql", str(sql), "--format", "json", "--no-hints"]
    assert main(argv) == 0
    kinds = [f["kind"] for f in json.loads(capsys.readouterr().out)["findings"]]
    assert kinds == ["missing_index", "no_index_helps"]


def test_hints_use_the_column_types_and_merge_per_statement(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = tmp_path / "hints.sql"
    queries.write_text(
        # title is TEXT in the database: compared with a number, exact only with the schema
        "SELECT id FROM posts WHERE title = 5;\n"
        "SELECT id FROM posts WHERE lower(title) = 'a' AND abs(user_id) = 3;\n"
        "SELECT id FROM posts WHERE lower(title) = 'b' AND abs(user_id) = 4;\n"
    )
    argv = ["db", "advise", str(db), "--sql", str(queries), "--format", "json"]
    assert main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    hints = [
        f for f in document["findings"] if f["kind"] in ("implicit_cast", "function_on_column")
    ]
    assert [f["kind"] for f in hints] == ["function_on_column", "implicit_cast"]
    functions, cast = hints
    # two statements of one fingerprint, two functions each: one finding, both indexes
    assert functions["evidence"]["calls"] == 2
    assert functions["title"].endswith("(and 1 more)")
    assert len(functions["evidence"]["also"]) == 1
    assert "lower" in functions["fix"]["code"] and "abs" in functions["fix"]["code"]
    assert (cast["evidence"]["column_type"], cast["severity"]) == ("text", "medium")
    assert cast["evidence"]["location"].endswith("hints.sql:1")


def test_html_output_is_a_report_page_of_the_findings(
    db: Path, sql: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out" / "advice.html"
    target.parent.mkdir()
    assert main(["db", "advise", str(db), "--sql", str(sql), "-o", str(target)]) == 0
    assert capsys.readouterr().out == f"report written to {target}\n"
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert f"<title>Index advice: {db}</title>" in page
    body = page.split('<script type="application/json"', 1)[0]
    assert "Missing index posts(user_id)" in body
    assert "CREATE INDEX idx_posts_user_id ON posts (user_id);" in body
    assert "No requests in this window: nothing to assess." in body
    assert 'class="chart"' not in body and 'class="charts"' not in body
    assert "Index advice on 2 statement(s) from sql (ms): 1 recommended" in body
    assert not list(target.parent.glob(".*.tmp"))
    assert indexes(db) == []

    assert main(["db", "health", str(db), "--format", "html"]) == 0  # to standard output
    page = capsys.readouterr().out
    assert page.startswith("<!DOCTYPE html>") and "Database health" in page


def test_out_writes_every_format_to_a_file(
    db: Path, sql: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, fmt in (("a.json", None), ("a.md", None), ("a.txt", "terminal")):
        target = tmp_path / name
        argv = ["db", "advise", str(db), "--sql", str(sql), "-o", str(target)]
        assert main(argv + (["--format", fmt] if fmt else [])) == 0
    assert json.loads((tmp_path / "a.json").read_text())["findings"][0]["kind"] == "missing_index"
    assert (tmp_path / "a.md").read_text().startswith("# Index advice")
    text = (tmp_path / "a.txt").read_text()
    assert "Missing index posts(user_id)" in text and "\x1b[" not in text
    assert capsys.readouterr().out.count("report written to") == 3
    assert main(["db", "health", str(db), "-o", str(tmp_path / "a.json" / "x.json")]) == 2
    assert "cannot write" in capsys.readouterr().err
    missing = tmp_path / "nodir"
    for action in (["advise", str(db), "--sql", str(sql)], ["health", str(db)]):
        assert main(["db", *action, "-o", str(missing / "a.json")]) == 2, action
        err = capsys.readouterr().err
        assert err == (
            f"perfpilot: error: cannot write {missing}/a.json: the directory {missing} does not exist\n"
        )
        assert main(["db", *action, "-o", str(tmp_path / "r.xyz")]) == 2, action
        err = capsys.readouterr().err
        assert err == "perfpilot: error: cannot tell the format from .xyz; use --format\n"
    assert not missing.exists() and not (tmp_path / "r.xyz").exists()


@pytest.mark.integration
def test_postgres_outputs_never_show_the_password(
    postgres: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = blog.create_postgres(postgres, "perfpilot_cli_db")
    queries = tmp_path / "q.sql"
    queries.write_text("SELECT id FROM posts WHERE phone = 5551234;\n")
    for action in (["advise", secret, "--sql", str(queries)], ["health", secret]):
        for fmt in ("json", "markdown", "html", "terminal"):
            assert main(["db", *action, "--format", fmt]) == 0, (action, fmt)
            out, err = capsys.readouterr()
            assert blog.SECRET not in out + err, (action, fmt)
            assert "perfpilot_cli_db" in out.replace("\\_", "_"), (action, fmt)
    target = tmp_path / "advice.html"
    assert main(["db", "advise", secret, "--sql", str(queries), "-o", str(target)]) == 0
    assert blog.SECRET not in target.read_text() + capsys.readouterr().out
    # the catalog's column types reach the hints: the cast is exact on PostgreSQL too
    assert main(["db", "advise", secret, "--sql", str(queries), "--format", "json"]) == 0
    (cast,) = [
        f for f in json.loads(capsys.readouterr().out)["findings"] if f["kind"] == "implicit_cast"
    ]
    assert (cast["evidence"]["column_type"], cast["severity"]) == (
        "character varying(20)",
        "medium",
    )
