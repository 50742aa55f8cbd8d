"""Undoing a reset: put the most recent reset's archive back, refusing to clobber later changes.

reset records, beside what it moved into its archive, a fingerprint of what it left in each
place (kind, mode, size, content hash, and the listing of a folder). `reset --undo` compares each
place with its fingerprint: anything changed since the reset is refused unless --force. Nothing
is deleted here either: what the reset had created is moved into a new `-undo` archive, then the
archived originals are moved back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from recio_setup.archive import RECORD_NAME, Archive
from recio_setup.errors import RecioError, StepFailed
from recio_setup.fsops import Tree
from recio_setup.paths import Paths

FINGERPRINT_LIMIT = 2000  # entries listed per folder; a fresh tree has a few dozen


def fingerprint(tree: Tree, rel: str, depth: int = 0) -> dict[str, Any]:
    """What stands at rel, precisely enough to notice any later change."""
    found = tree.inspect(rel)
    print_: dict[str, Any] = {"kind": found.kind, "mode": found.mode_text}
    if found.kind == "file":
        print_["size"] = found.size
        print_["sha256"] = hashlib.sha256(tree.read_file(rel, limit=1 << 24)).hexdigest()
    elif found.kind == "symlink":
        print_["target"] = found.link_target
    elif found.kind == "dir" and depth < 8:
        names = tree.list_dir(rel)[:FINGERPRINT_LIMIT]
        print_["children"] = {name: fingerprint(tree, f"{rel}/{name}", depth + 1) for name in names}
    return print_


@dataclass
class ResetRecord:
    run_rel: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def entries(self) -> list[dict[str, Any]]:
        return list(self.data.get("entries", []))

    @property
    def after(self) -> dict[str, Any]:
        return dict(self.data.get("after", {}))


def latest_reset(tree: Tree, paths: Paths) -> ResetRecord:
    """The newest reset archive that has not been undone yet."""
    names = [n for n in tree.list_dir(paths.archives_rel) if "-reset" in n]
    for name in sorted(names, reverse=True):
        run_rel = f"{paths.archives_rel}/{name}"
        try:
            data = json.loads(tree.read_file(f"{run_rel}/{RECORD_NAME}"))
        except (OSError, ValueError, RecioError):
            continue
        if isinstance(data, dict) and data.get("command") == "reset" and not data.get("undone_at"):
            return ResetRecord(run_rel, data)
    raise StepFailed(
        "there is no reset to undo",
        hint="`recio-setup reset` archives what it "
        "replaces; only the most recent reset that is not undone yet can be undone",
        cause="nothing_to_undo",
    )


def changed_since(tree: Tree, record: ResetRecord) -> list[str]:
    """Places whose content differs from what the reset left there."""
    changed = []
    for rel in {entry["from"] for entry in record.entries}:
        expected = record.after.get(rel)
        if expected is not None and fingerprint(tree, rel) != expected:
            changed.append(rel)
    return sorted(changed)


def restore(tree: Tree, record: ResetRecord, undo_archive: Archive) -> list[str]:
    """Move the reset's originals back; what stands in their way goes to the undo archive."""
    steps = []
    for entry in reversed(record.entries):
        rel, archived = entry["from"], entry["to"]
        if tree.inspect(archived).kind == "missing":
            steps.append(f"{rel}: archived copy {archived} is gone; left as it is")
            continue
        if tree.inspect(rel).kind != "missing":
            undo_archive.move_in(rel, "created by the reset being undone")
        tree.move(archived, rel)
        steps.append(f"{rel}: restored from {archived}")
    return steps
