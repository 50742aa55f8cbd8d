"""Undoing a reset: put the most recent reset's archive back, refusing to clobber later changes.

reset records, beside what it moved into its archive, a fingerprint of what it left in each
place (kind, mode, size, content hash, and the listing of a folder). `reset --undo` compares each
place with its fingerprint: anything changed since the reset is refused unless --force. Nothing
is deleted here either: what the reset had created is moved into a new `-undo` archive, then the
archived originals are moved back.

An undo is write-ahead like the archive: the reset's record names its undo archive before the
first move, so an undo killed halfway is simply run again. It continues into the same undo
archive, and a place whose archived copy is already back counts as done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recio_setup.errors import PROGRAM, RecioError, StepFailed
from recio_setup.runtime.paths import Paths
from recio_setup.tree.archive import Archive, archived_path, utc_now
from recio_setup.tree.archive_home import ROOT_ARCHIVE_PREFIX, begin_at_root, is_at_root
from recio_setup.tree.fsops import Tree

FINGERPRINT_LIMIT = 2000  # entries listed per folder; a fresh tree has a few dozen


def fingerprint(tree: Tree, rel: str, ignored: str = "", depth: int = 0) -> dict[str, Any]:
    """What stands at rel, precisely enough to notice any later change.

    `ignored` (the run lock, which every run rewrites with its PID) is left out.
    """
    found = tree.inspect(rel)
    print_: dict[str, Any] = {"kind": found.kind, "mode": found.mode_text}
    if found.kind == "file":
        print_["size"] = found.size
        print_["sha256"] = tree.sha256(rel)
    elif found.kind == "symlink":
        print_["target"] = found.link_target
    elif found.kind == "dir" and depth < 8:
        names = tree.list_dir(rel)[:FINGERPRINT_LIMIT]
        print_["children"] = {
            name: fingerprint(tree, f"{rel}/{name}", ignored, depth + 1)
            for name in names
            if f"{rel}/{name}" != ignored
        }
    return print_


@dataclass
class Step:
    path: str
    detail: str
    done: bool


def reset_runs(tree: Tree, paths: Paths) -> list[str]:
    """Every reset run folder, newest first: in the archives, and any kept at the project root."""
    try:
        archived = [f"{paths.archives_rel}/{n}" for n in tree.list_dir(paths.archives_rel)]
    except RecioError:
        # A symlinked archives/ (reset repairs it; nothing in it is ours to trust) or one this
        # user cannot read (the data-tree checks name it).
        archived = []
    at_root = [name for name, _ in tree.list_entries("") if name.startswith(ROOT_ARCHIVE_PREFIX)]
    runs = [rel for rel in archived + at_root if rel.endswith("-reset") or "-reset-" in rel]
    return sorted(runs, key=_run_time, reverse=True)


def _run_time(run_rel: str) -> str:
    """The UTC time a run folder's name starts with, wherever the folder is."""
    return run_rel.rpartition("/")[2].removeprefix(ROOT_ARCHIVE_PREFIX)


def pending_resets(tree: Tree, paths: Paths) -> list[Archive]:
    """Reset runs not undone, newest first (unreadable records are not ours to act on)."""
    found = []
    for run_rel in reset_runs(tree, paths):
        try:
            archive = Archive.load(tree, run_rel)
        except RecioError:
            continue
        if archive.command == "reset" and not archive.info.get("undone_at"):
            found.append(archive)
    return found


def is_finished(archive: Archive) -> bool:
    # Records written before finished_at existed mark the end of a reset with "after".
    return "finished_at" in archive.info or "after" in archive.info


def interrupted_reset(tree: Tree, paths: Paths, exclude: str | None = None) -> Archive | None:
    """The newest reset (other than `exclude`) killed before it finished, or whose undo was."""
    for archive in pending_resets(tree, paths):
        if archive.run_rel != exclude and (not is_finished(archive) or undo_begun(archive)):
            return archive
    return None


def undo_begun(archive: Archive) -> bool:
    return "undo_archive" in archive.info


def latest_reset(tree: Tree, paths: Paths) -> Archive:
    """The newest reset archive that has not been undone yet."""
    pending = pending_resets(tree, paths)
    if pending:
        return pending[0]
    home = tree.inspect(paths.archives_rel)
    if home.kind not in ("dir", "missing"):
        raise StepFailed(
            f"there is no reset to undo: {paths.archives_rel} is not the archive folder "
            f"({home.describe()}), so nothing in it is trusted",
            hint=f"`{PROGRAM} reset` moves it aside and creates the real folder "
            "(`reset --undo` then puts it back)",
            cause="nothing_to_undo",
        )
    raise StepFailed(
        "there is no reset to undo",
        hint=f"`{PROGRAM} reset` archives what it "
        "replaces; only the most recent reset that is not undone yet can be undone",
        cause="nothing_to_undo",
    )


def undo_archive_for(tree: Tree, record: Archive, archives_rel: str) -> Archive:
    """The undo's own archive: the one an interrupted undo of this reset began, else a new one.

    It begins where the reset's archive is: at the project root when the reset replaced a
    folder that holds the archives (undoing it moves that folder aside).
    """
    begun = record.info.get("undo_archive")
    if isinstance(begun, str):
        try:
            return Archive.load(tree, begun)
        except RecioError:
            pass  # it never got its first entry: nothing of it to continue
    return Archive(tree, "undo", archives_rel)


def changed_since(tree: Tree, record: Archive, undo_archive: Archive, lock_rel: str) -> list[str]:
    """Places whose content differs from what the reset left there.

    A place whose archived copy is already gone is back in place (or was never moved), and a place
    that this very undo has moved aside is its own doing: neither is a later change.
    """
    after = record.info.get("after")
    if not isinstance(after, dict):
        return []  # an interrupted reset never recorded what it left
    moved_by_undo = {entry["from"] for entry in undo_archive.entries}
    changed = set()
    for entry in record.entries:
        rel = entry["from"]
        archived = archived_path(record.folder, entry)
        if rel in moved_by_undo or tree.inspect(archived).kind == "missing":
            continue
        expected = after.get(rel)
        if expected is not None and fingerprint(tree, rel, lock_rel) != expected:
            changed.add(rel)
    return sorted(changed)


def restore(tree: Tree, record: Archive, undo_archive: Archive) -> list[Step]:
    """Move the reset's originals back; what stands in their way goes to the undo archive."""
    if is_at_root(record.run_rel):
        begin_at_root(undo_archive)
    else:
        undo_archive.begin()
    record.write_record({"undo_archive": undo_archive.run_rel, "undo_started_at": utc_now()})
    steps = []
    for entry in reversed(record.entries):
        rel, archived = entry["from"], archived_path(record.folder, entry)
        if tree.inspect(archived).kind == "missing":
            if tree.inspect(rel).kind == "missing":
                steps.append(Step(rel, f"its archived copy {archived} is gone", False))
            else:
                steps.append(Step(rel, "already in place", True))
            continue
        if tree.inspect(rel).kind != "missing":
            undo_archive.move_in(rel, "created by the reset being undone")
        tree.move(archived, rel)
        steps.append(Step(rel, f"restored from {archived}", True))
    undo_archive.finish()
    record.write_record({"undone_at": utc_now()})
    return steps
