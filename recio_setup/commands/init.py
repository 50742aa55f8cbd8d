"""`recio-setup init` (filled in by its issue)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from recio_setup.errors import StepFailed

if TYPE_CHECKING:
    from recio_setup.commands import Context
    from recio_setup.result import Result

HELP = "init (not built yet)"
DESCRIPTION = HELP


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(ctx: Context) -> Result:
    raise StepFailed(f"{ctx.command} is not built yet")
