"""``perfpilot load`` end to end: exit codes, result files, the store, bad input."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from perfpilot.cli.main import main
from perfpilot.records import LoadResult
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.integration


def run_cli(*argv: str) -> int:
    return main(list(argv))


def stored_runs(store: Path) -> int:
    if not store.exists():
        return 0
    with sqlite3.connect(store) as db:
        return int(db.execute("SELECT count(*) FROM runs").fetchone()[0])


def test_url_run_writes_result_and_store(
    server: LoopbackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.json"
    store = tmp_path / "pp.db"
    code = run_cli(
        "load", f"{server.url}/", "-c", "4", "-d", "1s", "--processes", "1",
        "--out", str(out), "--store", str(store), "--no-live",
        "--threshold", "http_req_duration: p(95)<5000", "--threshold", "http_req_failed: rate<0.01",
    )  # fmt: skip
    assert code == 0
    document = json.loads(out.read_text())
    assert document["format"] == "perfpilot.load-result"
    assert document["version"] == 1
    result = LoadResult.from_dict(document)
    assert result.totals().requests == server.counts["/"] > 0
    assert [t.passed for t in result.thresholds] == [True, True]
    assert stored_runs(store) == 1
    printed = capsys.readouterr().out
    assert "p95" in printed and "thresholds" in printed
    # the stored run reads back the same
    assert run_cli("runs", "show", "1", "--store", str(store)) == 0


def test_failed_threshold_exits_1_and_still_stores(server: LoopbackServer, tmp_path: Path) -> None:
    store = tmp_path / "pp.db"
    code = run_cli(
        "load", f"{server.url}/delay?ms=20", "-c", "2", "-d", "1s", "--processes", "1",
        "--store", str(store), "--no-live", "--threshold", "http_req_duration: p(95)<5",
    )  # fmt: skip
    assert code == 1
    assert stored_runs(store) == 1


def test_error_rate_threshold(server: LoopbackServer, tmp_path: Path) -> None:
    code = run_cli(
        "load", f"{server.url}/status?code=500", "-d", "0.5s", "--processes", "1", "--no-store",
        "-q", "--threshold", "error_rate<1%",
    )  # fmt: skip
    assert code == 1


def test_abort_on_fail_stops_the_run_early(server: LoopbackServer, tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        f"""
base_url = "{server.url}"
[executor]
type = "constant-vus"
vus = 2
duration = "20s"
[[requests]]
path = "/status?code=500"
[thresholds]
http_req_failed = [{{ threshold = "rate<0.5", abortOnFail = true }}]
"""
    )
    out = tmp_path / "r.json"
    code = run_cli(
        "load", "-f", str(scenario), "--processes", "1", "--no-store", "-q", "--out", str(out)
    )
    assert code == 1
    result = LoadResult.from_dict(json.loads(out.read_text()))
    assert result.duration_s < 10
    assert result.aborted is not None and "abort" in result.aborted
    assert result.thresholds[0].aborted


def test_open_model_from_the_command_line(server: LoopbackServer, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code = run_cli(
        "load", f"{server.url}/", "--rate", "100", "-d", "2s", "--processes", "1", "--no-store",
        "-q", "--out", str(out),
    )  # fmt: skip
    assert code == 0
    result = LoadResult.from_dict(json.loads(out.read_text()))
    assert result.config["executor"]["kind"] == "constant-arrival-rate"
    assert 196 <= result.totals().requests <= 201


def test_segments_merge_to_the_whole(server: LoopbackServer, tmp_path: Path) -> None:
    files = []
    for i in (1, 2):
        out = tmp_path / f"part{i}.json"
        code = run_cli(
            "load", f"{server.url}/", "--rate", "100", "-d", "2s", "--segment", f"{i}/2",
            "--processes", "1", "--no-store", "-q", "--out", str(out),
            "--threshold", "http_reqs: count>150",
        )  # fmt: skip
        assert code == 1  # each shard alone sends only half
        files.append(str(out))
    merged = tmp_path / "merged.json"
    store = tmp_path / "pp.db"
    assert run_cli("merge", *files, "-o", str(merged), "--store", str(store), "-q") == 0
    result = LoadResult.from_dict(json.loads(merged.read_text()))
    assert result.totals().requests == server.counts["/"]
    assert 196 <= result.totals().requests <= 202
    assert result.thresholds[0].passed
    assert stored_runs(store) == 1


def test_scenario_file_with_weights_and_tags(server: LoopbackServer, tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(
        f"""
