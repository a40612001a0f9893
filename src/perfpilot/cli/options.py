"""Option helpers shared by the sub-commands: number arguments and document output.

- :func:`number_type` makes an argparse ``type=`` that reads a number and
  checks its range, with a one-line message naming what was expected.
- :func:`check_output_path` refuses, before any work, an output file whose
  directory does not exist (nothing is created for it); :func:`document_format`
  is ``--format``, else what the ``-o`` extension implies, and refuses an
  extension that implies none.
- :func:`write_document` puts a rendered document where ``-o FILE`` says
  (written atomically) or on standard output.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from rich.console import Console

from perfpilot.errors import UsageError

N = TypeVar("N", int, float)

__all__ = ["check_output_path", "document_format", "number_type", "write_document"]


def number_type(
    kind: Callable[[str], N],
    *,
    what: str,
    valid: Callable[[N], bool] = lambda value: True,
    bounds: str = "",
) -> Callable[[str], N]:
    """An argparse ``type=`` reading a number of ``kind`` for which ``valid`` holds.

    Args:
        kind: ``int`` or ``float``.
        what: What is expected, for messages (``a run id``, ``a number``).
        valid: The range check (NaN fails any comparison, so it is refused).
        bounds: The range in words, appended to ``what`` when the check fails
            (`` in (0, 1]``).

    Returns:
        The converter; it raises :class:`argparse.ArgumentTypeError`.

    Example:
        >>> fraction = number_type(float, what="a number", valid=lambda v: 0 < v <= 1,
        ...                        bounds=" in (0, 1]")
        >>> fraction("0.5")
        0.5
    """

    def convert(text: str) -> N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"expected {what}{bounds}, got {value}")
        return value

    return convert


def check_output_path(out: str | None) -> None:
    """Refuse an output file the command could not write, before it does any work.

    Args:
        out: The path the user gave (``-o``, ``--out``), or ``None``.

    Raises:
        UsageError: Its directory does not exist (or is not a directory), or
            the path is a directory.
    """
    if out is None:
        return
    target = Path(out)
    parent = target.parent
    if not parent.is_dir():
        state = "is not a directory" if parent.exists() else "does not exist"
        raise UsageError(f"cannot write {out}: the directory {parent} {state}")
    if target.is_dir():
        raise UsageError(f"cannot write {out}: it is a directory")


def document_format(fmt: str | None, out: str | None) -> str:
    """The format to render: ``fmt``, else the one ``out``'s extension implies.

    Args:
        fmt: ``--format``, or ``None``.
        out: ``-o FILE``, or ``None`` (standard output: ``terminal``).

    Raises:
        UsageError: ``out``'s extension implies no format and ``fmt`` is ``None``.

    Example:
        >>> document_format(None, "r.md"), document_format("json", "r.xyz")
        ('markdown', 'json')
    """
    from perfpilot.report.render import format_for_path

    if fmt:
        return fmt
    if out is None:
        return "terminal"
    found = format_for_path(out)
    if found is None:
        extension = os.path.splitext(out)[1]
        source = extension or f"{os.path.basename(out)!r} (no extension)"
        raise UsageError(f"cannot tell the format from {source}; use --format")
    return found


def write_document(document: str, out: str | None, console: Console) -> None:
    """Write ``document`` to the file ``out`` atomically, or to standard output.

    Args:
        document: The rendered text.
        out: The ``-o`` path, or ``None`` for standard output. Its directory
            must exist: none is created.
        console: Where to say that the file was written.

    Raises:
        UsageError: The file cannot be written.
    """
    from perfpilot.atomic import write_bytes_atomic

    if out is None:
        sys.stdout.write(document)
        return
    try:
        write_bytes_atomic(out, document.encode("utf-8"), make_parents=False)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    console.print(f"report written to {out}", markup=False, highlight=False, soft_wrap=True)
