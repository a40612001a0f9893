"""Option helpers shared by the sub-commands: number arguments and document output.

- :func:`number_type` makes an argparse ``type=`` that reads a number and
  checks its range, with a one-line message naming what was expected.
- :func:`write_document` puts a rendered document where ``-o FILE`` says
  (written atomically) or on standard output.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TypeVar

from rich.console import Console

from perfpilot.errors import UsageError

N = TypeVar("N", int, float)

__all__ = ["number_type", "write_document"]


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


def write_document(document: str, out: str | None, console: Console) -> None:
    """Write ``document`` to the file ``out`` atomically, or to standard output.

    Args:
        document: The rendered text.
        out: The ``-o`` path, or ``None`` for standard output.
        console: Where to say that the file was written.

    Raises:
        UsageError: The file cannot be written.
    """
    from perfpilot.atomic import write_bytes_atomic

    if out is None:
        sys.stdout.write(document)
        return
    try:
        write_bytes_atomic(out, document.encode("utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    console.print(f"report written to {out}", markup=False, highlight=False, soft_wrap=True)
