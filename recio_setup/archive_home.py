"""Repairing the folders the archive itself lives in: backend/, backend/data/, and its archives/.

When one of them is a symlink or a file, nothing can be archived under it. So reset parks the run
folder at the project root first (`.recio-archive-<time>-reset/`, 0700), records and moves the
offender into it, creates the real folders, and then moves the whole run folder to where archives
belong. A run killed in between leaves the parked folder with its record: the next reset moves it
home and resumes it, and `reset --undo` finds it where it is.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from recio_setup.archive import Archive, free_run_name, stamp
from recio_setup.paths import Paths

STAGED_PREFIX = ".recio-archive-"


def is_staged(run_rel: str | None) -> bool:
    return run_rel is not None and "/" not in run_rel and run_rel.startswith(STAGED_PREFIX)


def archive_home(paths: Paths) -> list[str]:
    """backend, backend/data, backend/data/archives: each must be a real folder."""
    parts = PurePosixPath(paths.archives_rel).parts
    return ["/".join(parts[: index + 1]) for index in range(len(parts))]


def repair_archive_home(archive: Archive, paths: Paths) -> str | None:
    """Move a symlink or file standing in the archive's home into `archive`; the rel it moved."""
    tree = archive.tree
    # A folder this user may not enter is reported by the plans, not moved.
    offender = next(
        (
            rel
            for rel in archive_home(paths)
            if tree.inspect(rel).kind not in ("dir", "missing", "denied")
        ),
        None,
    )
    if offender is None:
        return None
    if archive.run_rel is None:
        archive.begin(free_run_name(tree, "", f"{STAGED_PREFIX}{stamp()}-{archive.command}"))
    archive.move_in(offender, "it stood where a real folder belongs, holding the archive")
    move_home(archive, paths)
    return offender


def move_home(archive: Archive, paths: Paths) -> None:
    """Move a parked run folder to backend/data/archives/, creating the real folders."""
    if not is_staged(archive.run_rel):
        return
    archive.tree.ensure_dirs(paths.archives_rel, 0o755)
    name = archive.folder.removeprefix(STAGED_PREFIX)
    archive.relocate(free_run_name(archive.tree, paths.archives_rel, name))
