"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes_atomic(
    path: str | os.PathLike[str], data: bytes, *, make_parents: bool = True
) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``.

    Args:
        path: The file to write.
        data: Its new content.
        make_parents: Create missing directories; when ``False`` a missing
            directory raises :class:`FileNotFoundError` (paths users give).
    """
    target = Path(path)
    if make_parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(
    path: str | os.PathLike[str], document: Any, *, make_parents: bool = True
) -> None:
    """Write ``document`` as indented JSON, atomically (``make_parents`` as above)."""
    text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"), make_parents=make_parents)
