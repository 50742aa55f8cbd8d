"""Running a command: its project root and output, and the one place errors are caught and turned
into exit codes (the arguments are parsed in parser.py).

Exit codes (docs/architecture.md): 0 success; 1 a check found problems or a step failed; 2 bad
input or usage, and then nothing was written; 3 an unexpected error (a bug, with a crash log);
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from recio_setup import __version__
from recio_setup.cli.output import Output, program_name
from recio_setup.cli.parser import build_parser, command_first, command_module
from recio_setup.errors import (
    EXIT_PROBLEMS,
    Bug,
    Interrupted,
    RecioError,
    UsageError,
    disk_error,
)
from recio_setup.result import Result
from recio_setup.runtime.paths import (
    DEFAULT_USER,
    LAUNCHER_ROOT_ENV,
    LOGS_REL,
    ROOT_ENV,
    Paths,
    resolve_project_root,
    validate_user,
)


def resolve_root(args: argparse.Namespace, output: Output) -> Path:
    """--root, else the launcher's folder, else REC_PROJECT_ROOT, else the folder found above."""
    if args.root is not None and not args.root.strip():
        raise UsageError(
            "--root is empty",
            hint="pass the project folder, e.g. --root ~/rec_io (a variable that is not set "
            "expands to nothing)",
        )
    launcher_root = os.environ.get(LAUNCHER_ROOT_ENV)
    if args.root:
        root = resolve_project_root(args.root)
    elif launcher_root:
        root = Path(launcher_root)
        _say_the_launcher_wins(root, output)
    else:
        root = resolve_project_root()
    if not root.is_dir():
        raise UsageError(
            f"the project folder {root} does not exist or is not a folder",
            hint="pass --root DIR with the REC.IO project folder",
        )
    return root


def _say_the_launcher_wins(root: Path, output: Output) -> None:
    """bootstrap.py sets up its own checkout; a REC_PROJECT_ROOT elsewhere is only for services."""
    from_env = os.environ.get(ROOT_ENV)
    if from_env and Path(from_env).expanduser().absolute() != root:
        output.warn(
            f"{ROOT_ENV}={from_env} is not used: bootstrap.py works on the folder it is in, "
            f"{root} (pass --root {from_env} to work on that one)"
        )


def _as_launched(args: argparse.Namespace) -> str:
    """How hints spell the program: as launched, with the --root and --user given, so that
    `run init` after `check --user user_0002` works on the same user (common options may come
    before the command)."""
    import shlex

    words = [program_name()]
    if args.root:
        words += ["--root", shlex.quote(args.root)]
    if args.user != DEFAULT_USER:
        words += ["--user", args.user]
    return " ".join(words)


def _guess_json(argv: Sequence[str]) -> bool:
    return "--json" in argv


def may_write(args: argparse.Namespace) -> bool:
    """Whether this run may change the project; only then may its crash log go into logs/."""
    read_only: bool = command_module(args.command).READ_ONLY
    return not (read_only or getattr(args, "dry_run", False))


def write_crash_log(root: Path | None, output: Output) -> str:
    """Save the traceback where the user can find it: in the project's logs/ when `root` is
    given, else in the temp folder. Secrets are masked in it too."""
    import traceback

    text = output.redact(traceback.format_exc())
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    if root is not None:
        try:
            from recio_setup.tree.fsops import Tree

            with Tree(root) as tree:
                tree.ensure_dirs(LOGS_REL, 0o755)
                rel = f"{LOGS_REL}/recio-setup-crash-{stamp}-{os.getpid()}.log"
                tree.write_file(rel, text.encode(), 0o600)
            return str(root / rel)
        except (OSError, RecioError):
            pass
    import tempfile

    handle, path = tempfile.mkstemp(prefix="recio-setup-crash-", suffix=".log")
    with os.fdopen(handle, "w") as log:
        log.write(text)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--version"]:
        # Answered before building the parser, which imports every command module.
        sys.stdout.write(f"recio-setup {__version__}\n")
        return 0
    output = Output(json_mode=_guess_json(argv))
    command = "recio-setup"
    log_root: Path | None = None  # None: a crash log goes to the temp folder
    try:
        words = command_first(argv)
        parser = build_parser(None if words[0].startswith("-") else words[0])  # --help: all
        args = parser.parse_args(words)
        command = args.command
        output = Output(
            json_mode=args.json, quiet=args.quiet, verbose=args.verbose, color=args.color
        )
        root = resolve_root(args, output)
        paths = Paths(root, validate_user(args.user))
        output.prog = _as_launched(args)
        log_root = root if may_write(args) else None
        from recio_setup.cli.commands import Context

        result: Result = command_module(command).run(Context(command, args, paths, output))
        output.result(result)
        return result.exit_code
    except KeyboardInterrupt:
        interrupted = Interrupted("interrupted", cause="interrupted")
        output.error(interrupted, command=command)
        return interrupted.exit_code
    except RecioError as error:
        output.error(error, command=command)
        return error.exit_code
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); nothing more to say to it.
        sys.stderr.close()
        return EXIT_PROBLEMS
    except OSError as exc:
        disk = disk_error(exc, str(root) if root else None)
        if disk is None:
            return _unexpected(exc, log_root, output, command)
        output.error(disk, command=command)
        return disk.exit_code
    except Exception as exc:
        return _unexpected(exc, log_root, output, command)


def _unexpected(exc: Exception, root: Path | None, output: Output, command: str) -> int:
    """A bug: a short message, and the traceback in a log file."""
    log_path = write_crash_log(root, output)
    unexpected = Bug(
        f"unexpected error: {type(exc).__name__}: {exc}",
        hint="this is a bug in recio-setup; the log has the traceback, please report it",
        cause="bug",
    )
    output.error(unexpected, command=command, log_path=log_path)
    return unexpected.exit_code
