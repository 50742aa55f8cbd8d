"""One module per subcommand; each has HELP, DESCRIPTION, add_arguments(parser) and run(ctx).

Command modules are imported to build the parser, so they import only cheap things at the top;
psycopg and questionary are imported inside the functions that need them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from recio_setup.cli.output import Output
from recio_setup.runtime.paths import Paths

if TYPE_CHECKING:
    from recio_setup.tree.fsops import Tree
    from recio_setup.tree.runlock import RunLock

COMMAND_NAMES = ("init", "check", "reset", "ports", "supervisor", "credentials", "db")
MAX_LOCK_TIMEOUT = 3600.0


def add_lock_timeout(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--lock-timeout, for the commands that change the tree under the run lock."""
    group.add_argument(
        "--lock-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="wait this long for another run's lock (default: 10)",
    )


def validate_lock_timeout(args: argparse.Namespace) -> None:
    import math

    from recio_setup.errors import UsageError

    value = args.lock_timeout
    if not (math.isfinite(value) and 0 <= value <= MAX_LOCK_TIMEOUT):
        raise UsageError(
            f"--lock-timeout {value:g} is out of range",
            hint="give a number of seconds from 0 to 3600, e.g. --lock-timeout 10",
        )


DEFAULT_COMMAND = "init"


@dataclass
class Context:
    """What every command gets: arguments, the project's paths, the output and the environment."""

    command: str
    args: argparse.Namespace
    paths: Paths
    output: Output
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def __post_init__(self) -> None:
        from recio_setup.env.environment import TextEnvironment, input_secrets

        self.output.add_secrets(input_secrets(self.args, self.environ))
        self.environ = TextEnvironment(self.environ)

    @property
    def interactive(self) -> bool:
        """Prompts are allowed only with a terminal on stdin, without --non-interactive, and
        without --json (its stdout is the one JSON document; a script reads it, nobody answers)."""
        if getattr(self.args, "non_interactive", False) or getattr(self.args, "json", False):
            return False
        try:
            return sys.stdin is not None and sys.stdin.isatty()
        except (ValueError, OSError):
            return False


def run_lock(ctx: Context, tree: Tree, rel: str) -> RunLock:
    """The run lock of a command that changes the tree; waiting for it is said at once."""
    from recio_setup.tree.runlock import RunLock

    return RunLock(tree, rel, ctx.args.lock_timeout, command=ctx.command, on_wait=ctx.output.status)
