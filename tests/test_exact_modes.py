"""Modes are exact, setuid, setgid and sticky bits included, for every file the tool writes or
checks, whatever the umask (issue 11, item 7)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.test_reset import ENV, INIT, MANIFEST, USER

CONFIG = "backend/core/config/config.json"
LOCK = "backend/data/locks/bootstrap.lock"


@pytest.fixture
def ready(cli: Cli, project: Path) -> Path:
    run = cli(*INIT, env=ENV)
    assert run.code == 0, run.all
    return project


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_setuid_config_json_is_rewritten_without_the_bit(ready: Path, cli: Cli) -> None:
    (ready / CONFIG).chmod(0o4777)
    run = cli(*INIT[:-1], "127.0.0.2", env=ENV)  # a new host: config.json is regenerated
    assert run.code == 0, run.all
    assert b"127.0.0.2" in (ready / CONFIG).read_bytes()
    assert mode_of(ready / CONFIG) == 0o644


def test_setuid_setgid_and_sticky_bits_are_deviations(ready: Path, cli: Cli) -> None:
    (ready / CONFIG).chmod(0o4644)
    (ready / ".env").chmod(0o2600)
    token = ready / USER / "auth_tokens.json"
    token.chmod(0o1600)
    folder = ready / "backend/data/historical_data"
    folder.chmod(0o2755)

    check = cli("check", "--skip-db-check", "--json")
    assert check.code == 1
    failed = {c["name"] for c in check.json()["result"]["checks"] if c["status"] != "ok"}
    assert {f"config {CONFIG}", ".env mode", f"data tree: {USER}/auth_tokens.json"} <= failed
    assert "data tree: backend/data/historical_data" in failed

    assert cli(*INIT, env=ENV).code == 0
    assert mode_of(ready / CONFIG) == 0o644
    assert mode_of(ready / ".env") == 0o600
    assert mode_of(token) == 0o600
    assert mode_of(folder) == 0o755
    assert cli("check", "--skip-db-check").code == 0


def test_a_world_writable_manifest_fails_check_and_init_fixes_it(ready: Path, cli: Cli) -> None:
    (ready / MANIFEST).chmod(0o666)
    check = cli("check", "--skip-db-check")
    assert check.code == 1 and MANIFEST in check.all and "0666" in check.all
    assert cli(*INIT, env=ENV).code == 0
    assert mode_of(ready / MANIFEST) == 0o644
    assert cli("check", "--skip-db-check").code == 0


def test_the_lock_file_is_0644_whatever_the_umask(cli: Cli, project: Path) -> None:
    run = cli(*INIT, env=ENV, umask=0o777)
    assert run.code == 0, run.all
    assert mode_of(project / LOCK) == 0o644


def test_a_lock_file_left_at_0000_is_put_right(ready: Path, cli: Cli) -> None:
    (ready / LOCK).chmod(0)
    check = cli("check", "--skip-db-check")
    assert check.code == 0 and "0000" in check.all  # a warning: the lock still works
    assert cli(*INIT, env=ENV).code == 0
    assert mode_of(ready / LOCK) == 0o644
