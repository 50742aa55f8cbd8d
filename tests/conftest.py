"""Shared fixtures: the guard, a temp project, a CLI runner, and the throwaway PostgreSQL."""

from __future__ import annotations

import gc
import io
import json
import locale
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
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


def _install_guard_here() -> None:
    """The guard in pytest itself, where most CLI tests run in-process (the kill injection stays
    in the subprocesses that ask for it). Loaded by path: a sitecustomize imported at start-up
    would hide it from `import sitecustomize`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "recio_test_guard", GUARD_DIR / "sitecustomize.py"
    )
    assert spec is not None and spec.loader is not None
    guard = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(guard)
    guard.install_guard()
    assert getattr(sys, "_recio_test_guard", False), "the test guard is not installed"


_install_guard_here()


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


def reset_process_state() -> None:
    """Forget what an earlier in-process run left in module state, as a new process would: the
    runtime's caches of resolved roots, .env files and manifests, the detected host, and the
    temp folder tempfile chose from $TMPDIR."""
    from recio_setup.runtime import api

    api.clear_caches()
    tempfile.tempdir = None


class _Sink(io.BytesIO):
    """A captured stream's bytes; kept when the program closes the stream (as after a
    BrokenPipeError), as the reading end of a pipe keeps what was written before."""

    def close(self) -> None:
        pass


def _stream(like: Any, fallback_errors: str) -> tuple[io.TextIOWrapper, _Sink]:
    """A text stream with the encoding and error handler Python gives a child's stdio here."""
    sink = _Sink()
    encoding = getattr(like, "encoding", None) or "utf-8"
    errors = getattr(like, "errors", None) or fallback_errors
    return io.TextIOWrapper(sink, encoding=encoding, errors=errors, write_through=True), sink


def _as_read_from_a_pipe(data: bytes) -> str:
    """What subprocess.run(text=True) makes of a child's output: decoded, universal newlines."""
    text = data.decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _exit_status(exit: SystemExit, stderr: io.TextIOWrapper) -> int:
    """The status Python exits with for an uncaught SystemExit (argparse's --help raises one)."""
    if exit.code is None:
        return 0
    if isinstance(exit.code, int):
        return exit.code
    print(exit.code, file=stderr)
    return 1


def _open_files() -> dict[int, str]:
    """This process's open descriptors and what they are (empty where /proc is missing)."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return {}
    found = {}
    for fd in fds:
        with suppress(OSError):  # the listing's own descriptor, closed by now
            found[int(fd)] = os.readlink(f"/proc/self/fd/{fd}")
    return found


class CliTimeout(BaseException):
    """An in-process run took too long (a BaseException: main() must not catch it as a bug)."""


@contextmanager
def _time_limit(seconds: float, args: tuple[str, ...]) -> Iterator[None]:
    """Like subprocess.run's timeout: a run that hangs (on a FIFO, say) fails the test."""

    def expired(signum: int, frame: Any) -> None:
        raise CliTimeout(f"recio-setup {' '.join(args)} still running after {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Cli:
    """Runs recio-setup in the project the way bootstrap.py would, with no terminal.

    Calling it runs `recio_setup.cli.app.main(args)` in this process, with exactly the
    environment, working folder, stdin, stdout and stderr `python -m recio_setup` would get, and
    the runtime's caches forgotten before and after; it returns the same Run. `process` runs a
    real `python -m recio_setup`, for what only a process shows: the fault injection of
    tests/guard/sitecustomize.py (RECIO_TEST_KILL_AT), a death by signal, the run lock between
    processes, start-up and imports.
    """

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
        umask: int | None = None,
    ) -> Run:
        """The run; `umask` is the process umask during it (default: this process's)."""
        from recio_setup.cli import app

        environ = self.env(env)
        if "RECIO_TEST_KILL_AT" in environ:
            raise AssertionError("fault injection needs a real process: use cli.process(...)")
        saved_environ = dict(os.environ)
        saved_cwd = os.getcwd()
        saved_streams = (sys.stdin, sys.stdout, sys.stderr)
        saved_umask = os.umask(0o022)
        os.umask(saved_umask)
        saved_tempdir = tempfile.tempdir
        stdin_bytes = (input or "").encode(locale.getpreferredencoding(False))  # as subprocess does
        stdin = io.TextIOWrapper(
            io.BytesIO(stdin_bytes),
            encoding=getattr(sys.__stdin__, "encoding", None) or "utf-8",
            errors=getattr(sys.__stdin__, "errors", None) or "strict",
        )
        stdout, out = _stream(sys.__stdout__, "strict")
        stderr, err = _stream(sys.__stderr__, "backslashreplace")
        reset_process_state()
        files_before = _open_files()
        try:
            os.environ.clear()
            os.environ.update(environ)
            os.chdir(cwd or self.root)
            os.umask(saved_umask if umask is None else umask)
            sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
            try:
                with _time_limit(timeout, args):
                    code = app.main(list(args))
            except SystemExit as exit:
                code = _exit_status(exit, stderr)
        finally:
            sys.stdin, sys.stdout, sys.stderr = saved_streams
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_environ)
            os.umask(saved_umask)
            reset_process_state()
            tempfile.tempdir = saved_tempdir
        # A process's exit would close what a run leaves open, and release its locks; here a
        # leak would pile up, so it fails the test (closed first, so the teardown can clean up).
        # What only waits for the garbage collector (a connection held by a traceback's cycle,
        # as psycopg's after a timeout) is not a leak: it is collected first.
        left_open = {fd: f for fd, f in _open_files().items() if files_before.get(fd) != f}
        if left_open:
            gc.collect()
            left_open = {fd: f for fd, f in _open_files().items() if files_before.get(fd) != f}
        for fd in left_open:
            os.close(fd)
        assert not left_open, f"recio-setup {' '.join(args)} left files open: {left_open}"
        return Run(code, _as_read_from_a_pipe(out.getvalue()), _as_read_from_a_pipe(err.getvalue()))

    def process(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        input: str | None = None,
        timeout: float = 60,
        cwd: Path | None = None,
    ) -> Run:
        """A real `python -m recio_setup` (a death by signal shows as a negative code)."""
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
    """The throwaway PostgreSQL, from the same wheel as `init --local-db`."""
    from tests.pgserver import PgServer

    server = PgServer().start()
    try:
        yield server
    finally:
        server.stop()
