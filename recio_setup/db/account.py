"""Who runs the project-local PostgreSQL: the user, or, as root, an unprivileged account.

PostgreSQL refuses to run as root. As root (CI, containers) the server runs as the system
account `postgres` when there is one, else `nobody`; an existing cluster keeps the account that
owns its data folder. Nothing outside the cluster folder has its mode changed for it: a folder
that account cannot pass through is reported with the fix, not loosened.
"""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recio_setup.errors import StepFailed

ACCOUNTS = ("postgres", "nobody")


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int

    def run_as(self) -> dict[str, Any]:
        """subprocess arguments that drop root for this account (no supplementary groups)."""
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def may_search(self, st: os.stat_result) -> bool:
        """Whether this account may pass through a folder with this stat (no ACLs)."""
        return self._may(st, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)

    def may_run(self, tool: Path) -> bool:
        """Whether this account may reach and execute this program."""
        try:
            st = tool.stat()
        except OSError:
            return False
        reachable = first_closed_folder(tool.parent, self) is None
        return reachable and self._may(st, stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)

    def _may(self, st: os.stat_result, owner: int, group: int, other: int) -> bool:
        if st.st_uid == self.uid:
            return bool(st.st_mode & owner)
        if st.st_gid == self.gid:
            return bool(st.st_mode & group)
        return bool(st.st_mode & other)


def _account(entry: pwd.struct_passwd) -> Account:
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def server_account(data_folder: Path) -> Account | None:
    """None when this process is not root (the server runs as the user); else the account."""
    if os.geteuid() != 0:
        return None
    try:
        owner = data_folder.stat().st_uid
    except FileNotFoundError:
        owner = None
    if owner:  # an existing cluster's owner, unless root owns it (then it never ran)
        try:
            return _account(pwd.getpwuid(owner))
        except KeyError:
            return Account(str(owner), owner, data_folder.stat().st_gid)
    for name in ACCOUNTS:
        try:
            return _account(pwd.getpwnam(name))
        except KeyError:
            continue
    raise StepFailed(
        "running as root, and there is no unprivileged account to run PostgreSQL as "
        f"(PostgreSQL refuses root; looked for: {', '.join(ACCOUNTS)})",
        hint="create one (e.g. `useradd --system postgres`), or run as a normal user",
        cause="localdb_no_account",
    )


def first_closed_folder(path: Path, account: Account) -> Path | None:
    """The first folder from / down to `path` that `account` may not pass through, or None."""
    for folder in [*reversed(path.parents), path]:
        try:
            st = folder.stat()
        except OSError:
            return folder
        if not account.may_search(st):
            return folder
    return None


def require_reachable(path: Path, account: Account, what: str) -> None:
    closed = first_closed_folder(path, account)
    if closed is None:
        return
    try:
        mode = f"mode {closed.stat().st_mode & 0o777:04o}"
    except OSError as exc:
        mode = exc.strerror or "cannot be read"
    raise StepFailed(
        f"the account {account.name!r} that runs PostgreSQL (root may not) cannot reach {what} "
        f"{path}: {closed} is closed to it ({mode})",
        hint=f"move the project under a folder others may pass through, or give that account "
        f"passage yourself (`chmod o+x {closed}`); recio-setup never loosens a folder outside "
        "the project",
        cause="localdb_unreachable",
    )
