"""Tests of ``perfpilot runs list|show``."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from perfpilot.cli import main as cli_main
from perfpilot.errors import EXIT_OK, EXIT_USAGE
from perfpilot.records import LoadResult, NameStats, SecondStats, ThresholdResult
from perfpilot.stats.histogram import Histogram
from perfpilot.store import open_store


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Only this command's parser, a wide console, no settings from the outside.
    monkeypatch.setattr(cli_main, "SUBCOMMANDS", ("runs",))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("PERFPILOT_STORE", raising=False)
    monkeypatch.chdir(tmp_path)


def _result(name: str, started_at: float, *, thresholds: list[ThresholdResult]) -> LoadResult:
    result = LoadResult(
        name=name,
        started_at=started_at,
        ended_at=started_at + 2.0,
        config={"url": "http://127.0.0.1:8000/", "vus": 4},
    )
    for request, scale in (("login", 0.010), ("search", 0.200)):
        stats = NameStats(name=request)
        for second in range(2):
            latency = Histogram()
            latency.record_many(np.full(50, scale))
            stats.seconds[second] = SecondStats(
                latency=latency,
                service=latency.copy(),
                requests=50,
                errors={"status_5xx": 5} if request == "search" else {},
            )
        result.names[request] = stats
    result.thresholds = thresholds
    return result


def _fill(path: Path) -> list[int]:
    with open_store(str(path)) as store:
        return [
            store.save_run(_result("first-run", 1_700_000_000.0, thresholds=[])),
            store.save_run(
                _result(
                    "second-run",
                    1_700_000_100.0,
                    thresholds=[ThresholdResult("http_req_duration", "p(95)<100", False, 200.0)],
                )
            ),
            store.save_run(
                _result(
                    "third-run",
                    1_700_000_200.0,
                    thresholds=[ThresholdResult("http_req_failed", "rate<0.1", True, 0.05)],
                )
            ),
        ]


def test_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "perf.db"
    ids = _fill(path)
    assert cli_main.main(["runs", "list", "--store", str(path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.index("third-run") < out.index("second-run") < out.index("first-run")
    rows = [line.split() for line in out.splitlines() if "-run" in line]
    assert [row[0] for row in rows] == [str(i) for i in reversed(ids)]
    third = rows[0]
    assert third[4:] == ["2.0s", "200", "5.00", "200.0", "✓"]  # 10 errors in 200, p95 of search
    assert rows[1][-1] == "✗"
    assert rows[2][-1] == "-"


def test_list_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "perf.db"
    _fill(path)
    assert cli_main.main(["runs", "list", "--limit", "1", "--store", str(path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "third-run" in out
    assert "second-run" not in out


def test_list_empty_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "perf.db"
    open_store(str(path)).close()
    assert cli_main.main(["runs", "list", "--store", str(path)]) == EXIT_OK
    assert "No runs saved yet" in capsys.readouterr().out


def test_default_store_and_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(tmp_path / ".perfpilot" / "perfpilot.db")
    assert cli_main.main(["runs", "list"]) == EXIT_OK
    assert "third-run" in capsys.readouterr().out

    other = tmp_path / "elsewhere.db"
    with open_store(str(other)) as store:
        store.save_run(_result("from-env", 1.0, thresholds=[]))
    monkeypatch.setenv("PERFPILOT_STORE", str(other))
    assert cli_main.main(["runs", "list"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "from-env" in out
    assert "third-run" not in out


def test_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "perf.db"
    ids = _fill(path)
    assert cli_main.main(["runs", "show", str(ids[1]), "--store", str(path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "second-run" in out
    assert "http://127.0.0.1:8000/" in out  # the config summary
    assert "login" in out and "search" in out
    assert "p(95)<100" in out  # the threshold results
    assert "200" in out


def test_missing_store_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "nope" / "perf.db"
    for argv in (["runs", "list"], ["runs", "show", "1"]):
        assert cli_main.main([*argv, "--store", str(path)]) == EXIT_USAGE
        err = capsys.readouterr().err
        assert err == f"perfpilot: error: no store at {path}\n"
    assert not path.parent.exists()


def test_missing_run_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "perf.db"
    _fill(path)
    assert cli_main.main(["runs", "show", "99", "--store", str(path)]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.err == "perfpilot: error: no run with id 99\n"
    assert captured.out == ""


def test_unreachable_postgres_store(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = ["runs", "list", "--store", f"postgresql://u:s3cret@127.0.0.1:{port}/perf"]
    assert cli_main.main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(
        f"perfpilot: error: cannot connect to postgresql://u@127.0.0.1:{port}/perf:"
    )
    assert "s3cret" not in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["runs"],
        ["runs", "show"],
        ["runs", "show", "abc"],
        ["runs", "list", "--limit", "0"],
        ["runs", "list", "--limit", "x"],
        ["runs", "frobnicate"],
    ],
)
def test_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main.main(argv)
    assert info.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("perfpilot: error:")
    assert err.count("\n") == 1
