"""An ordinary user, any umask: exact modes, and what the user may not do is a finding or a clear
error naming the path and the fix, never a traceback (issue 11, item 11).

The tests need a user without root's powers. Run as root, they switch to `nobody` in the child
(setuid in preexec_fn), in a temp folder outside pytest's private one, with an interpreter that
user can run; run as an ordinary user, they use that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from recio_setup.tree.datatree import table
from tests.conftest import GUARD_DIR, REPO, SCRUBBED, Run
from tests.test_reset import INIT

USER = "user_0001"
UNPRIVILEGED = "nobody"


def _python_for(uid: int, gid: int) -> str | None:
    """An interpreter (this one, or the system's of the same version) the user can run."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/python{version}", "/usr/bin/python3"):
        try:
            probe = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                preexec_fn=lambda: _become(uid, gid, 0o022),
                check=False,
            )
        except OSError:
            continue  # missing, or not executable by that user (under /root, say)
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


def _become(uid: int, gid: int, umask: int) -> None:
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    os.umask(umask)


@dataclass
class UserCli:
    """The CLI run as an ordinary user with a given umask, in a project that user owns."""

    root: Path
    uid: int
    gid: int
    python: str
    code: Path  # a copy of the package the user can read, wherever the checkout is

    def __call__(self, *args: str, umask: int = 0o022) -> Run:
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        paths = [str(self.code), sysconfig.get_paths()["purelib"], str(self.code / "guard")]
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(paths),
                "HOME": str(self.root.parent),
                "RECIO_SETUP_LAUNCHER_ROOT": str(self.root),
                "POSTGRES_PASSWORD": "pw-for-unprivileged-tests",
                "COLUMNS": "200",
            }
        )
        done = subprocess.run(
            [self.python, "-m", "recio_setup", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            timeout=60,
            preexec_fn=lambda: _become(self.uid, self.gid, umask),
            check=False,
        )
        return Run(done.returncode, done.stdout, done.stderr)


def _readable_code(folder: Path) -> Path:
    """The package, its templates, python-dotenv and the test guard, copied where the user can
    read them: a checkout (and its venv) under a private folder, as `mktemp -d` makes, is out of
    its reach. These runs need nothing else (no terminal, no database, the host given)."""
    import dotenv

    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "recio_setup", folder / "recio_setup", ignore=skip)
    shutil.copytree(REPO / "templates", folder / "templates")
    shutil.copytree(Path(dotenv.__file__).parent, folder / "dotenv", ignore=skip)
    shutil.copytree(GUARD_DIR, folder / "guard", ignore=skip)
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


@pytest.fixture
def user_cli() -> Iterator[UserCli]:
    if os.geteuid() == 0:
        account = pwd.getpwnam(UNPRIVILEGED)
        uid, gid = account.pw_uid, account.pw_gid
    else:
        uid, gid = os.geteuid(), os.getegid()
    python = _python_for(uid, gid)
    if python is None:
        pytest.skip(f"no Python {sys.version_info[:2]} that uid {uid} can run")
    # pytest's own temp folder is private to root: the user could not even reach it.
    base = Path(tempfile.mkdtemp(prefix="recio-unprivileged-"))
    try:
        base.chmod(0o755)
        root = base / "project"
        root.mkdir()
        os.chown(root, uid, gid)
        yield UserCli(root, uid, gid, python, _readable_code(base / "code"))
    finally:
        for folder, dirs, _files in os.walk(base):
            for name in dirs:
                os.chmod(Path(folder) / name, 0o755)  # the tests leave folders at 0000
        shutil.rmtree(base)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def assert_clear_failure(run: Run) -> None:
    """Exit 1 with a message and a fix, not a crash."""
    assert run.code == 1, run.all
    assert "Traceback" not in run.all and "unexpected error" not in run.all, run.all


def test_init_under_umask_777_gives_every_entry_its_exact_mode(user_cli: UserCli) -> None:
    run = user_cli(*INIT, umask=0o777)
    assert run.code == 0, run.all
    root = user_cli.root
    for entry in table(USER):
        assert mode_of(root / entry.rel) == entry.mode, entry.rel
    assert mode_of(root / ".env") == 0o600
    assert mode_of(root / "backend/core/config") == 0o755
    assert mode_of(root / "backend/core/config/config.json") == 0o644
    assert mode_of(root / "backend/data/locks/bootstrap.lock") == 0o644
    assert user_cli("check", "--skip-db-check", umask=0o777).code == 0
    assert user_cli(*INIT, umask=0o777).code == 0


def test_folders_left_at_0000_by_an_earlier_crash_are_repaired(user_cli: UserCli) -> None:
    root = user_cli.root
    for name in ("backend", "logs"):
        (root / name).mkdir(mode=0)
        os.chown(root / name, user_cli.uid, user_cli.gid)
        (root / name).chmod(0)

    check = user_cli("check", "--skip-db-check")
    assert_clear_failure(check)
    assert "backend: mode 0000" in check.all
    run = user_cli(*INIT)
    assert run.code == 0, run.all
    assert mode_of(root / "backend") == 0o755 and mode_of(root / "logs") == 0o755
    assert user_cli("check", "--skip-db-check").code == 0


def test_a_read_only_project_folder_is_a_clear_error(user_cli: UserCli) -> None:
    root = user_cli.root
    root.chmod(0o555)
    run = user_cli(*INIT)
    assert_clear_failure(run)
    assert f"cannot create backend: permission denied at {root}/backend" in run.err
    assert "chown" in run.err
    assert os.listdir(root) == []
    assert_clear_failure(user_cli("check", "--skip-db-check"))


def test_an_unreadable_users_folder_is_a_finding_naming_it(user_cli: UserCli) -> None:
    assert user_cli(*INIT).code == 0
    users = user_cli.root / "backend/data/users"
    os.chown(users, 0, 0)
    users.chmod(0)

    check = user_cli("check", "--skip-db-check", "--json")
    assert_clear_failure(check)
    failed = {c["name"]: c for c in check.json()["result"]["checks"] if c["status"] == "fail"}
    denied = failed[f"data tree: backend/data/users/{USER}"]
    assert "permission denied on backend/data/users" in denied["detail"]
    assert "chown" in denied["fix"]
    for args in (INIT, ("reset", "--yes")):
        assert_clear_failure(user_cli(*args))


def test_a_user_folder_locked_to_its_owner_is_opened_and_completed_in_one_run(
    user_cli: UserCli,
) -> None:
    assert user_cli(*INIT).code == 0
    user_folder = user_cli.root / f"backend/data/users/{USER}"
    (user_folder / "auth_tokens.json").unlink()
    user_folder.chmod(0)

    run = user_cli(*INIT)
    assert run.code == 0, run.all
    assert mode_of(user_folder) == 0o700
    assert (user_folder / "auth_tokens.json").read_bytes() == b"{}\n"
    assert user_cli("check", "--skip-db-check").code == 0
