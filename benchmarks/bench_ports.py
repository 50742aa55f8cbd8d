"""`get_port` per call against the REC.IO v2 way: open, read and json.load on every call.

Target: at least 20x faster, while an edit is seen by the very next call (asserted in
tests/test_manifest_watch.py, in both modes below, not here).

It is measured the three ways a service names its project: `root=`, REC_PROJECT_ROOT, and the
working folder (which costs a getcwd() per call, since a process may chdir). On Linux the
manifest is watched with inotify once a process looks up often, so a lookup is one zero-timeout
epoll; the last figure is the mode other systems (and REC_MANIFEST_WATCH=0) use, a stat() per
call, beside a bare os.stat of the manifest: how close that lookup is to its floor.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.common import Figure, time_call
from recio_setup import manifest_watch, runtime
from recio_setup.manifest_cache import clear_cache

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "recio_setup" / "templates" / "MASTER_PORT_MANIFEST.json"
MANIFEST_REL = "backend/core/config/MASTER_PORT_MANIFEST.json"
CALLS = 50_000
REFERENCE_CALLS = 10_000
SERVICE = "kalshi_api_watchdog"


def reference_get_port(manifest: Path, service_name: str) -> int:
    """What REC.IO v2 did per call (minus its silent default)."""
    with open(manifest) as handle:  # as the reference does
        document = json.load(handle)
    for group in ("core_services", "watchdog_services"):
        if service_name in document.get(group, {}):
            return int(document[group][service_name]["port"])
    raise KeyError(service_name)


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        yield
    finally:
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def timed_lookup(lookup: Callable[[], int], manifest: Path) -> tuple[float, str]:
    """Seconds per call once warm, and whether the manifest was watched meanwhile."""
    clear_cache()
    runtime.clear_caches()
    for _ in range(manifest_watch.WATCH_AFTER + 1):  # as a running service would be
        assert lookup() == 8005
    seconds = time_call(lookup, CALLS)
    return seconds, manifest_watch.status(str(manifest))


def run() -> list[Figure]:
    figures: list[Figure] = []
    start = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder).resolve()
        manifest = root / MANIFEST_REL
        manifest.parent.mkdir(parents=True)
        shutil.copy(TEMPLATE, manifest)
        theirs = time_call(lambda: reference_get_port(manifest, SERVICE), REFERENCE_CALLS)
        shapes: list[tuple[str, Callable[[], int], dict[str, str | None]]] = [
            ("root=", lambda: runtime.get_port(SERVICE, root=root), {"REC_PROJECT_ROOT": None}),
            ("REC_PROJECT_ROOT", lambda: runtime.get_port(SERVICE), {"REC_PROJECT_ROOT": folder}),
            ("working folder", lambda: runtime.get_port(SERVICE), {"REC_PROJECT_ROOT": None}),
        ]
        os.chdir(root)
        try:
            for label, lookup, env in shapes:
                with environment(**env):
                    ours, state = timed_lookup(lookup, manifest)
                print(f"  get_port by {label}: manifest {state}", file=sys.stderr)
                name = f"get_port ({label}) vs re-read+parse"
                figures.append(Figure(name, ours, theirs, ">= 20x"))
            # A file changed in the last 2 s is re-read on each stat-checked lookup (coarse
            # timestamps may hide an edit); a running service's manifest is older than that.
            time.sleep(max(0.0, manifest.stat().st_ctime + 2.1 - time.time()))
            with environment(REC_MANIFEST_WATCH="0", REC_PROJECT_ROOT=None):
                stat_mode, _ = timed_lookup(lambda: runtime.get_port(SERVICE, root=root), manifest)
        finally:
            os.chdir(start)
            clear_cache()
        path = str(manifest)
        floor = time_call(lambda: os.stat(path), CALLS)
    figures.append(
        Figure("get_port, stat per call (no watch) vs a bare os.stat", stat_mode, floor, "<= 2x")
    )
    return figures
