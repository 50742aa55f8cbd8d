"""The one exception family users see: a message, an optional hint, and an exit code.

cli.py catches RecioError once and renders it; anything else is a bug and gets a log file.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class RecioError(Exception):
    """A problem the user can act on. `hint` says what to do about it."""

    exit_code = EXIT_PROBLEMS

    def __init__(self, message: str, hint: str | None = None, *, cause: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        # A machine-readable cause for --json (e.g. "connection_refused"); optional.
        self.cause = cause


class UsageError(RecioError):
    """Bad input: a flag, an environment variable or a file's content. Nothing was written."""

    exit_code = EXIT_USAGE


class StepFailed(RecioError):
    """A step could not be completed; what came before it stays done."""

    exit_code = EXIT_PROBLEMS
