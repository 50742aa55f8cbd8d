"""Shared fixtures: the guard, a temp project, a CLI runner, and the throwaway PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
GUARD_DIR = Path(__file__).resolve().parent / "guard"
REAL_HOME = Path(os.path.expanduser("~")).resolve()
FORBIDDEN = [
    REAL_HOME,
    REPO / ".env",
    REPO / "backend" / "data",
    REPO / "backend" / "core" / "config",
    REPO / "logs",
]
FORBIDDEN_DIRS = [REAL_HOME, REPO, REPO / "backend", REPO / "backend" / "data"]
# Variables a developer's shell may carry that would leak into what the tests observe.
SCRUBBED = (
    "TRADING_SYSTEM_HOST",
    "AUTH_ENABLED",
    "DATABASE_TYPE",
    "DATABASE_URL",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "POSTGRES_DB",
    "POSTGRES_USER",
    "POSTGRES_PASSWORD",
    "POSTGRES_SSLMODE",
    "POSTGRES_ADMIN_URL",
    "POSTGRES_ADMIN_PASSWORD",
    "PGPASSWORD",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGSERVICE",
    "PGPASSFILE",
    "PGSSLMODE",
    "REC_PROJECT_ROOT",
    "REC_USER_ID",
    "RECIO_SETUP_LAUNCHER_ROOT",
    "NO_COLOR",
)

os.environ["RECIO_TEST_FORBIDDEN"] = os.pathsep.join(map(str, FORBIDDEN))
os.environ["RECIO_TEST_FORBIDDEN_DIRS"] = os.pathsep.join(map(str, FORBIDDEN_DIRS))
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(GUARD_DIR), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
)
sys.path.insert(0, str(GUARD_DIR))
import sitecustomize  # noqa: E402,F401  (installs the guard in this process too)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in SCRUBBED:
        monkeypatch.delenv(name, raising=False)


ROOT_ON_LINUX = sys.platform.startswith("linux") and os.geteuid() == 0


@contextmanager
def mounted(*args: str) -> Iterator[None]:
    """`mount ARGS` for the block (the test is skipped where mounting is not allowed)."""
    target = args[-1]
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", target], check=True)


class _FirstTimes:
    """A stat result showing the mtime and ctime a file had at its first stat in the test."""

    def __init__(self, real: os.stat_result, first: tuple[int, int]) -> None:
        self._real = real
        self.st_mtime_ns, self.st_ctime_ns = first

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@pytest.fixture
def coarse_timestamps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every stat shows a file's mtime and ctime as they were at its first stat: a filesystem
    whose timestamp tick has not passed since (ext3, HFS+, FAT and ramfs have coarse ones)."""
    real_stat = os.stat
    first: dict[str, tuple[int, int]] = {}

    def stat(path: Any, *args: Any, **kwargs: Any) -> Any:
        real = real_stat(path, *args, **kwargs)
        key = os.fsdecode(os.fspath(path)) if not isinstance(path, int) else f"fd:{path}"
        return _FirstTimes(real, first.setdefault(key, (real.st_mtime_ns, real.st_ctime_ns)))

    monkeypatch.setattr(os, "stat", stat)


@pytest.fixture
def clock_moved_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The file caches' clock reads 10 s later: every file looks settled, its stamp trusted."""
    import time
    from types import SimpleNamespace

    from recio_setup.runtime import file_cache

    monkeypatch.setattr(
        file_cache, "time", SimpleNamespace(time_ns=lambda: time.time_ns() + 10**10)
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty REC.IO project folder, as a fresh clone would have."""
    root = tmp_path / "project"
    root.mkdir()
    return root


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def all(self) -> str:
        return self.out + self.err


@dataclass
class Cli:
    """Runs `python -m recio_setup` in the project the way bootstrap.py would, with no terminal."""

    root: Path

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        env.update({"RECIO_SETUP_LAUNCHER_ROOT": str(self.root), "COLUMNS": "200"})
        env.update(extra or {})
        return env

    def __call__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        input: str | None = None,
        timeout: float = 60,
        cwd: Path | None = None,
    ) -> Run:
        done = subprocess.run(
            [sys.executable, "-m", "recio_setup", *args],
            capture_output=True,
            text=True,
            env=self.env(env),
            input=input if input is not None else "",
            cwd=cwd or self.root,
            timeout=timeout,
        )
        return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli(project: Path) -> Cli:
    return Cli(project)


LOCK_FILE = "backend/data/locks/bootstrap.lock"


def tree_snapshot(root: Path) -> dict[str, tuple[str, int, bytes | str | None]]:
    """Every entry under root: kind, mode and content (files) or target (symlinks).

    The run lock is left out: every run that takes it writes its PID there.
    """
    snapshot: dict[str, tuple[str, int, bytes | str | None]] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            rel = str(path.relative_to(root))
            if rel == LOCK_FILE:
                continue
            st = path.lstat()
            if path.is_symlink():
                snapshot[rel] = ("link", st.st_mode & 0o7777, os.readlink(path))
            elif path.is_dir():
                snapshot[rel] = ("dir", st.st_mode & 0o7777, None)
            else:
                snapshot[rel] = ("file", st.st_mode & 0o7777, path.read_bytes())
    return snapshot


@pytest.fixture(scope="session")
def pg() -> Iterator[Any]:
    """The throwaway PostgreSQL; skipped without server binaries, except under CI."""
    from tests.pgserver import PgServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        reason = "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found"
        if os.environ.get("CI"):
            pytest.fail(
                f"{reason}; CI must run the database tests, so this fails instead of skipping"
            )
        pytest.skip(reason)
    server = PgServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()
