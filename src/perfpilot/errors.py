"""One exception tree for perfpilot, with the process exit code on each class.

Only the CLI turns these into messages and exit codes; library code raises them.
Exit codes: 0 ok, 1 thresholds or budgets failed, 2 usage or configuration
error, 3 internal error.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_THRESHOLDS_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class PerfpilotError(Exception):
    """Base class of every error perfpilot raises on purpose."""

    exit_code: int = EXIT_INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(PerfpilotError):
    """The command line or an argument is wrong (exit code 2)."""

    exit_code = EXIT_USAGE


class ConfigError(PerfpilotError):
    """A configuration or scenario file is wrong (exit code 2).

    Args:
        message: What was expected and what was found.
        path: The file, when the error comes from one.
        line: 1-based line number, when known.
        column: 1-based column number, when known.
        field: The dotted name of the offending field, when known.
    """

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.column = column
        self.field = field

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


class ThresholdSyntaxError(ConfigError):
    """A threshold expression does not parse.

    Args:
        message: What was expected.
        expression: The whole expression as the user wrote it.
        position: 0-based index of the offending character in ``expression``.
    """

    def __init__(
        self,
        message: str,
        expression: str,
        position: int,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, path=path, line=line, field=field)
        self.expression = expression
        self.position = position

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} in threshold {self.expression!r} at character {self.position + 1}"

    def pointer(self) -> str:
        """Two lines: the expression and a caret under the offending character."""
        return f"  {self.expression}\n  {' ' * self.position}^"


class ConnectError(UsageError):
    """The target cannot be reached before a run starts (exit code 2)."""


class StoreError(PerfpilotError):
    """The store cannot be opened, read or written (exit code 2 when user-caused)."""

    exit_code = EXIT_USAGE


class ThresholdsFailed(PerfpilotError):
    """One or more thresholds failed (exit code 1)."""

    exit_code = EXIT_THRESHOLDS_FAILED


class InternalError(PerfpilotError):
    """A bug in perfpilot (exit code 3)."""

    exit_code = EXIT_INTERNAL
