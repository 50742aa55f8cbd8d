"""Repairing the folders the archive itself lives in: backend/, backend/data/, and its archives/.

When one of them is a symlink or a file, nothing can be archived under it. So that reset keeps its
archive at the project root (`.recio-archive-<time>-reset/`, 0700): it records and moves the
offender there and creates the real folders. The archive stays at the root, outside what it
replaced, so that `reset --undo` can move the real folder aside (into an undo archive at the root
too) and put the symlink back.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from recio_setup.runtime.paths import Paths
from recio_setup.tree.archive import Archive, free_run_name, stamp

ROOT_ARCHIVE_PREFIX = ".recio-archive-"


def is_at_root(run_rel: str | None) -> bool:
    return run_rel is not None and "/" not in run_rel and run_rel.startswith(ROOT_ARCHIVE_PREFIX)


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
        begin_at_root(archive)
    archive.move_in(offender, "it stood where a real folder belongs, holding the archive")
    tree.ensure_dirs(paths.archives_rel, 0o755)
    return offender


def begin_at_root(archive: Archive) -> str:
    name = f"{ROOT_ARCHIVE_PREFIX}{stamp()}-{archive.command}"
    return archive.begin(free_run_name(archive.tree, "", name))
