"""`get_port` and `get_service_url` per call against their floor: one bare os.stat of the manifest.

Targets: get_port at most 2x (it stats the manifest), get_service_url at most 3x (it also stats
the .env for TRADING_SYSTEM_HOST), each measured the three ways a service names its project
(`root=`, REC_PROJECT_ROOT, the working folder, which costs a getcwd() per call since a process
may chdir). The files are older than 2 s, as a running service's are (a younger file is read
again on each call, see recio_setup/runtime/file_cache.py). A figure counts only if edits made
right after it (a manifest port, and for get_service_url TRADING_SYSTEM_HOST in .env) are seen
by the very next call; the run stops otherwise. Besides its stats, a lookup reads the
environment (os.environ.get of an unset variable costs about 0.4 of a stat) and, by the working
folder, calls getcwd: the note printed first gives both, the floor under the ratios.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.common import Figure, compare_calls
from recio_setup.runtime import api as runtime
from recio_setup.runtime.manifest_cache import clear_cache

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "templates" / "MASTER_PORT_MANIFEST.json"
MANIFEST_REL = "backend/core/config/MASTER_PORT_MANIFEST.json"
CALLS = 2_000
ROUNDS = 41  # short rounds, many: the fastest ones are those no other process disturbed
SERVICE = "main_app"
SETTLED_AFTER = 2.1  # seconds: file_cache trusts a stamp once the file is 2 s old

# (name, function, its answer for (port, host), target against the bare stat)
LOOKUPS: list[tuple[str, Callable[..., object], Callable[[int, str], object], str]] = [
    ("get_port", runtime.get_port, lambda port, _host: port, "<= 2x"),
    (
        "get_service_url",
        runtime.get_service_url,
        lambda port, host: f"http://{host}:{port}",
        "<= 3x",
    ),
]


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


def write_project(root: Path, port: int, host: str) -> None:
    """main_app's port in the manifest and TRADING_SYSTEM_HOST in .env, written in place;
    ports 3000..3999 and hosts 10.0.0.1..9 keep each file's size, as the hardest edit does."""
    document = json.loads(TEMPLATE.read_text())
    document["core_services"][SERVICE]["port"] = port
    (root / MANIFEST_REL).write_text(json.dumps(document, indent=2))
    (root / ".env").write_text(f"TRADING_SYSTEM_HOST={host}\nAUTH_ENABLED=false\n")


def settle(root: Path) -> None:
    """Wait until both files are old enough for their stamps to be trusted."""
    newest = max((root / rel).stat().st_ctime for rel in (MANIFEST_REL, ".env"))
    time.sleep(max(0.0, newest + SETTLED_AFTER - time.time()))


def shapes(root: Path) -> list[tuple[str, Path | None, dict[str, str | None]]]:
    """The ways a service names its project: (label, its `root=`, environment to run in)."""
    return [
        ("root=", root, {"REC_PROJECT_ROOT": None}),
        ("REC_PROJECT_ROOT", None, {"REC_PROJECT_ROOT": str(root)}),
        ("working folder", None, {"REC_PROJECT_ROOT": None}),
    ]


def bound(function: Callable[..., object], root: Path | None) -> Callable[[], object]:
    return lambda: function(SERVICE, root=root)


def explain_the_floor(manifest: str) -> None:
    """What every lookup pays besides its stats, in stats: reading an unset variable (the
    environment comes first in the order: REC_PROJECT_ROOT, TRADING_SYSTEM_HOST) and getcwd."""
    for what, call in [
        ("os.environ.get of an unset variable", lambda: os.environ.get("REC_BENCH_UNSET")),
        ("os.getcwd()", os.getcwd),
    ]:
        cost, stat = compare_calls(call, lambda: os.stat(manifest), CALLS, ROUNDS)
        print(f"  {what} costs {cost / stat:.2f} of a bare os.stat", file=sys.stderr)


def measure(root: Path) -> list[Figure]:
    figures = []
    manifest = str(root / MANIFEST_REL)
    edits = iter(range(1, 10))
    port, host = 3000, "10.0.0.0"
    write_project(root, port, host)
    explain_the_floor(manifest)
    for label, given_root, env in shapes(root):
        for name, function, answer, target in LOOKUPS:
            call = bound(function, given_root)
            settle(root)
            with environment(**env):
                assert call() == answer(port, host)
                ours, floor = compare_calls(call, lambda: os.stat(manifest), CALLS, ROUNDS)
                edit = next(edits)
                port, host = 3000 + edit, f"10.0.0.{edit}"
                write_project(root, port, host)
                assert call() == answer(port, host), f"{name} by {label} missed an edit"
            print(f"  {name} by {label}: edits seen by the next call", file=sys.stderr)
            figures.append(Figure(f"{name} ({label}) vs a bare os.stat", ours, floor, target))
    return figures


def run() -> list[Figure]:
    start = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder).resolve()
        (root / MANIFEST_REL).parent.mkdir(parents=True)
        os.chdir(root)
        clear_cache()
        runtime.clear_caches()
        try:
            with environment(TRADING_SYSTEM_HOST=None):
                return measure(root)
        finally:
            os.chdir(start)
            clear_cache()
            runtime.clear_caches()
