"""Temp files left behind by an interrupted write: found by check, archived by init and reset.

fsops.write_file writes `.NAME.PID-TOKEN.tmp` beside NAME and renames it into place; a SIGKILL or
a power loss in between leaves that file behind, with NAME's mode and often a secret (.env, token
files). Only a regular file whose name has exactly that form, for a NAME that fsops really writes
in that folder, counts as ours: a user's own file, a symlink or a folder is never touched. A file
whose PID is a running process other than this one may be a write in progress and is left alone;
otherwise the run lock, held while a plan is applied, guarantees no run of ours is writing it.
Archive folders are not searched: they already keep everything, privately, and walking their
files/ would cost as much as the data they hold.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import ClassVar

from recio_setup.errors import PROGRAM, RecioError
from recio_setup.result import ActionRecord, Check, Status
from recio_setup.runtime.kalshi import AUTH_FILE, KEY_FILE
from recio_setup.runtime.paths import KALSHI_ENVIRONMENTS, Paths
from recio_setup.tree.datatree import table
from recio_setup.tree.fsentry import Conflict, Found, env_link_target
from recio_setup.tree.fsops import TEMP_TOKEN_BYTES, Tree
from recio_setup.tree.plan import ApplyContext, ArchiveEntry, Plan

# The inverse of fsops.temp_name: "." NAME "." PID "-" TOKEN (lowercase hex) ".tmp".
TEMP_NAME = re.compile(
    rf"\.(?P<target>.+)\.(?P<pid>[1-9][0-9]{{0,9}})-[0-9a-f]{{{2 * TEMP_TOKEN_BYTES}}}\.tmp"
)
# cli.write_crash_log's names: recio-setup-crash-<UTC stamp>-<pid>.log
CRASH_LOG = re.compile(r"recio-setup-crash-[0-9]{8}T[0-9]{6}Z-[0-9]+\.log")
SECRET_MODE_BITS = 0o077
FIX = f"`{PROGRAM} reset` (or `{PROGRAM} init`) moves them into the archive"


@dataclass(frozen=True)
class Leftover:
    rel: str
    target: str  # the project-relative path the interrupted write was for
    pid: int
    found: Found
    secret: bool  # the target holds secrets: the temp file must be private too
    in_use: bool  # its PID is a running process other than this one


def pid_running(pid: int) -> bool:
    """Whether pid is a running process other than this one (which holds the lock and is not
    writing it: a leftover with our own PID is from an earlier process that had the same number)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except (OverflowError, OSError):
        return False  # not a possible PID
    return True


def _written_names(tree: Tree, paths: Paths) -> dict[str, list[tuple[re.Pattern[str], bool]]]:
    """Every folder fsops writes into (outside the archives), with the names it writes there."""
    targets: dict[str, list[tuple[re.Pattern[str], bool]]] = {}

    def add(rel: str, secret: bool) -> None:
        path = PurePosixPath(rel)
        folder = "" if str(path.parent) == "." else str(path.parent)
        targets.setdefault(folder, []).append((re.compile(re.escape(path.name)), secret))

    add(paths.env_rel, True)
    if tree.inspect(paths.env_rel).kind == "symlink":
        # A link out of the project is never written through, so there is nothing to find.
        with contextlib.suppress(RecioError):
            add(env_link_target(paths.root, paths.env_rel), True)
    add(paths.manifest_rel, False)
    add(paths.config_json_rel, False)
    for entry in table(paths.user):
        if entry.kind == "file":
            add(entry.rel, entry.mode & SECRET_MODE_BITS == 0)
    for env in KALSHI_ENVIRONMENTS:
        for name in (AUTH_FILE, KEY_FILE):  # credentials add writes them (the key's copy is 0600)
            add(f"{paths.kalshi_credentials_rel}/{env}/{name}", True)
    targets.setdefault(paths.logs_rel, []).append((CRASH_LOG, False))
    return targets


