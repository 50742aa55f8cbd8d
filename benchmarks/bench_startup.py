"""`python bootstrap.py --version` on a current venv, against a bare `python -c pass`."""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.common import Figure, time_command

REPO = Path(__file__).resolve().parent.parent


def run() -> list[Figure]:
    bare = time_command([sys.executable, "-c", "pass"], repeat=7)
    launcher = time_command([sys.executable, str(REPO / "bootstrap.py"), "--version"], repeat=7)
    return [
        Figure("bootstrap.py --version (current venv) vs python -c pass", launcher, bare, "<= 10x")
    ]
