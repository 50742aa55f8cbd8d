"""The project-local PostgreSQL: what recio-setup adds to the server's own tools.

`init --local-db` on a fresh project against initdb + pg_ctl start run by hand, and `db start`
of a stopped cluster against pg_ctl start alone (the binaries installed, one run each measured
after nothing is cached but the OS's file cache).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import Figure, user_env
from recio_setup.db.account import server_account
from recio_setup.db.server import find_binaries
from tests.pgserver import free_port

CLUSTER = "backend/data/postgres"


def _seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _cli(root: Path, *args: str) -> None:
    env = user_env() | {"POSTGRES_PASSWORD": "bench-pw"}
    subprocess.run(
        [sys.executable, "-m", "recio_setup", "--root", str(root), *args],
        check=True,
        capture_output=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def _by_hand(folder: Path, *args: str) -> None:
    """A server tool run as the account recio-setup would use, in the cluster folder."""
    account = server_account(folder / "data")
    extra = account.run_as() if account else {}
    tool = find_binaries().tool(args[0])
    subprocess.run([str(tool), *args[1:]], cwd=folder, check=True, capture_output=True, **extra)


def _fresh_folder(base: Path, name: str) -> Path:
    folder = base / name
    folder.mkdir(mode=0o700)
    account = server_account(folder / "data")
    if account:
        shutil.chown(folder, account.uid, account.gid)
    return folder


def run() -> list[Figure]:
    base = Path(tempfile.mkdtemp(prefix="recio-bench-localdb-"))
    base.chmod(0o755)
    root = base / "project"
    root.mkdir()
    by_hand = _fresh_folder(base, "by-hand")
    (by_hand / "pw").write_text("bench-pw\n")
    account = server_account(by_hand / "data")
    if account:
        shutil.chown(by_hand / "pw", account.uid, account.gid)
    try:
        init = _seconds(lambda: _cli(root, "init", "--non-interactive", "--local-db"))
        raw_init = _seconds(
            lambda: (
                _by_hand(by_hand, "initdb", "-D", "data", "-U", "postgres", "--pwfile=pw",
                         "--auth=scram-sha-256", "-E", "UTF8", "--locale=C",
                         f"--set=port={free_port()}", "--set=listen_addresses=127.0.0.1",
                         "--set=unix_socket_directories=."),
                _by_hand(by_hand, "pg_ctl", "-D", "data", "-l", "log", "-w", "start"),
            )
        )  # fmt: skip
        _by_hand(by_hand, "pg_ctl", "-D", "data", "-w", "stop")
        raw_start = _seconds(
            lambda: _by_hand(by_hand, "pg_ctl", "-D", "data", "-l", "log", "-w", "start")
        )
        _cli(root, "db", "stop")
        start = _seconds(lambda: _cli(root, "db", "start"))
    finally:
        for folder in (by_hand, root / CLUSTER):
            if (folder / "data" / "postmaster.pid").exists():
                _by_hand(folder, "pg_ctl", "-D", "data", "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)
    return [
        Figure("init --local-db, fresh project, vs initdb + pg_ctl start", init, raw_init, "<= 3x"),
        Figure("db start of a stopped cluster vs pg_ctl start", start, raw_start, "<= 3x"),
    ]
