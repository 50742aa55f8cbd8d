"""A hard link never redirects a chmod or a write outside the project (issue 11, item 6).

A regular file the tool keeps that has more than one link shares its inode with a name the tool
does not know. check reports it; init and reset move the name into the archive and put a private
copy in its place: the other name keeps its inode, mode and content untouched. The tests run as
root, which may link any file whatever /proc/sys/fs/protected_hardlinks says.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.test_reset import ENV, INIT, MANIFEST, USER, archived_files

TOKEN = f"{USER}/auth_tokens.json"
KEY = f"{USER}/credentials/kalshi-credentials/prod/key.pem"
LOCK = "backend/data/locks/bootstrap.lock"


@pytest.fixture
def ready(cli: Cli, project: Path) -> Path:
    run = cli(*INIT, env=ENV)
    assert run.code == 0, run.all
    return project


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside the project, readable by all, like /etc/passwd."""
    path = tmp_path / "outside" / "victim"
    path.parent.mkdir()
    path.write_bytes(b"{}\n")
    path.chmod(0o644)
    return path


def link_in_place_of(project: Path, rel: str, victim: Path) -> None:
    """Replace rel by a hard link to victim (the original is moved aside, not deleted)."""
    path = project / rel
    path.rename(path.with_name(path.name + ".aside"))
    os.link(victim, path)


def state_of(path: Path) -> tuple[int, int, bytes]:
    st = path.stat()
    return stat.S_IMODE(st.st_mode), st.st_ino, path.read_bytes()


@pytest.mark.parametrize("command", ["reset", "init"])
@pytest.mark.parametrize("rel", [TOKEN, ".env", MANIFEST, KEY])
def test_a_hard_link_is_archived_and_never_chmod_ed(
    ready: Path, cli: Cli, victim: Path, rel: str, command: str
) -> None:
    if rel == KEY:
        (ready / KEY).write_bytes(b"key")
    if rel in (".env", MANIFEST):
        victim.write_bytes((ready / rel).read_bytes())  # shared with another checkout
    victim.chmod(0o644 if rel != KEY else 0o666)
    link_in_place_of(ready, rel, victim)
    before = state_of(victim)

    check = cli("check", "--skip-db-check", "--json")
    assert check.code == 1
    failing = [c for c in check.json()["result"]["checks"] if c["status"] == "fail"]
    assert any(rel in c["name"] + c["detail"] and "hard links" in c["detail"] for c in failing)

    run = cli(command, *(INIT if command == "init" else ("--yes",)), env=ENV)
    assert run.code == 0, run.all
    assert state_of(victim) == before and victim.stat().st_nlink == 2  # itself and the archive
    live = ready / rel
    assert live.stat().st_nlink == 1 and live.stat().st_ino != before[1]
    assert stat.S_IMODE(live.stat().st_mode) == (0o644 if rel == MANIFEST else 0o600)
    assert live.read_bytes() == before[2]
    assert archived_files(ready)[rel] == [before[2]]
    assert cli("check", "--skip-db-check").code == 0


def test_a_corrupt_hard_linked_token_file_is_replaced_without_chmod(
    ready: Path, cli: Cli, victim: Path
) -> None:
    victim.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    link_in_place_of(ready, TOKEN, victim)
    before = state_of(victim)
    assert cli("reset", "--yes", env=ENV).code == 0
    assert state_of(victim) == before
    assert (ready / TOKEN).read_bytes() == b"{}\n"
    assert stat.S_IMODE((ready / TOKEN).stat().st_mode) == 0o600


def test_a_hard_linked_lock_file_is_never_written(ready: Path, cli: Cli, victim: Path) -> None:
    victim.write_bytes(b"precious\n")
    link_in_place_of(ready, LOCK, victim)
    before = state_of(victim)

    init = cli(*INIT, env=ENV)
    assert init.code == 1 and "hard links" in init.all
    check = cli("check", "--skip-db-check")
    assert check.code == 1 and "run lock" in check.all
    assert cli("reset", "--yes", env=ENV).code == 0
    assert state_of(victim) == before
    assert cli(*INIT, env=ENV).code == 0
    assert state_of(victim) == before
    assert (ready / LOCK).stat().st_nlink == 1
