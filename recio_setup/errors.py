"""The one exception family users see: a message, an optional hint, and an exit code.

cli/app.py catches RecioError once and renders it; anything else is a bug and gets a log file.
"""

from __future__ import annotations

import errno

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130

# The program as messages name it in a command (`recio-setup reset`): the placeholder that reads
# right wherever a message goes unrendered (an exception a service catches, a log). The CLI's
# Output fills it in, in one place (Output.shown), with how the user launched the tool.
PROGRAM = "recio-setup"


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

    def __init__(self, message: str, hint: str | None = None, *, cause: str | None = None) -> None:
        # --json's error.cause is never empty for bad input: scripts branch on it.
        super().__init__(message, hint, cause=cause or "bad_input")


class Interrupted(RecioError):
    """Ctrl-C: the --json envelope says 130, as the process's exit code does."""

    exit_code = EXIT_INTERRUPTED


class Bug(RecioError):
    """An unexpected exception, as reported: exit 3 (the traceback goes to a log file)."""

    exit_code = EXIT_BUG


class StepFailed(RecioError):
    """A step could not be completed; what came before it stays done."""

    exit_code = EXIT_PROBLEMS


# The disk, not the code: a full or read-only file system is the user's to fix.
DISK_ERRNOS = {
    errno.ENOSPC: "is full",
    errno.EDQUOT: "is over its quota",
    errno.EROFS: "is read-only",
}


def disk_error(exc: OSError, root: str | None) -> RecioError | None:
    """The message for an OSError that a full or read-only disk caused; None for any other."""
    state = DISK_ERRNOS.get(exc.errno or 0)
    if state is None:
        return None
    where = f"the disk holding {root}" if root else "the disk"
    return StepFailed(
        f"{where} {state} ({exc.strerror}); the run stopped there, and every file it was "
        "writing is still its old version (or the new one, complete)",
        hint=f"free some space (`df -h {root or '.'}`), then run the command again; "
        f"`{PROGRAM} check` lists what is left to do",
        cause="disk_full" if exc.errno != errno.EROFS else "read_only_disk",
    )
