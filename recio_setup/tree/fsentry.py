"""What stands at a path, seen without following symlinks, and what can stop the tree from
reaching or changing it: a symlink on the way, a change since planning, a permission."""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Concatenate, Literal, ParamSpec, Protocol, TypeVar

from recio_setup.errors import RecioError, StepFailed
from recio_setup.tree.modes import shares_its_inode

Kind = Literal["missing", "dir", "file", "symlink", "other", "blocked", "denied"]
# What the running user may not do here is reported with the path, never as a traceback.
DENIED_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)


class UnsafePath(RecioError):
    """A path could not be reached without following a symlink or crossing a non-folder."""


class Conflict(RecioError):
    """The tree changed between planning and applying; nothing was done for this entry."""


class Denied(StepFailed):
    """The running user may not do this at `where` (permissions, ownership, a read-only mount)."""

    def __init__(self, root: Path, where: str, doing: str, why: str) -> None:
        path = root / where if where else root
        super().__init__(
            f"cannot {doing}: {why} at {path}", hint=permission_hint(root), cause="permission"
        )
        self.where = where


def permission_hint(root: Path) -> str:
    """The fix for a permission problem in the project, naming the user who needs the rights."""
    try:
        user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        user = str(os.geteuid())
    return (
        f"the project folder must be readable and writable by {user}, who runs this: "
        f"`sudo chown -R {user} {root}` (or `chmod -R u+rwX {root}` as its owner), "
        "or run recio-setup as the user that owns it"
    )


@dataclass(frozen=True)
class Found:
    """What stands at a path, seen without following symlinks."""

    kind: Kind
    mode: int | None = None
    size: int | None = None
    dev: int | None = None
    ino: int | None = None
    blocked_by: str | None = None
    link_target: str | None = None
    nlink: int | None = None
    uid: int | None = None

    @property
    def changeable(self) -> bool:
        """Whether this process may chmod it: its owner, or root."""
        return self.uid is None or os.geteuid() in (0, self.uid)

    @property
    def shares_its_inode(self) -> bool:
        return shares_its_inode(self.kind, self.nlink)

    @property
    def mode_text(self) -> str:
        return f"{self.mode:04o}" if self.mode is not None else "-"

    def describe(self) -> str:
        if self.shares_its_inode:
            return f"file {self.mode_text} with {self.nlink} hard links"
        if self.kind in ("dir", "file"):
            return f"{'folder' if self.kind == 'dir' else 'file'} {self.mode_text}"
        if self.kind == "symlink":
            return f"symlink to {self.link_target}"
        if self.kind == "blocked":
            return f"unreachable: {self.blocked_by} is not a real folder"
        if self.kind == "denied":
            return f"unreachable: permission denied on {self.blocked_by or '.'}"
        if self.kind == "other":
            return "special file (a FIFO, device or socket)"
        return self.kind


def found_from_stat(st: os.stat_result, link_target: str | None = None) -> Found:
    if stat.S_ISDIR(st.st_mode):
        kind: Kind = "dir"
    elif stat.S_ISREG(st.st_mode):
        kind = "file"
    elif stat.S_ISLNK(st.st_mode):
        kind = "symlink"
    else:
        kind = "other"
    mode = stat.S_IMODE(st.st_mode)
    return Found(
        kind, mode, st.st_size, st.st_dev, st.st_ino, None, link_target, st.st_nlink, st.st_uid
    )


@contextlib.contextmanager
def reporting_denied(root: Path, rel: str, doing: str) -> Iterator[None]:
    """Turn what the user may not do at rel into a Denied naming it and the fix."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in DENIED_ERRNOS:
            raise
        why = "read-only file system" if exc.errno == errno.EROFS else "permission denied"
        raise Denied(root, rel, f"{doing} {rel}", why) from exc


class _HasRoot(Protocol):
    @property
    def root(self) -> Path: ...


T = TypeVar("T", bound=_HasRoot)
P = ParamSpec("P")
R = TypeVar("R")
_OnRel = Callable[Concatenate[T, str, P], R]


def reports_denied(doing: str) -> Callable[[_OnRel[T, P, R]], _OnRel[T, P, R]]:
    """A Tree method on rel whose permission errors become a Denied naming rel and the fix."""

    def wrap(method: _OnRel[T, P, R]) -> _OnRel[T, P, R]:
        def run(tree: T, rel: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
            with reporting_denied(tree.root, rel, doing):
                return method(tree, rel, *args, **kwargs)

        run.__doc__ = method.__doc__
        return run

    return wrap


# .env may be a link to a file in the project, but never into what the tool itself manages.
MANAGED_TOP = ("backend", "logs", "venv")


def env_link_target(root: Path, rel: str) -> str:
    real_root = Path(os.path.realpath(root))
    target = Path(os.path.realpath(root / rel))
    if target == real_root or real_root not in target.parents:
        raise StepFailed(
            f"{rel} is a symlink to {target}, outside the project; refusing to write through it",
            hint="replace the link with a regular file, or point it at a file inside the project",
            cause="unsafe_symlink",
        )
    inside = str(target.relative_to(real_root))
    if inside.split("/")[0] in MANAGED_TOP:
        raise StepFailed(
            f"{rel} is a symlink to {inside}, a file recio-setup manages; refusing to write "
            ".env into it",
            hint="replace the link with a regular file, or point it outside backend/ and logs/",
            cause="unsafe_symlink",
        )
    return inside
