"""reset and its undo under SIGKILL at every file-changing step: undo always puts every byte back.

The kill comes from an audit hook in tests/guard/sitecustomize.py (RECIO_TEST_KILL_AT=N): the CLI
process kills itself just before its Nth open-for-write, mkdir, rename, chmod, link or unlink,
which is every state a power loss could leave behind.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from tests.conftest import Cli, Run, tree_snapshot

INIT = ("--non-interactive", "--skip-db-check", "--host", "127.0.0.1")
ENV = {"POSTGRES_PASSWORD": "pw-for-fault-tests"}
USER = "backend/data/users/user_0001"
NOT_COMPARED = ("backend/data/archives", "backend/data/locks")


def make_ready(root: Path) -> None:
    root.mkdir()
    assert Cli(root)(*INIT, env=ENV).code == 0
    (root / USER / "trade_history" / "t1.json").write_text('{"trade": 1}')
    (root / USER / "active_trades" / "open.json").write_text('{"open": []}')
    (root / "backend/data/live_data/markets/m.json").write_text('{"m": 1}')
    key = root / USER / "credentials/kalshi-credentials/prod/kalshi.pem"
    key.write_text("PRIVATE KEY")
    key.chmod(0o600)


def compared(root: Path) -> dict[str, tuple[str, int, bytes | str | None]]:
    return {
        rel: entry
        for rel, entry in tree_snapshot(root).items()
        if not any(rel == skip or rel.startswith(f"{skip}/") for skip in NOT_COMPARED)
        and not rel.startswith(".recio-archive-")  # archives kept at the project root
    }


def run_killed_at(root: Path, at: int, *args: str, count_file: Path | None = None) -> Run:
    env = {**ENV, "RECIO_TEST_KILL_AT": str(at)}
    if count_file is not None:
        env["RECIO_TEST_KILL_COUNT"] = str(count_file)
    return Cli(root).process(*args, env=env)  # the kill injection is in the real process


def count_steps(template: Path, work: Path, *args: str) -> int:
    shutil.copytree(template, work, symlinks=True)
    count_file = work.parent / "count"
    run = run_killed_at(work, 0, *args, count_file=count_file)
    assert run.code == 0, run.all
    shutil.rmtree(work)
    return int(count_file.read_text())


def undo_restores_everything(root: Path, original: dict[str, object]) -> None:
    undo = Cli(root)("reset", "--undo", "--yes", env=ENV)
    assert undo.code == 0 or "no reset to undo" in undo.all, undo.all
    assert compared(root) == original, undo.all


@pytest.fixture(scope="module")
def ready_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template") / "project"
    make_ready(root)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("extra", [(), ("--include-credentials",)])
def test_reset_all_killed_at_every_step_is_undone_byte_for_byte(
    ready_template: Path, tmp_path: Path, extra: tuple[str, ...]
) -> None:
    args = ("reset", "--all", "--yes", *extra)
    original = compared(ready_template)
    steps = count_steps(ready_template, tmp_path / "count-run", *args)
    assert steps > 10
    for at in range(1, steps + 1):
        work = tmp_path / f"kill-{at}"
        shutil.copytree(ready_template, work, symlinks=True)
        killed = run_killed_at(work, at, *args)
        assert killed.code == -signal.SIGKILL, (at, killed.all)
        undo_restores_everything(work, original)
        shutil.rmtree(work)


@pytest.mark.slow
def test_an_interrupted_reset_is_resumed_by_the_next_reset_and_undone_as_one(
    ready_template: Path, tmp_path: Path
) -> None:
    args = ("reset", "--all", "--yes")
    original = compared(ready_template)
    steps = count_steps(ready_template, tmp_path / "count-run", *args)
    for at in range(2, steps + 1, 4):
        work = tmp_path / f"kill-{at}"
        shutil.copytree(ready_template, work, symlinks=True)
        assert run_killed_at(work, at, *args).code == -signal.SIGKILL
        again = Cli(work)("reset", "--yes", env=ENV)
        assert again.code == 0, (at, again.all)
        runs = [p for p in (work / "backend/data/archives").iterdir() if "-reset" in p.name]
        assert len(runs) <= 1, (at, runs)  # continued, not a second archive hiding the first
        undo_restores_everything(work, original)
        shutil.rmtree(work)


@pytest.mark.slow
def test_an_undo_killed_at_every_step_finishes_when_run_again(
    ready_template: Path, tmp_path: Path
) -> None:
    original = compared(ready_template)
    after_reset = tmp_path / "after-reset"
    shutil.copytree(ready_template, after_reset, symlinks=True)
    assert Cli(after_reset)("reset", "--all", "--yes", env=ENV).code == 0
    args = ("reset", "--undo", "--yes")
    steps = count_steps(after_reset, tmp_path / "count-run", *args)
    for at in range(1, steps + 1):
        work = tmp_path / f"kill-{at}"
        shutil.copytree(after_reset, work, symlinks=True)
        assert run_killed_at(work, at, *args).code == -signal.SIGKILL, at
        undo_restores_everything(work, original)
        shutil.rmtree(work)


def test_an_edit_made_while_undo_waits_for_the_lock_is_not_overwritten(
    ready_template: Path, tmp_path: Path
) -> None:
    import fcntl
    import subprocess
    import sys
    import time

    work = tmp_path / "project"
    shutil.copytree(ready_template, work, symlinks=True)
    cli = Cli(work)
    assert cli("reset", "--all", "--yes", env=ENV).code == 0
    lock = os.open(work / "backend/data/locks/bootstrap.lock", os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)
    undo = subprocess.Popen(
        [sys.executable, "-m", "recio_setup", "reset", "--undo", "--yes", "--lock-timeout", "30"],
        cwd=work,
        env=cli.env(ENV),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(1.5)  # undo has inspected the tree and is waiting for the lock
    fresh = work / USER / "trade_history" / "made-while-waiting.json"
    fresh.write_text('{"keep": "me"}')
    fcntl.flock(lock, fcntl.LOCK_UN)
    os.close(lock)
    out, _ = undo.communicate(timeout=60)
    assert undo.returncode == 1, out
    assert "changed since the reset" in out
    assert fresh.read_text() == '{"keep": "me"}'


def test_check_names_an_interrupted_reset_and_an_interrupted_undo(
    ready_template: Path, tmp_path: Path
) -> None:
    reset_all = ("reset", "--all", "--yes")
    halfway = count_steps(ready_template, tmp_path / "count-reset", *reset_all) // 2
    work = tmp_path / "project"
    shutil.copytree(ready_template, work, symlinks=True)
    cli = Cli(work)
    assert run_killed_at(work, halfway, *reset_all).code == -signal.SIGKILL

    check = cli("check", "--skip-db-check", env=ENV)

    assert check.code == 1, check.all
    assert "reset archived in backend/data/archives/" in check.all
    assert "interrupted halfway" in check.all and "reset --undo` to put back" in check.all

    assert cli("reset", "--yes", env=ENV).code == 0
    undo = ("reset", "--undo", "--yes")
    halfway = count_steps(work, tmp_path / "count-undo", *undo) // 2
    assert run_killed_at(work, halfway, *undo).code == -signal.SIGKILL

    check = cli("check", "--skip-db-check", env=ENV)

    assert check.code == 1, check.all
    assert "undo of the reset archived in" in check.all and "to finish it" in check.all


@pytest.mark.slow
def test_an_undo_killed_then_init_still_finishes_when_run_again(
    ready_template: Path, tmp_path: Path
) -> None:
    # init (or a service) recreates what the killed undo had moved aside: the next undo moves
    # that aside too, under a new name, and puts every original back.
    original = compared(ready_template)
    after_reset = tmp_path / "after-reset"
    shutil.copytree(ready_template, after_reset, symlinks=True)
    assert Cli(after_reset)("reset", "--all", "--yes", env=ENV).code == 0
    args = ("reset", "--undo", "--yes")
    steps = count_steps(after_reset, tmp_path / "count-run", *args)
    for at in range(2, steps + 1, 3):
        work = tmp_path / f"kill-{at}"
        shutil.copytree(after_reset, work, symlinks=True)
        assert run_killed_at(work, at, *args).code == -signal.SIGKILL, at
        assert Cli(work)(*INIT, env=ENV).code in (0, 1)
        undo_restores_everything(work, original)
        shutil.rmtree(work)


@pytest.mark.slow
@pytest.mark.parametrize("rel", ["backend", "backend/data"])
def test_the_undo_of_a_repaired_symlink_killed_at_every_step_finishes_when_run_again(
    tmp_path: Path, rel: str
) -> None:
    template = tmp_path / "template"
    make_ready(template)
    outside = tmp_path / "outside"
    shutil.move(str(template / rel), str(outside))
    (template / rel).symlink_to(outside)
    original = compared(template)
    assert Cli(template)("reset", env=ENV).code == 0
    args = ("reset", "--undo", "--yes")
    steps = count_steps(template, tmp_path / "count-run", *args)
    for at in range(1, steps + 1):
        work = tmp_path / f"kill-{at}"
        shutil.copytree(template, work, symlinks=True)
        assert run_killed_at(work, at, *args).code == -signal.SIGKILL, at
        undo_restores_everything(work, original)
        assert (work / rel).is_symlink(), at
        shutil.rmtree(work)
