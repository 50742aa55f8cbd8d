"""`get_port` per call against the REC.IO v2 way: open, read and json.load on every call.

Target: at least 20x faster. That an edit is seen by the very next call is asserted in
tests/test_ports.py and tests/test_runtime.py, not here.

Seeing every edit on the very next call needs one stat() per call, so the second figure puts
get_port beside a bare os.stat of the manifest: it shows how close the lookup is to that floor.
On machines where a syscall is slow (e.g. a microVM: ~3 us per stat against ~35 us for the whole
reference call) the first ratio is bounded near 10x by the stat alone.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from benchmarks.common import Figure, time_call
from recio_setup import runtime
from recio_setup.ports import clear_cache

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "recio_setup" / "templates" / "MASTER_PORT_MANIFEST.json"
MANIFEST_REL = "backend/core/config/MASTER_PORT_MANIFEST.json"
CALLS = 20_000


def reference_get_port(manifest: Path, service_name: str) -> int:
    """What REC.IO v2 did per call (minus its silent default)."""
    with open(manifest) as handle:  # as the reference does
        document = json.load(handle)
    for group in ("core_services", "watchdog_services"):
        if service_name in document.get(group, {}):
            return int(document[group][service_name]["port"])
    raise KeyError(service_name)


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        manifest = root / MANIFEST_REL
        manifest.parent.mkdir(parents=True)
        shutil.copy(TEMPLATE, manifest)
        clear_cache()
        assert runtime.get_port("kalshi_api_watchdog", root=root) == 8005  # warm the cache
        ours = time_call(lambda: runtime.get_port("kalshi_api_watchdog", root=root), CALLS)
        theirs = time_call(lambda: reference_get_port(manifest, "kalshi_api_watchdog"), CALLS)
        path = str(manifest)
        floor = time_call(lambda: os.stat(path), CALLS)
    return [
        Figure("get_port (cached, stat per call) vs re-read+parse", ours, theirs, ">= 20x"),
        Figure("get_port vs a bare os.stat of the manifest (the floor)", ours, floor, "<= 2x"),
    ]
