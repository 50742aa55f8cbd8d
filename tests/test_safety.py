"""The run lock, and SIGKILL at random moments: each file is old or new, never partial or looser."""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Cli, tree_snapshot
from tests.test_reset import (
    ENV,
    INIT,
    corrupt_binary_token,
    corrupt_env_garbage_lines,
    corrupt_file_where_folder_belongs,
    corrupt_manifest_not_json,
    corrupt_modes_0777,
)

LOCK = "backend/data/locks/bootstrap.lock"


def start(cli: Cli, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "recio_setup", *args],
        env=cli.env(ENV),
        cwd=cli.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def hold_lock(project: Path) -> int:
    (project / LOCK).parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(project / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(handle, fcntl.LOCK_EX)
    os.ftruncate(handle, 0)
    os.write(handle, f"{os.getpid()}\n".encode())
    return handle


def test_second_run_waits_for_the_lock_then_finishes(cli: Cli, project: Path) -> None:
    handle = hold_lock(project)
    waiting = start(cli, *INIT, "--lock-timeout", "20")
    time.sleep(1.0)
    assert waiting.poll() is None, "init must wait while another run holds the lock"
    fcntl.flock(handle, fcntl.LOCK_UN)
    os.close(handle)
    _out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert cli("check", "--skip-db-check").code == 0


def test_lock_timeout_names_the_holder(cli: Cli, project: Path) -> None:
    handle = hold_lock(project)
    try:
        # A real process: the holder is another process, as it is for a user.
        run = cli.process(*INIT, "--lock-timeout", "0.3", env=ENV)
    finally:
        os.close(handle)
    assert run.code == 1
    assert f"PID {os.getpid()}" in run.err and "--lock-timeout" in run.err
    assert not (project / ".env").exists()


def test_two_concurrent_inits_end_in_a_valid_tree(cli: Cli, project: Path) -> None:
    runs = [start(cli, *INIT) for _ in range(2)]
    results = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], results
    assert cli("check", "--skip-db-check").code == 0


def _corrupt(project: Path) -> None:
    corrupt_binary_token(project)
    corrupt_manifest_not_json(project)
    corrupt_env_garbage_lines(project)
    corrupt_file_where_folder_belongs(project)
    corrupt_modes_0777(project)


@pytest.mark.slow
def test_sigkill_at_random_points_never_leaves_partial_or_looser_files(
    cli: Cli, project: Path
) -> None:
    assert cli(*INIT, env=ENV).code == 0
    key = project / "backend/data/users/user_0001/credentials/kalshi-credentials/prod/key.pem"
    key.write_text("PRIVATE KEY")
    _corrupt(project)
    broken = tree_snapshot(project)
    rng = random.Random(20261124)
    for _ in range(12):
        run = start(cli, "reset")
        time.sleep(rng.uniform(0.0, 0.6))
        run.send_signal(signal.SIGKILL)
        run.communicate()
        now = tree_snapshot(project)
        for rel, (kind, mode, content) in now.items():
            if ".tmp" in rel or rel.startswith("backend/data/archives") or kind != "file":
                continue
            old = broken.get(rel)
            if old is None or old[2] == content:
                continue
            # Changed files are the repaired version: complete, and private where it matters.
            if rel.endswith("tokens.json"):
                assert content == b"{}\n", rel
            if rel.endswith(".env"):
                assert b"PASSWORD" in content and mode == 0o600, rel
        for rel, (kind, mode, _content) in now.items():
            old = broken.get(rel)
            if old and old[0] == kind and "credentials" in rel:
                assert mode & ~old[1] == 0, f"{rel} became looser: {old[1]:o} -> {mode:o}"
    final = cli("reset")
    assert final.code == 0, final.all
    assert cli("check", "--skip-db-check").code == 0


@pytest.mark.parametrize("value", ["nan", "-5", "inf"])
def test_lock_timeout_must_be_a_sane_number(cli: Cli, project: Path, value: str) -> None:
    for args in ([*INIT, "--lock-timeout", value], ["reset", "--lock-timeout", value]):
        run = cli(*args, env=ENV)
        assert run.code == 2 and "--lock-timeout" in run.err, args
    assert list(project.iterdir()) == []


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_a_bad_lock_file_is_reported_and_reset_moves_it_aside(
    cli: Cli, project: Path, tmp_path: Path, kind: str
) -> None:
    assert cli(*INIT, env=ENV).code == 0
    lock = project / LOCK
    lock.unlink()
    outside = tmp_path / "elsewhere"
    outside.write_text("not ours")
    if kind == "symlink":
        lock.symlink_to(outside)
    else:
        os.mkfifo(lock)
    blocked = cli(*INIT, env=ENV)
    assert blocked.code == 1 and "run lock" in blocked.err and "Traceback" not in blocked.all
    assert "bug" not in blocked.err
    assert cli("check", "--skip-db-check").code == 1
    repaired = cli("reset")
    assert repaired.code == 0, repaired.all
    assert lock.is_file() and not lock.is_symlink()
    assert outside.read_text() == "not ours"
    assert cli("check", "--skip-db-check").code == 0
