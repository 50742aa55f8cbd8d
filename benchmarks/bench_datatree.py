"""plan_tree in check mode: a tree with many price-history files against an empty one.

The plan looks only at the table's entries and the names directly in the credentials folders, so
the files under live_data/price_history/btc must not change its cost (target: within 1.2x).
RECIO_BENCH_FILES sets how many files to create (default 200,000).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from benchmarks.common import Figure, time_call
from recio_setup.runtime.paths import Paths
from recio_setup.tree.archive import Archive
from recio_setup.tree.datatree import plan_tree
from recio_setup.tree.fsops import Tree
from recio_setup.tree.plan import ApplyContext, apply_plan

BTC_REL = "backend/data/live_data/price_history/btc"
CALLS = 200


def _initialised(root: Path) -> Paths:
    root.mkdir()
    paths = Paths(root)
    with Tree(root) as tree:
        apply_plan(plan_tree(tree, paths, "init"), ApplyContext(tree, Archive(tree, "init")))
    return paths


def _fill(folder: Path, count: int) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for index in range(count):
            os.close(os.open(f"{index:07d}.csv", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


def _seconds_per_check(paths: Paths) -> float:
    with Tree(paths.root) as tree:
        plan_tree(tree, paths, "check")  # warm the dentry cache like a real second run
        return time_call(lambda: plan_tree(tree, paths, "check"), CALLS)


def run() -> list[Figure]:
    count = int(os.environ.get("RECIO_BENCH_FILES", "200000"))
    with tempfile.TemporaryDirectory(prefix="recio-bench-") as tmp:
        empty = _initialised(Path(tmp) / "empty")
        full = _initialised(Path(tmp) / "full")
        _fill(full.abs(BTC_REL), count)
        reference = _seconds_per_check(empty)
        measured = _seconds_per_check(full)
    name = f"plan_tree check, {count:,} files under price_history vs empty tree"
    return [Figure(name, measured, reference, "<= 1.2x")]
