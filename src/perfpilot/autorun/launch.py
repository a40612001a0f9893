"""``perfpilot run -- COMMAND``: the environment the command runs in, then ``exec``.

As ``opentelemetry-instrument`` and ``ddtrace-run`` do, perfpilot does not
stay between the shell and the command: it puts its ``bootstrap`` directory
(a ``sitecustomize.py``) first on ``PYTHONPATH``, keeping what was there,
exports the resolved settings as ``PERFPILOT_*`` variables, and replaces
itself with the command (``os.execve``). The command keeps perfpilot's pid,
so ``SIGTERM`` and ``SIGINT`` reach it directly and its exit status (or the
signal that ended it) is what the caller sees.

Example:
    >>> launch = prepare(["python3", "-c", "pass"], environ={"PATH": "/usr/bin:/bin"})
    ... # doctest: +SKIP
    >>> exec_launch(launch)  # does not return  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from perfpilot.autorun.runtime import ENV_ACTIVE, ENV_ID, ENV_TOP
from perfpilot.config import Settings, load_settings
from perfpilot.errors import UsageError

BOOTSTRAP_DIR = str(Path(__file__).resolve().parent / "bootstrap")
"""The directory holding perfpilot's ``sitecustomize.py``."""

_PYTHON_NAME = re.compile(r"^(python|pypy)[0-9.]*[mdt]?(\.exe)?$")
_EXPORTED = ("store", "service", "flush_interval_s", "slow_request_ms", "trace_sample_rate",
             "server_timing", "prices", "profile_interval_ms")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Launch:
    """What to ``exec``, prepared by :func:`prepare`.

    Attributes:
        executable: Absolute path of the program.
        argv: Its arguments, the program's name first (as typed).
        env: Its whole environment.
        python: Whether the program is a Python interpreter or a Python script.
        note: One line to print before starting it (``None`` for none).
    """

    executable: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    python: bool
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "executable": self.executable,
            "argv": list(self.argv),
            "env": dict(self.env),
            "python": self.python,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Launch:
        """The inverse of :meth:`to_dict`."""
        return cls(
            executable=str(data["executable"]),
            argv=tuple(str(a) for a in data["argv"]),
            env={str(k): str(v) for k, v in dict(data["env"]).items()},
            python=bool(data["python"]),
            note=None if data.get("note") is None else str(data["note"]),
        )


def prepare(
    command: Sequence[str],
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    pid: int | None = None,
) -> Launch:
    """Resolve the command and build its environment.

    Args:
        command: The command and its arguments (``["gunicorn", "app:app"]``).
        overrides: Settings from the command line (``store``, ``service``,
            ``trace_sample_rate``...); ``None`` values are ignored.
        environ: The environment to start from (``os.environ`` when None).
        cwd: Where relative paths and ``perfpilot.toml`` are looked up.
        pid: The pid the command will have (this process's, as ``exec``
            keeps it; tests pass another).

    Returns:
        The :class:`Launch` to hand to :func:`exec_launch`.

    Raises:
        UsageError: No command, or it cannot be found or run.
        ConfigError: A setting is invalid.
    """
    if not command:
        raise UsageError("no command to run: perfpilot run [OPTIONS] -- COMMAND [ARGS...]")
    env = dict(os.environ if environ is None else environ)
    where = Path.cwd() if cwd is None else Path(cwd)
    settings = load_settings(overrides, environ=env, cwd=where)
    executable = resolve(command[0], env.get("PATH"), where)
    python = is_python(executable)
    env.update(environment(settings, env, where, os.getpid() if pid is None else pid))
    note = None
    if not python:
        note = (
            f"perfpilot: {command[0]} is not a Python program: it runs as is "
            "(Python processes it starts are instrumented)"
        )
    return Launch(executable, tuple(command), env, python, note)


def environment(
    settings: Settings, environ: Mapping[str, str], cwd: Path, pid: int
) -> dict[str, str]:
    """The variables ``perfpilot run`` sets: activation, PYTHONPATH, settings.

    File paths (store, price table) are made absolute, so a server that
    changes directory (``gunicorn --chdir``) still writes to the same store.
    """
    path = environ.get("PYTHONPATH", "")
    entries = [p for p in path.split(os.pathsep) if p and p != BOOTSTRAP_DIR]
    variables = {
        ENV_ACTIVE: "1",
        ENV_TOP: str(pid),
        ENV_ID: secrets.token_hex(8),
        "PYTHONPATH": os.pathsep.join([BOOTSTRAP_DIR, *entries]),
    }
    for name in _EXPORTED:
        value = getattr(settings, name)
        if value is None:
            continue
        if name == "store":
            value = absolute_store(str(value), cwd)
        elif name == "prices":
            value = str(cwd / Path(str(value)).expanduser())
        elif isinstance(value, bool):
            value = "1" if value else "0"
        variables[f"PERFPILOT_{name.upper()}"] = str(value)
    return variables


def absolute_store(location: str, cwd: Path) -> str:
    """A store path made absolute against ``cwd``; URLs and ``:memory:`` unchanged."""
    if "://" in location or location.strip() == ":memory:":
        return location
    return str(cwd / Path(location).expanduser())


def resolve(program: str, path: str | None, cwd: Path) -> str:
    """The absolute path of ``program`` (searched on ``path`` when it has no slash).

    Raises:
        UsageError: It does not exist or is not executable.
    """
    if os.sep in program or (os.altsep and os.altsep in program):
        candidate = cwd / program
        if not candidate.is_file():
            raise UsageError(f"command not found: {program}")
        if not os.access(candidate, os.X_OK):
            raise UsageError(f"not executable: {program}")
        return str(candidate)
    found = shutil.which(program, path=path if path is not None else os.defpath)
    if found is None:
        raise UsageError(f"command not found: {program}")
    return str(Path(found).absolute())


def is_python(executable: str) -> bool:
    """Whether ``executable`` is a Python interpreter or a script run by one.

    An interpreter by its name (``python3.11``, after following symlinks too);
    a script (``gunicorn``, ``uvicorn``, ``manage.py``) by a ``#!`` line naming
    Python.
    """
    names = {os.path.basename(executable), os.path.basename(os.path.realpath(executable))}
    if any(_PYTHON_NAME.match(name) for name in names):
        return True
    try:
        with open(executable, "rb") as file:
            head = file.read(256)
    except OSError:
        return False
    if not head.startswith(b"#!"):
        return False
    line = head[2:].split(b"\n", 1)[0].strip().split()
    # "#!/usr/bin/python3 -u", "#!/usr/bin/env python3", "#!/usr/bin/env -S python3 -X dev"
    words = [os.path.basename(w.decode("utf-8", "replace")) for w in line if not w.startswith(b"-")]
    return any(_PYTHON_NAME.match(word) for word in words)


def exec_launch(launch: Launch) -> NoReturn:
    """Print the launch's note, then replace this process with the command.

    Raises:
        UsageError: The program cannot be started (the ``exec`` failed).
    """
    if launch.note:
        print(launch.note, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(launch.executable, list(launch.argv), dict(launch.env))
    except OSError as exc:
        raise UsageError(f"cannot run {launch.argv[0]}: {exc.strerror or exc}") from None
