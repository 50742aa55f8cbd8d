"""`python bootstrap.py --version` on a current venv, against a bare `python -c pass`."""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.common import Figure, compare_commands

REPO = Path(__file__).resolve().parent.parent


def run() -> list[Figure]:
    launcher, bare = compare_commands(
        [sys.executable, str(REPO / "bootstrap.py"), "--version"], [sys.executable, "-c", "pass"]
    )
    return [
        Figure("bootstrap.py --version (current venv) vs python -c pass", launcher, bare, "<= 10x")
    ]