def find_leftovers(tree: Tree, paths: Paths) -> list[Leftover]:
    """Our temp files, by lstat only: one listing per folder, nothing read or followed."""
    found: list[Leftover] = []
    for folder, names in _written_names(tree, paths).items():
        try:
            entries = tree.list_entries(folder)
        except (RecioError, OSError):
            continue  # an unreachable folder: the data-tree checks report it
        for name, entry in entries:
            match = TEMP_NAME.fullmatch(name)
            if match is None or entry.kind != "file":
                continue
            target = match["target"]
            secret = [s for pattern, s in names if pattern.fullmatch(target)]
            if secret:
                rel = f"{folder}/{name}" if folder else name
                target_rel = f"{folder}/{target}" if folder else target
                pid = int(match["pid"])
                found.append(Leftover(rel, target_rel, pid, entry, secret[0], pid_running(pid)))
    return found


@dataclass
class ArchiveLeftover(ArchiveEntry):
    """Move a leftover temp file into the archive, if it is still the very file planned."""

    expect: Found | None = None
    gone: bool = False
    kind: ClassVar[str] = "archive"

    def apply(self, ctx: ApplyContext) -> str | None:
        now = ctx.tree.inspect(self.path)
        if now.kind == "missing":
            self.gone = True
            return None
        if self.expect is None or (now.kind, now.dev, now.ino) != (
            "file",
            self.expect.dev,
            self.expect.ino,
        ):
            raise Conflict(f"{self.path} was replaced while this run was working; left as it is")
        return super().apply(ctx)

    def record(self, state: str, detail: str | None = None) -> ActionRecord:
        if self.gone:  # removed by someone else meanwhile: nothing to do, nothing went wrong
            return super().record("skipped", "it was already gone")
        return super().record(state, detail)


def _reason(leftover: Leftover) -> str:
    return (
        f"temp file left by an interrupted write of {leftover.target} (PID {leftover.pid} is "
        "not running)"
    )


def _in_use(leftover: Leftover) -> Check:
    detail = (
        f"PID {leftover.pid} is running (the writer, or a process that reused its number): "
        "possibly a write in progress, so it is left as it is"
    )
    return Check(
        "tree.temp_file", f"temp file {leftover.rel}", "info", detail, None, {"path": leftover.rel}
    )


def plan_leftovers(tree: Tree, paths: Paths) -> Plan:
    """For init and reset: archive each leftover whose writer is gone; note the others."""
    plan = Plan()
    for leftover in find_leftovers(tree, paths):
        if leftover.in_use:
            plan.note(_in_use(leftover))
        else:
            plan.add(ArchiveLeftover(leftover.rel, _reason(leftover), expect=leftover.found))
    return plan


def leftover_checks(tree: Tree, paths: Paths) -> list[Check]:
    """For check: a warning naming the leftovers (a failure if one holding secrets is readable
    by others), and information about temp files that may belong to a write in progress."""
    leftovers = find_leftovers(tree, paths)
    stale = [leftover for leftover in leftovers if not leftover.in_use]
    checks = [_in_use(leftover) for leftover in leftovers if leftover.in_use]
    if not stale:
        return checks
    exposed = [
        leftover.rel
        for leftover in stale
        if leftover.secret and (leftover.found.mode or 0) & SECRET_MODE_BITS
    ]
    shown = ", ".join(leftover.rel for leftover in stale[:5])
    more = f" and {len(stale) - 5} more" if len(stale) > 5 else ""
    detail = f"{len(stale)} temp file(s) left by interrupted writes: {shown}{more}"
    if exposed:
        detail += f"; readable by others although they may hold secrets: {', '.join(exposed)}"
    data = {"paths": [leftover.rel for leftover in stale], "exposed": exposed}
    status: Status = "fail" if exposed else "warn"
    return [
        Check("tree.temp_files", "leftover temp files", status, detail, FIX, data, "reset"),
        *checks,
    ]
