"""Temp files an interrupted write leaves behind: check warns, init and reset archive them.

Leftover names come from fsops itself: a writer really killed mid-write, or fsops.temp_name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from recio_setup.tree.fsops import TEMP_TOKEN_BYTES, temp_name
from recio_setup.tree.leftovers import TEMP_NAME, pid_running
from tests.conftest import Cli, tree_snapshot
from tests.test_reset import ENV, INIT, USER

CONFIG = "backend/core/config"
# A writer that stops for good at its first fsync of a file: the temp file is complete, not yet
# renamed into place; that is where a SIGKILL or a power loss leaves it behind.
STALLING_WRITER = """\
import os, stat, sys, time
real_fsync = os.fsync
def stall(fd):
    if stat.S_ISREG(os.fstat(fd).st_mode):
        print("stalled", flush=True)
        time.sleep(300)
    real_fsync(fd)
os.fsync = stall
from recio_setup.cli.app import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The PID of a process that has exited."""
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    assert not pid_running(done.pid)
    return done.pid


@pytest.fixture
def live_pid() -> Iterator[int]:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        yield sleeper.pid
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.fixture
def ready(cli: Cli) -> Path:
    run = cli(*INIT, env=ENV)
    assert run.code == 0, run.all
    return cli.root


def leave(
    project: Path, target: str, pid: int, content: bytes = b"half-written", mode: int = 0o600
) -> str:
    """Create the temp file fsops would have left beside target; return its relative path."""
    folder, _, name = target.rpartition("/")
    rel = "/".join(filter(None, [folder, temp_name(name, pid, os.urandom(TEMP_TOKEN_BYTES))]))
    path = project / rel
    path.write_bytes(content)
    path.chmod(mode)
    return rel


def archived(project: Path, rel: str) -> list[Path]:
    return [p for p in (project / "backend/data/archives").glob(f"*/files/{rel}") if p.is_file()]


def check_json(cli: Cli) -> tuple[int, list[dict[str, object]]]:
    run = cli("check", "--skip-db-check", "--json")
    return run.code, run.json()["result"]["checks"]


def leftover_check(checks: list[dict[str, object]]) -> dict[str, object] | None:
    return next((c for c in checks if c["name"] == "leftover temp files"), None)


@pytest.mark.parametrize("name", [".env", "config.json", "MASTER_PORT_MANIFEST.json", "a.b-1.tmp"])
def test_the_pattern_is_the_inverse_of_fsops_temp_name(name: str) -> None:
    for pid in (1, os.getpid(), 4194304):
        match = TEMP_NAME.fullmatch(temp_name(name, pid, os.urandom(TEMP_TOKEN_BYTES)))
        assert match is not None, name
        assert (match["target"], int(match["pid"])) == (name, pid)


def test_a_writer_killed_mid_write_leaves_a_temp_file_that_check_names_and_init_archives(
    cli: Cli, project: Path
) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", STALLING_WRITER, *INIT],
        env=cli.env(ENV),
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "stalled\n"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.communicate()
    # .env is the first file init writes: its temp file, complete with the password, is left.
    assert not (project / ".env").exists()
    [left] = [p for p in project.iterdir() if p.name.startswith("..env.")]
    match = TEMP_NAME.fullmatch(left.name)
    assert match is not None and int(match["pid"]) == writer.pid
    assert b"pw-for-reset-tests" in left.read_bytes() and left.stat().st_mode & 0o777 == 0o600

    code, checks = check_json(cli)
    found = leftover_check(checks)
    assert found is not None and found["status"] == "warn", checks
    assert left.name in str(found["detail"]) and "reset" in str(found["fix"])
    assert code == 1  # .env is missing: that, not the leftover, fails the check

    run = cli(*INIT, env=ENV)
    assert run.code == 0, run.all
    assert not left.exists()
    [kept] = archived(project, left.name)
    assert b"pw-for-reset-tests" in kept.read_bytes()
    record = json.loads((kept.parents[1] / "record.json").read_text())
    assert [e["from"] for e in record["entries"]] == [left.name]
    assert "interrupted write of .env" in record["entries"][0]["reason"]
    code, checks = check_json(cli)
    assert code == 0 and leftover_check(checks) is None, checks


def test_check_warns_about_every_place_fsops_writes_and_still_exits_0(
    cli: Cli, ready: Path, dead_pid: int
) -> None:
    rels = [
        leave(ready, ".env", dead_pid, b"POSTGRES_PASSWORD=old\n"),
        leave(ready, f"{CONFIG}/config.json", dead_pid, mode=0o644),
        leave(ready, f"{CONFIG}/MASTER_PORT_MANIFEST.json", dead_pid, mode=0o644),
        leave(ready, f"{USER}/auth_tokens.json", dead_pid),
        leave(ready, f"{USER}/device_tokens.json", dead_pid),
        leave(ready, f"{USER}/credentials/kalshi-credentials/demo/kalshi.pem", dead_pid),
        leave(ready, f"{USER}/credentials/kalshi-credentials/prod/kalshi-auth.txt", dead_pid),
    ]
    code, checks = check_json(cli)
    found = leftover_check(checks)
    assert code == 0 and found is not None and found["status"] == "warn", checks
    assert sorted(found["data"]["paths"]) == sorted(rels)  # type: ignore[index]
    text = cli("check", "--skip-db-check")
    assert text.code == 0 and "leftover temp files" in text.out and rels[0] in text.out


def test_a_secret_leftover_readable_by_others_fails_check(
    cli: Cli, ready: Path, dead_pid: int
) -> None:
    rel = leave(ready, ".env", dead_pid, b"POSTGRES_PASSWORD=old\n", mode=0o644)
    leave(ready, f"{CONFIG}/config.json", dead_pid, mode=0o644)  # not secret: 0644 is its mode
    code, checks = check_json(cli)
    found = leftover_check(checks)
    assert code == 1 and found is not None and found["status"] == "fail", checks
    assert found["data"]["exposed"] == [rel]  # type: ignore[index]


def test_a_leftover_beside_the_target_of_an_env_symlink_is_found(
    cli: Cli, project: Path, dead_pid: int
) -> None:
    (project / "secrets").mkdir()
    (project / ".env").symlink_to("secrets/prod.env")
    assert cli(*INIT, env=ENV).code == 0
    rel = leave(project, "secrets/prod.env", dead_pid)
    assert leftover_check(check_json(cli)[1]) is not None
    assert cli(*INIT, env=ENV).code == 0
    assert not (project / rel).exists() and archived(project, rel)


def test_a_crash_log_leftover_is_found(project: Path, cli: Cli, dead_pid: int) -> None:
    from recio_setup.cli import app as cli_module
    from recio_setup.cli.output import Output

    try:
        raise RuntimeError("planted")
    except RuntimeError:
        log = Path(cli_module.write_crash_log(project, Output(quiet=True)))
    assert log.parent == project / "logs"
    rel = leave(project, f"logs/{log.name}", dead_pid)
    assert cli(*INIT, env=ENV).code == 0
    assert not (project / rel).exists() and archived(project, rel)


def test_reset_archives_leftovers_and_undo_puts_them_back(
    cli: Cli, ready: Path, dead_pid: int
) -> None:
    rel = leave(ready, f"{USER}/auth_tokens.json", dead_pid, b'{"half": ')
    run = cli("reset", "--json")
    assert run.code == 0, run.all
    actions = run.json()["result"]["actions"]
    assert [(a["kind"], a["path"], a["state"]) for a in actions] == [("archive", rel, "done")]
    assert not (ready / rel).exists()
    [kept] = archived(ready, rel)
    assert kept.read_bytes() == b'{"half": ' and "-reset" in str(kept)
    undo = cli("reset", "--undo", "--yes")
    assert undo.code == 0, undo.all
    assert (ready / rel).read_bytes() == b'{"half": '


def test_dry_runs_show_the_action_and_write_nothing(cli: Cli, ready: Path, dead_pid: int) -> None:
    rel = leave(ready, ".env", dead_pid)
    before = tree_snapshot(ready)
    for args in ([*INIT, "--dry-run"], ["reset", "--dry-run"]):
        run = cli(*args, "--json", env=ENV)
        assert run.code == 0, run.all
        [planned] = [a for a in run.json()["result"]["actions"] if a["path"] == rel]
        assert planned["state"] == "planned" and planned["kind"] == "archive"
        assert "interrupted write of .env" in planned["reason"]
        assert tree_snapshot(ready) == before, args


def test_a_symlink_or_folder_with_a_temp_name_is_not_followed_or_moved(
    cli: Cli, ready: Path, tmp_path: Path, dead_pid: int
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    link = ready / temp_name(".env", dead_pid, b"\x01\x02\x03\x04")
    link.symlink_to(outside)
    folder = ready / CONFIG / temp_name("config.json", dead_pid, b"\x05\x06\x07\x08")
    folder.mkdir()
    assert leftover_check(check_json(cli)[1]) is None
    for args in (INIT, ("reset",)):
        run = cli(*args, env=ENV)
        assert run.code == 0, run.all
    assert link.is_symlink() and os.readlink(link) == str(outside)
    assert outside.read_text() == "not ours" and folder.is_dir()
    assert not list((ready / "backend/data/archives").glob("*/files"))


def test_user_files_with_similar_names_are_untouched(cli: Cli, ready: Path, dead_pid: int) -> None:
    token = os.urandom(TEMP_TOKEN_BYTES).hex()
    near = {
        "": [
            f".env.{dead_pid}-{token}.tmp",  # the form for a file called "env", not ".env"
            f"..env.local.{dead_pid}-{token}.tmp",  # fsops never writes .env.local
            f"..env.{dead_pid}-{token[:-1]}.tmp",  # token too short
            f"..env.{dead_pid}-{token.upper()}x.tmp",  # not lowercase hex
            f"..env.0{dead_pid}-{token}.tmp",  # not how a PID is written
            f"..env.{dead_pid}-{token}.tmp.bak",
            f"..env.{dead_pid}-{token}.temp",
            f".config.json.{dead_pid}-{token}.tmp",  # config.json is not written in the root
        ],
        CONFIG: [f"..env.{dead_pid}-{token}.tmp", f".notes.txt.{dead_pid}-{token}.tmp"],
        "backend/data/users": [f".auth_tokens.json.{dead_pid}-{token}.tmp"],  # wrong folder
    }
    for folder, names in near.items():
        for name in names:
            (ready / folder / name).write_text("mine")
    assert leftover_check(check_json(cli)[1]) is None
    for args in (INIT, ("reset",), ("reset", "--all", "--yes")):
        assert cli(*args, env=ENV).code == 0, args
    for folder, names in near.items():
        for name in names:
            assert (ready / folder / name).read_text() == "mine", name


def test_a_temp_file_of_a_running_process_is_left_alone(
    cli: Cli, ready: Path, live_pid: int
) -> None:
    rel = leave(ready, ".env", live_pid)
    code, checks = check_json(cli)
    assert code == 0 and leftover_check(checks) is None
    [info] = [c for c in checks if c["name"] == f"temp file {rel}"]
    assert info["status"] == "info" and f"PID {live_pid} is running" in str(info["detail"])
    for args in (INIT, ("reset",)):
        assert cli(*args, env=ENV).code == 0
        assert (ready / rel).read_bytes() == b"half-written", args


def test_a_leftover_replaced_after_planning_is_not_moved(ready: Path, dead_pid: int) -> None:
    from recio_setup.runtime.paths import Paths
    from recio_setup.tree.archive import Archive
    from recio_setup.tree.fsops import Tree
    from recio_setup.tree.leftovers import plan_leftovers
    from recio_setup.tree.plan import ApplyContext, apply_plan

    replaced = leave(ready, ".env", dead_pid)
    gone = leave(ready, f"{CONFIG}/config.json", dead_pid)
    with Tree(ready) as tree:
        plan = plan_leftovers(tree, Paths(ready))
        assert sorted(a.path for a in plan.actions) == sorted([replaced, gone])
        (ready / replaced).unlink()
        (ready / replaced).symlink_to(ready / ".env")  # swapped in between plan and apply
        (ready / gone).unlink()
        records = apply_plan(plan, ApplyContext(tree, Archive(tree, "init")))
    states = {r.path: (r.state, r.detail) for r in records}
    assert states[replaced][0] == "failed" and "replaced" in str(states[replaced][1])
    assert states[gone] == ("skipped", "it was already gone")
    assert (ready / replaced).is_symlink() and not archived(ready, replaced)
    assert not pid_running(os.getpid())  # our own PID: an earlier process's, never our write


def test_reset_all_dry_run_lists_a_leftover_in_the_user_folder_once(
    cli: Cli, ready: Path, dead_pid: int
) -> None:
    rel = leave(ready, f"{USER}/auth_tokens.json", dead_pid)
    (ready / USER / "accounts").chmod(0o777)  # a repair inside what --all archives
    run = cli("reset", "--all", "--dry-run", "--json")
    assert run.code == 0, run.all
    paths = [action["path"] for action in run.json()["result"]["actions"]]
    assert paths.count(rel) == 1, paths
    assert f"{USER}/accounts" in paths  # archived by --all, not also re-moded
    assert all(
        not (p.startswith(f"{USER}/accounts/") or p == f"{USER}/accounts") or paths.count(p) == 1
        for p in paths
    ), paths
