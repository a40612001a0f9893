"""Where the flusher writes: a store opened lazily, in the flusher's thread."""

from __future__ import annotations

from typing import Any

from perfpilot.app_records import AppSnapshot


class StoreSink:
    """Writes snapshots to the store at ``location`` (SQLite path or PostgreSQL URL).

    The store is opened on first use, in the thread that writes (SQLite
    connections belong to one thread), and re-opened after a failure.
    """

    def __init__(self, location: str) -> None:
        self.location = location
        self._store: Any = None

    def __call__(self, snapshot: AppSnapshot) -> None:
        """Write one snapshot; raises on failure (the flusher retries).

        The store's own statements are not recorded as the app's (a
        PostgreSQL store goes through the hooked psycopg).
        """
        from perfpilot.instrument.sql import suppressed

        with suppressed():
            self._write(snapshot)

    def _write(self, snapshot: AppSnapshot) -> None:
        if self._store is None:
            from perfpilot.store import open_store

            self._store = open_store(self.location)
        try:
            self._store.save_app_snapshot(snapshot)
        except Exception:
            store, self._store = self._store, None
            try:
                store.close()
            finally:
                raise
