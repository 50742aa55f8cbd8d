"""The connection test's deadlines: refused under 0.5 s, a silent server within timeout + 1 s."""

from __future__ import annotations

import statistics
import time

from benchmarks.common import Figure
from recio_setup.db.probe import probe
from recio_setup.db.target import DbSettings
from tests.pgserver import free_port, silent_server


def _probe_seconds(port: int, timeout: float, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        probe(DbSettings("127.0.0.1", port, "db", "user", "bench-pw", connect_timeout=timeout))
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def run() -> list[Figure]:
    probe(DbSettings("127.0.0.1", free_port(), "db", "user", None))  # import psycopg first
    refused = _probe_seconds(free_port(), 5.0, repeat=7)
    with silent_server() as port:
        silent = _probe_seconds(port, 2.0, repeat=1)
    return [
        Figure("probe: connection refused vs the 0.5 s budget", refused, 0.5, "<= 1x"),
        Figure("probe: silent server, timeout 2 s, vs 3 s budget", silent, 3.0, "<= 1x"),
    ]
