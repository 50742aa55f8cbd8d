"""Whole-command figures, run the way users run them (a fresh process each time).

- init: a warm no-op re-run on a finished tree, launcher included, against `python -c pass`
  (target: within 10x);
- check --skip-db-check with many files under live_data/price_history against an empty tree
  (target: within 1.2x; it must never walk the market data);
- reset --all --yes on that tree against copying the tree with `cp -a` (target: 50x faster), and
  against `python -c pass` (target: within 10x: it moves folders, it never walks the files).

RECIO_BENCH_FILES sets the number of files (default 200,000).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, compare_commands, user_env

REPO = Path(__file__).resolve().parent.parent
FILES = int(os.environ.get("RECIO_BENCH_FILES", "200000"))
INIT = ["--non-interactive", "--skip-db-check", "--host", "127.0.0.1", "-q"]


def launcher(root: Path, *args: str) -> list[str]:
    return [sys.executable, str(REPO / "bootstrap.py"), "--root", str(root), *args]


def fresh_project(parent: Path, name: str) -> Path:
    root = parent / name
    root.mkdir()
    env = {**user_env(), "POSTGRES_PASSWORD": "bench-password"}
    subprocess.run(launcher(root, *INIT), check=True, env=env, capture_output=True)
    return root


def fill(root: Path, count: int) -> None:
    btc = root / "backend/data/live_data/price_history/btc"
    for chunk in range(0, count, 1000):
        folder = btc / f"day{chunk // 1000:04d}"
        folder.mkdir()
        for index in range(min(1000, count - chunk)):
            (folder / f"{index}.json").write_text('{"p": 1}')


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="recio-bench-") as temp:
        parent = Path(temp)
        empty = fresh_project(parent, "empty")
        full = fresh_project(parent, "full")
        print(f"  writing {FILES} files ...", file=sys.stderr, flush=True)
        fill(full, FILES)

        noop, bare = compare_commands(launcher(empty, *INIT), [sys.executable, "-c", "pass"])
        check_full, check_empty = compare_commands(
            launcher(full, "check", "--skip-db-check", "-q"),
            launcher(empty, "check", "--skip-db-check", "-q"),
            repeat=5,
        )

        started = time.perf_counter()
        subprocess.run(["cp", "-a", str(full / "backend"), str(parent / "copy")], check=True)
        copy = time.perf_counter() - started
        shutil.rmtree(parent / "copy")
        started = time.perf_counter()
        subprocess.run(launcher(full, "reset", "--all", "--yes", "-q"), check=True, env=user_env())
        reset = time.perf_counter() - started
    return [
        Figure("init no-op re-run (launcher included) vs python -c pass", noop, bare, "<= 10x"),
        Figure(
            f"check with {FILES} market files vs empty tree", check_full, check_empty, "<= 1.2x"
        ),
        Figure(f"reset --all with {FILES} files vs cp -a of the tree", reset, copy, ">= 50x"),
        Figure(f"reset --all with {FILES} files vs python -c pass", reset, bare, "<= 10x"),
    ]
