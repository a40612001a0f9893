"""Inside each process started by ``perfpilot run``: activation and per-process state.

:func:`activate` (called by the bootstrap ``sitecustomize``) puts a
post-import finder on ``sys.meta_path`` that hooks the database, HTTP-client
and cache libraries and the web frameworks as they are imported. It starts no
thread and writes nothing: a process is only ever touched when it imports one
of those.

When a framework creates an app (:func:`app_found`) the process gets its
:class:`~perfpilot.instrument.recorder.Recorder`, so the library hooks start
recording. The flusher thread starts when the app serves its first request
(:func:`serving`), never before: a pre-fork server (gunicorn) may create the
app in its master and fork the workers afterwards, and a thread does not
survive a fork. The last interval is written at exit: by the app's ASGI
lifespan shutdown, by ``atexit`` (gunicorn workers exit through
``sys.exit``), or by a ``SIGTERM`` handler that perfpilot installs only where
the process has none (Django's ``runserver --noreload``, Werkzeug, wsgiref),
which flushes and then dies of the signal as it would have.

The process that ``perfpilot run`` became (same pid, after ``exec``) says at
exit, in one line, when neither it nor any process it started had an app to
instrument; the others tell it over a Linux abstract datagram socket when
they find one (nothing to clean up when a process dies).
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from collections.abc import Mapping
from typing import Any

from perfpilot.autorun.importhook import PostImportFinder, warn_once

ENV_ACTIVE = "PERFPILOT_AUTORUN"
"""Set to ``1`` by ``perfpilot run``: the bootstrap activates only then."""
ENV_TOP = "PERFPILOT_AUTORUN_PID"
"""The pid of the command ``perfpilot run`` became: that process reports at exit."""
ENV_ID = "PERFPILOT_AUTORUN_ID"
"""A random name for this run's report channel."""

NOTHING_FOUND = (
    "perfpilot: no Flask, FastAPI/Starlette or Django app found in {what} "
    "or the processes it started; nothing was instrumented"
)


class _State:
    """What ``perfpilot run`` set up in this process (one per process, by nature:
    import hooks and class patches are process-wide)."""

    def __init__(self) -> None:
        self.active = False
        self.finder: PostImportFinder | None = None
        self.lock = threading.RLock()
        self.settings: Any = None
        self.recorder: Any = None
        self.flusher: Any = None
        self.apps: list[str] = []
        self.top = False
        self.channel: Any = None
        self.channel_name = ""
        self.told_top = False


state = _State()


def activate(environ: Mapping[str, str] | None = None) -> bool:
    """Install the import hooks in this process when ``PERFPILOT_AUTORUN=1``.

    Args:
        environ: The environment (``os.environ`` when None).

    Returns:
        Whether this call activated perfpilot (``False`` when the variable is
        not set or it is already active).
    """
    env = os.environ if environ is None else environ
    if env.get(ENV_ACTIVE) != "1" or state.active:
        return False
    state.active = True
    from perfpilot.autorun.hooks import HOOKS

    finder = PostImportFinder()
    state.finder = finder
    finder.install()
    for name, hook in HOOKS:
        finder.watch(name, hook)
    os.register_at_fork(after_in_child=_after_fork)
    state.channel_name = env.get(ENV_ID, "")
    state.top = env.get(ENV_TOP) == str(os.getpid())
    if state.top:
        _open_channel()
    atexit.register(report_at_exit)
    return True


def settings() -> Any:
    """The settings of this process (``PERFPILOT_*`` set by ``perfpilot run``), read once."""
    with state.lock:
        if state.settings is None:
            from perfpilot.config import Settings, load_settings
            from perfpilot.errors import ConfigError

            try:
                state.settings = load_settings()
            except ConfigError as exc:
                # perfpilot run checked the files in its own directory; keep
                # at least what it exported (store, service...)
                warn_once("autorun-settings", "perfpilot: bad settings (%s); ignoring files", exc)
                try:
                    state.settings = load_settings(cwd=os.devnull)
                except ConfigError:
                    state.settings = Settings()
        return state.settings


def app_found(kind: str) -> None:
    """A framework created an app: give the process a recorder; never raises.

    Args:
        kind: What was found, e.g. ``"Flask"`` (for messages and tests).
    """
    try:
        with state.lock:
            state.apps.append(kind)
            if state.recorder is None:
                _make_recorder()
        _tell_top()
        _install_sigterm()
    except Exception as exc:
        warn_once("autorun-app", "perfpilot: %s app not instrumented: %r", kind, exc)


