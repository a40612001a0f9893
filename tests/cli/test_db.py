"""``perfpilot db advise|health`` on SQLite: formats, errors, --apply."""

from __future__ import annotations

import builtins
import json
import sqlite3
from pathlib import Path

import pytest

from perfpilot.analyze.findings import Finding, Fix, Impact
from perfpilot.cli.main import main


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
    assert kinds == ["missing_index", "no_index_helps"]
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
