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

from recio_setup.output import Output
from recio_setup.paths import Paths

COMMAND_NAMES = ("init", "check", "reset", "ports")
DEFAULT_COMMAND = "init"


@dataclass
class Context:
    """What every command gets: arguments, the project's paths, the output and the environment."""

    command: str
    args: argparse.Namespace
    paths: Paths
    output: Output
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @property
    def interactive(self) -> bool:
        """Prompts are allowed only with a terminal on stdin and without --non-interactive."""
        if getattr(self.args, "non_interactive", False):
            return False
        try:
            return sys.stdin is not None and sys.stdin.isatty()
        except (ValueError, OSError):
            return False
