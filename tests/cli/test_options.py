"""Option helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from perfpilot.cli.options import check_output_path, document_format, number_type, write_document
from perfpilot.errors import UsageError


def test_number_type_reads_checks_and_says_what_it_expected() -> None:
    fraction = number_type(float, what="a number", valid=lambda v: 0 < v <= 1, bounds=" in (0, 1]")
    assert fraction("0.25") == 0.25
    for text, message in (
        ("x", "expected a number, got 'x'"),
        ("2", "expected a number in (0, 1], got 2.0"),
        ("nan", "expected a number in (0, 1], got nan"),  # NaN fails every comparison
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(message)):
            fraction(text)
    run_id = number_type(int, what="a run id", valid=lambda v: v >= 1)
    assert run_id("7") == 7
    with pytest.raises(argparse.ArgumentTypeError, match="expected a run id, got 0"):
        run_id("0")
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape("expected a run id, got '1.5'")):
        run_id("1.5")


def test_write_document_to_a_file_or_standard_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    said = io.StringIO()
    console = Console(file=said, width=20)
    target = tmp_path / "deep" / "a-rather-long-file-name.html"
    target.parent.mkdir()
    write_document("<p>é</p>", str(target), console)
    assert target.read_text(encoding="utf-8") == "<p>é</p>"
    assert said.getvalue() == f"report written to {target}\n"  # one line, however narrow
    write_document("{}", None, console)
    assert capsys.readouterr().out == "{}"
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="cannot write"):
        write_document("x", str(tmp_path / "file" / "a.json"), console)


def test_output_paths_need_an_existing_directory_and_nothing_is_created(tmp_path: Path) -> None:
    check_output_path(None)
    check_output_path(str(tmp_path / "r.html"))
    check_output_path("r.html")  # the current directory
    missing = tmp_path / "a" / "b"
    with pytest.raises(UsageError, match=re.escape(f"the directory {missing} does not exist")):
        check_output_path(str(missing / "r.html"))
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="is not a directory"):
        check_output_path(str(tmp_path / "file" / "r.html"))
    with pytest.raises(UsageError, match="it is a directory"):
        check_output_path(str(tmp_path))
    with pytest.raises(UsageError, match="cannot write"):
        write_document("x", str(missing / "r.html"), Console(file=io.StringIO()))
    assert not (tmp_path / "a").exists()


def test_document_format_from_the_option_or_the_extension() -> None:
    assert document_format(None, None) == "terminal"
    assert document_format("json", None) == "json"
    assert document_format(None, "r.HTML") == "html"
    assert document_format(None, "r.txt") == "terminal"
    assert document_format("markdown", "r.xyz") == "markdown"
    with pytest.raises(
        UsageError, match=re.escape("cannot tell the format from .xyz; use --format")
    ):
        document_format(None, "r.xyz")
    with pytest.raises(UsageError, match=re.escape("from 'notes' (no extension)")):
        document_format(None, "dir.d/notes")
