"""`get_port` per call against its floor: one bare os.stat of the manifest.

Target: at most 2x, measured the three ways a service names its project (`root=`,
REC_PROJECT_ROOT, the working folder, which costs a getcwd() per call since a process may
chdir). The manifest is older than 2 s, as a running service's is (a younger file is read again
on each call, see recio_setup/file_cache.py). Each figure counts only if an edit of the manifest
made right after it is seen by the very next call.
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
from recio_setup import runtime
from recio_setup.manifest_cache import clear_cache

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "templates" / "MASTER_PORT_MANIFEST.json"
MANIFEST_REL = "backend/core/config/MASTER_PORT_MANIFEST.json"
CALLS = 20_000
SERVICE = "main_app"
SETTLED_AFTER = 2.1  # seconds: file_cache trusts a stamp once the file is 2 s old

Lookup = Callable[[], object]


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


def write_port(manifest: Path, port: int) -> None:
    """Edit main_app's port in place; 3000..3999 keep the file's size."""
    document = json.loads(TEMPLATE.read_text())
    document["core_services"][SERVICE]["port"] = port
    manifest.write_text(json.dumps(document, indent=2))


def settle(*files: Path) -> None:
    """Wait until every file is old enough for its stamp to be trusted."""
    newest = max(path.stat().st_ctime for path in files)
    time.sleep(max(0.0, newest + SETTLED_AFTER - time.time()))


def shapes(root: Path) -> list[tuple[str, Lookup, dict[str, str | None]]]:
    """The ways a service names its project: (label, lookup, environment to run it in)."""
    return [
        ("root=", lambda: runtime.get_port(SERVICE, root=root), {"REC_PROJECT_ROOT": None}),
        ("REC_PROJECT_ROOT", lambda: runtime.get_port(SERVICE), {"REC_PROJECT_ROOT": str(root)}),
        ("working folder", lambda: runtime.get_port(SERVICE), {"REC_PROJECT_ROOT": None}),
    ]


def run() -> list[Figure]:
    figures: list[Figure] = []
    start = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder).resolve()
        manifest = root / MANIFEST_REL
        manifest.parent.mkdir(parents=True)
        write_port(manifest, 3000)
        path = str(manifest)
        os.chdir(root)
        clear_cache()
        runtime.clear_caches()
        try:
            settle(manifest)
            for number, (label, lookup, env) in enumerate(shapes(root), start=1):
                with environment(**env):
                    assert lookup() == 3000
                    ours, floor = compare_calls(lookup, lambda: os.stat(path), CALLS)
                    write_port(manifest, 3000 + number)
                    assert lookup() == 3000 + number, f"get_port by {label} missed an edit"
                    write_port(manifest, 3000)
                    settle(manifest)
                print(f"  get_port by {label}: an edit was seen by the next call", file=sys.stderr)
                figures.append(
                    Figure(f"get_port ({label}) vs a bare os.stat", ours, floor, "<= 2x")
                )
        finally:
            os.chdir(start)
            clear_cache()
            runtime.clear_caches()
    return figures
