"""Serve the demo app or the LLM stub with uvicorn: the entry point of the server processes.

:class:`perfpilot.demo.server.DemoServers` runs this module in child processes;
it can also be run by hand::

    python -m perfpilot.demo.serve --app llm --port 8081
    python -m perfpilot.demo.serve --app demo --port 8080 \\
        --db .perfpilot/demo/demo.sqlite3 --llm-url http://127.0.0.1:8081

To monitor the app, start it through ``perfpilot run`` (as the demo does)::

    perfpilot run --service demo -- python -m perfpilot.demo.serve --app demo ...

It binds 127.0.0.1 only, logs warnings and errors only, and writes no access log.
With ``--fd`` it serves a listening socket inherited from the parent, so the
parent chooses the port without a race; with ``--parent-pid`` it shuts down by
itself when that parent dies, so no server outlives its demo.
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

HOST = "127.0.0.1"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m perfpilot.demo.serve",
        description="Serve the perfpilot demo app or its LLM API stub on 127.0.0.1.",
    )
    parser.add_argument("--app", choices=["demo", "llm"], required=True, help="what to serve")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int, help="TCP port to bind on 127.0.0.1")
    where.add_argument("--fd", type=int, help="an inherited listening socket to serve")
    parser.add_argument("--db", help="the demo database (--app demo)")
    parser.add_argument("--llm-url", help="base URL of the LLM stub (--app demo)")
    parser.add_argument("--chat-delay", type=float, default=0.15, help="seconds (--app llm)")
    parser.add_argument("--chat-jitter", type=float, default=0.15, help="seconds (--app llm)")
    parser.add_argument("--embeddings-delay", type=float, default=0.04, help="seconds (--app llm)")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    return parser


def _build_app(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    if args.app == "llm":
        from perfpilot.demo.llm_stub import create_llm_app

        return create_llm_app(
            chat_delay_s=args.chat_delay,
            chat_jitter_s=args.chat_jitter,
            embeddings_delay_s=args.embeddings_delay,
        )
    if not args.db or not args.llm_url:
        parser.error("--app demo needs --db and --llm-url")
    from perfpilot.demo.app import create_app

    # no perfpilot.instrument() here: the demo starts this process through
    # `perfpilot run`, which finds the app by itself
    return create_app(args.db, args.llm_url)


def _watch_parent(server: Any, parent_pid: int) -> None:
    """Ask ``server`` to exit once ``parent_pid`` is no longer our parent."""
    while not server.should_exit:
        if os.getppid() != parent_pid:
            server.should_exit = True
            return
        time.sleep(0.5)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one server until SIGTERM, SIGINT or the parent's death.

    Args:
        argv: Command-line arguments without the program name; ``sys.argv[1:]``
            when None.

    Returns:
        The exit status, 0 after a clean shutdown.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    app = _build_app(args, parser)

    import uvicorn

    config = uvicorn.Config(
        app,
        host=HOST,
        port=args.port or 0,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    if args.parent_pid is not None:
        threading.Thread(
            target=_watch_parent, args=(server, args.parent_pid), name="parent-watch", daemon=True
        ).start()
    if args.fd is None:
        server.run()
    else:
        with socket.socket(fileno=args.fd) as sock:
            server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