def serving() -> Any:
    """The recorder for a middleware about to serve its first request, or ``None``.

    ``None`` when the app was instrumented explicitly (``perfpilot.instrument``
    made the active recorder): the explicit middleware then does the timing.
    Starts the flusher (once per process, in the process that serves).
    """
    from perfpilot.instrument.context import active

    with state.lock:
        recorder = state.recorder if state.recorder is not None else _make_recorder()
        if active.recorder is not recorder or recorder is None:
            return None
        if state.flusher is None:
            from perfpilot.instrument import start_flusher

            conf = settings()
            state.flusher = start_flusher(
                recorder,
                conf.store,
                conf.flush_interval_s,
                profile_interval_ms=conf.profile_interval_ms,
            )
        return recorder


def stop() -> None:
    """Write what is left (the flusher stops; it never restarts); never raises.

    Called at ASGI lifespan shutdown, at exit, on ``SIGTERM`` where perfpilot
    handles it, and after uvicorn's shutdown.
    """
    try:
        with state.lock:
            flusher = state.flusher
            if flusher is None:
                if state.recorder is None:
                    return
                from perfpilot.instrument.fingerprint import fingerprint
                from perfpilot.instrument.flusher import Flusher
                from perfpilot.instrument.sink import StoreSink

                # never served: one flush from here of what the hooks saw
                conf = settings()
                flusher = state.flusher = Flusher(
                    state.recorder, StoreSink(conf.store), fingerprint, interval_s=3600.0
                )
        flusher.stop()
    except Exception as exc:
        warn_once("autorun-stop", "perfpilot: last flush failed: %r", exc)


def _make_recorder() -> Any:
    from perfpilot.instrument.context import active
    from perfpilot.instrument.recorder import Recorder

    conf = settings()
    recorder = state.recorder = Recorder(
        conf.service,
        slow_s=conf.slow_request_ms / 1000,
        sample_rate=conf.trace_sample_rate,
    )
    if active.recorder is None:
        active.recorder = recorder
    atexit.register(stop)
    return recorder


def _after_fork() -> None:
    # A child of a process whose flusher runs gets it restarted by the flusher
    # itself; without a flusher, forget what the parent recorded (the parent
    # writes its own at exit).
    state.lock = threading.RLock()
    if state.flusher is None and state.recorder is not None:
        state.recorder.reset_after_fork()
    state.top = False  # the top is the parent, which reports at its own exit
    if state.channel is not None:
        state.channel.close()  # this copy only: the parent keeps its own
        state.channel = None
    state.told_top = bool(state.apps)  # the parent already told the top


# -- SIGTERM where nobody handles it ------------------------------------------


def _install_sigterm() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return  # the server handles it (gunicorn, uvicorn): it exits through atexit/lifespan
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: Any) -> None:
    try:
        stop()
    finally:
        # then die of the signal, as the process would have without perfpilot
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


# -- the report channel: who found an app -------------------------------------


def _address() -> str | None:
    if not state.channel_name or not sys.platform.startswith("linux"):
        return None
    return f"\0perfpilot-run-{state.channel_name}"


def _open_channel() -> None:
    address = _address()
    if address is None:
        return
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        return
    state.channel = sock


def _tell_top() -> None:
    if state.top or state.told_top:
        return
    state.told_top = True
    address = _address()
    if address is None:
        return
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"app", address)
    except OSError:  # the top is not Python, or gone: nobody to tell
        return


def _descendant_found() -> bool:
    sock = state.channel
    if sock is None:
        return False
    try:
        sock.recv(16)
    except OSError:
        return False
    return True


def describe_process() -> str:
    """How this process was started, for messages: ``gunicorn``, ``python -m uvicorn``..."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:
        name = spec.name.removesuffix(".__main__")
        return f"python -m {name}"
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if argv0 in ("", "-c"):
        return "python -c"
    return os.path.basename(argv0)


def _instrumented_in_code() -> bool:
    # perfpilot.instrument(app) in the app's own code (never imported from here)
    context = sys.modules.get("perfpilot.instrument.context")
    return context is not None and getattr(context.active, "recorder", None) is not None


def report_at_exit() -> None:
    """At exit: the top process says so in one line when no process had an app.

    Another process tells the top, if it has not yet, when it was
    instrumented by ``perfpilot.instrument`` in the app's code (servers reap
    their workers before they exit themselves). Without the channel (not
    Linux) the top cannot know what its children found, and says nothing.
    """
    try:
        if not state.top:
            if _instrumented_in_code():
                _tell_top()
            return
        if state.channel is None or state.apps or _instrumented_in_code():
            return
        if not _descendant_found():
            print(NOTHING_FOUND.format(what=describe_process()), file=sys.stderr, flush=True)
    except Exception:  # at exit, with stderr gone: nothing to do
        return
    finally:
        if state.channel is not None:
            state.channel.close()
            state.channel = None