name = "mixed"
base_url = "{server.url}"
[executor]
type = "constant-vus"
vus = 3
duration = "1s"
[[requests]]
name = "home"
path = "/"
weight = 3
tags = {{ page = "home" }}
[[requests]]
name = "json"
path = "/json"
weight = 1
checks = [{{ status = 200 }}, {{ json = "status", equals = "ok" }}]
[thresholds]
"http_req_duration{{name:home}}" = ["p(99)<5000"]
"http_req_duration{{page:home}}" = ["max<5000"]
checks = ["rate>0.99"]
"""
    )
    out = tmp_path / "r.json"
    code = run_cli(
        "load", "-f", str(scenario), "--processes", "1", "--no-store", "-q", "--out", str(out)
    )
    assert code == 0
    result = LoadResult.from_dict(json.loads(out.read_text()))
    assert result.names["home"].totals().requests == server.counts["/"]
    assert result.names["json"].totals().requests == server.counts["/json"]
    assert result.names["home"].tags == {"page": "home"}
    assert all(t.passed for t in result.thresholds)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["load", "not a url"], "invalid URL"),
        (["load", "ftp://127.0.0.1/"], "invalid URL"),
        (["load", "http://127.0.0.1:99999/"], "invalid URL"),
        (["load", "http://127.0.0.1:{port}/", "-d", "1s"], "cannot connect"),
        (["load", "http://127.0.0.1:{port}/", "--threshold", "p(95)<<500"], "threshold"),
        (
            ["load", "http://127.0.0.1:{port}/", "--threshold", "http_req_durations: p(95)<500"],
            "did you mean",
        ),
        (["load", "http://127.0.0.1:{port}/", "-d", "soon"], "duration"),
        (["load", "http://127.0.0.1:{port}/", "-H", "no colon"], "header"),
        (["load", "http://127.0.0.1:{port}/", "--segment", "3/2"], "segment"),
        (["load"], "URL or -f"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    store = tmp_path / "pp.db"
    args = [a.replace("{port}", str(port)) for a in argv] + ["--store", str(store)]
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err
    assert stored_runs(store) == 0


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_malformed_toml_points_at_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "bad.toml", 'base_url = "http://127.0.0.1:1"\n[executor\ntype = "x"\n')
    assert run_cli("load", "-f", path, "--no-store") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"perfpilot: error: {path}:2:")
    assert len(err.splitlines()) == 1


def test_unknown_executor_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        "s.toml",
        'base_url = "http://127.0.0.1:1"\n[executor]\ntype = "constant-vu"\n'
        '[[requests]]\npath = "/"\n',
    )
    assert run_cli("load", "-f", path, "--no-store") == 2
    err = capsys.readouterr().err
    assert f"{path}:3" in err and "constant-vus" in err
    path = write(
        tmp_path,
        "t.toml",
        'base_url = "http://127.0.0.1:1"\n[executor]\ntype = "constant-vus"\nvsu = 3\n'
        '[[requests]]\npath = "/"\n',
    )
    assert run_cli("load", "-f", path, "--no-store") == 2
    err = capsys.readouterr().err
    assert f"{path}:4" in err and "vsu" in err


def test_flow_that_fails_to_import(
    server: LoopbackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        tmp_path,
        "flows.py",
        "import nonexistent_module_xyz\n\nasync def flow(session):\n    pass\n",
    )
    path = write(
        tmp_path,
        "s.toml",
        f'base_url = "{server.url}"\n[executor]\ntype = "constant-vus"\nduration = "1s"\n'
        '[flow]\nfile = "flows.py"\n',
    )
    store = tmp_path / "pp.db"
    assert run_cli("load", "-f", path, "--store", str(store)) == 2
    err = capsys.readouterr().err
    assert "flows.py" in err and "nonexistent_module_xyz" in err
    assert "Traceback" not in err
    assert stored_runs(store) == 0
    assert server.total() == 0


def test_an_api_key_in_the_url_is_sent_but_never_stored_or_shown(
    server: LoopbackServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[bytes] = []
    answer = server.handle

    async def spy(proto: Any, request: Any) -> None:
        seen.append(request.url)
        await answer(proto, request)

    monkeypatch.setattr(server, "handle", spy)
    store, out = tmp_path / "load.db", tmp_path / "r.json"
    code = run_cli(
        "load", f"{server.url}/api?api_key=LOADKEYSECRET&page=2", "-c", "2", "-d", "1s",
        "--processes", "1", "--no-live", "--store", str(store), "--out", str(out),
    )  # fmt: skip
    assert code == 0
    assert seen and set(seen) == {b"/api?api_key=LOADKEYSECRET&page=2"}  # the real URL
    assert "LOADKEYSECRET" not in capsys.readouterr().out + out.read_text()
    with sqlite3.connect(store) as db:
        dumped = "\n".join(db.iterdump())
    assert "LOADKEYSECRET" not in dumped and "api_key=***&page=2" in dumped
    for argv in (["runs", "show", "1"], ["runs", "list"], ["report", "--run", "1"]):
        assert run_cli(*argv, "--store", str(store)) == 0, argv
        printed = capsys.readouterr().out
        assert "LOADKEYSECRET" not in printed, argv


def test_out_into_a_missing_directory_is_refused_before_the_run(
    server: LoopbackServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nodir"
    code = run_cli(
        "load", f"{server.url}/", "-d", "1s", "--processes", "1", "--no-live", "--no-store",
        "--out", str(missing / "r.json"),
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"perfpilot: error: cannot write {missing}/r.json: the directory {missing} does not exist\n"
    )
    assert not missing.exists()
    assert server.total() == 0  # refused before any load
