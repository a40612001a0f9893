"""The one-line live view shown while a load test runs."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.text import Text

from perfpilot.records import LoadResult, SecondStats


class LiveView:
    """Elapsed time, VUs, current rate, p95 and errors, refreshed once a second.

    Args:
        console: Where to draw; nothing is drawn when it is not a terminal.
        total_s: The planned length of the run, for the progress figure.
    """

    def __init__(self, console: Console, total_s: float) -> None:
        self.console = console
        self.total_s = total_s
        self._live: Live | None = None
        self._requests = 0
        self._errors = 0

    def __enter__(self) -> LiveView:
        if self.console.is_terminal:
            self._live = Live(
                Text("starting…"), console=self.console, auto_refresh=False, transient=True
            )
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
            self._live = None

    def update(self, result: LoadResult, second: int) -> None:
        """Show the state after ``second`` (0-based) is complete."""
        if self._live is None:
            return
        self._live.update(self.render(result, second), refresh=True)

    def render(self, result: LoadResult, second: int) -> Text:
        """The live line for ``second``; call once per completed second, in order."""
        now = SecondStats()
        for series in result.names.values():
            stats = series.seconds.get(second)
            if stats is not None:
                now.merge(stats)
        # running totals, so each refresh costs one second's worth of work
        self._requests += now.requests
        self._errors += now.error_count
        errors = self._errors
        error_pct = 100.0 * errors / self._requests if self._requests else 0.0
        p95_ms = now.latency.percentile(95) * 1000 if now.latency.count else 0.0
        vus = result.vus.get(second, 0)
        return Text.assemble(
            ("running ", "bold"),
            f"{second + 1:>4}s/{self.total_s:.0f}s  ",
            ("VUs ", "dim"),
            f"{vus:<6}",
            ("rate ", "dim"),
            f"{now.requests:>8,}/s  ",
            ("p95 ", "dim"),
            f"{p95_ms:>9.2f} ms  ",
            ("errors ", "dim"),
            (f"{errors:,} ({error_pct:.2f}%)", "red" if errors else "green"),
        )
