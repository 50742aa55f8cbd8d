"""The archive: where every replaced or moved file goes, so that no run ever deletes a byte.

One run gets one folder, backend/data/archives/<UTC timestamp>-<command>/, created on first use.
Its files/ keeps each entry under its project-relative path (by rename, so modes and size cost
nothing); record.json says what moved from where.

The record is write-ahead: an entry is durable (written, fsync-ed, renamed into place) before its
move happens, so a run killed at any instant leaves a record that names everything it moved. A
recorded move that never happened is harmless: its archived copy simply does not exist, and undo
leaves that place as it is. `finished_at` marks a run that got to its end; a reset record without
it is an interrupted reset, which the next reset resumes and `reset --undo` can put back.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

from recio_setup.errors import RecioError
from recio_setup.runtime.paths import ARCHIVES_REL
from recio_setup.runtime.readfile import COPY_LIMIT, RECORD_LIMIT
from recio_setup.tree.fsentry import Found
from recio_setup.tree.fsops import Tree

RECORD_NAME = "record.json"
RECORD_VERSION = 1


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def free_run_name(tree: Tree, folder: str, name: str) -> str:
    """folder/name, or folder/name-2, -3... : the first that does not exist yet."""
    base = f"{folder}/{name}" if folder else name
    candidate, counter = base, 1
    while tree.inspect(candidate).kind != "missing":
        counter += 1
        candidate = f"{base}-{counter}"
    return candidate


@dataclass
class Archive:
    tree: Tree
    command: str
    archives_rel: str = ARCHIVES_REL
    run_rel: str | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)
    # Run-level fields of record.json beyond version/command/entries (started_at, finished_at...).
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, tree: Tree, run_rel: str) -> Archive:
        """An existing run folder, to resume or undo it; RecioError if its record is unreadable."""
        data = read_record(tree, run_rel)
        archives_rel, _, _ = run_rel.rpartition("/")
        info = {k: v for k, v in data.items() if k not in ("version", "command", "entries")}
        return cls(tree, str(data["command"]), archives_rel, run_rel, list(data["entries"]), info)

    def begin(self, run_rel: str | None = None) -> str:
        """Create the run folder (a fresh name in archives_rel unless given) and its record."""
        if self.run_rel is None:
            if run_rel is None:
                self.tree.ensure_dirs(self.archives_rel, 0o755)
                run_rel = free_run_name(self.tree, self.archives_rel, f"{stamp()}-{self.command}")
            # 0700: an archive may hold tokens, credentials and the previous .env.
            self.tree.make_dir(run_rel, 0o700)
            self.run_rel = run_rel
            self.info.setdefault("started_at", utc_now())
            # Which processes wrote under this run: their temp files are the run's own.
            self.info.setdefault("pids", [os.getpid()])
            self.write_record()
        return self.run_rel

    @property
    def folder(self) -> str:
        """The run folder of an archive that was loaded or has begun."""
        if self.run_rel is None:
            raise RecioError(f"the {self.command} archive has no folder yet")
        return self.run_rel

    def destination(self, rel: str) -> str:
        """files/REL, or files-2/REL... when this run has already archived something there
        (an undo run again after something recreated a place it had moved aside)."""
        run_rel, slot = self.begin(), "files"
        while self.tree.inspect(f"{run_rel}/{slot}/{rel}").kind != "missing":
            slot = f"files-{int(slot.partition('-')[2] or 1) + 1}"
        return f"{run_rel}/{slot}/{rel}"

    def move_in(self, rel: str, reason: str) -> str:
        """Move the entry at rel (the symlink itself, if it is one) into the archive."""
        found = self.tree.inspect(rel)
        dst = self.destination(rel)
        entry = self._record(rel, dst, found, "moved", reason)
        try:
            self.tree.move(rel, dst)
        except Exception:
            # The move did not happen: keep the record exact where we still can.
            self.entries.remove(entry)
            with contextlib.suppress(OSError, RecioError):
                self.write_record()
            raise
        return dst

    def keep_copy(self, rel: str, reason: str, recorded_as: Found | None = None) -> str:
        """Keep the current version of a file that is about to be replaced atomically.

        The copy is recorded before the caller replaces the live file, which is the step that
        could lose something; a copy made but not yet recorded is only a spare. `recorded_as`
        is what the record says stood there, when the caller has already tightened its mode.
        """
        current = self.tree.inspect(rel)
        found = recorded_as or current
        dst = self.destination(rel)
        if self.tree.hard_link(rel, dst):
            how = "linked"
        else:
            data = self.tree.read_file(rel, COPY_LIMIT)
            self.tree.write_file(dst, data, (current.mode or 0o600) & 0o777)
            how = "copied"
        self._record(rel, dst, found, how, reason)
        return dst

    def _record(self, rel: str, dst: str, found: Found, how: str, reason: str) -> dict[str, Any]:
        entry = {
            "from": rel,
            "to": dst,
            "kind": found.kind,
            "mode": found.mode_text,
            "size": found.size,
            "how": how,
            "reason": reason,
            "at": utc_now(),
        }
        self.entries.append(entry)
        self.write_record()
        return entry

    def write_record(self, extra: dict[str, Any] | None = None) -> None:
        """Make the record durable; `extra` fields are kept for every later write too."""
        self.info.update(extra or {})
        run_rel = self.begin()
        record = {
            "version": RECORD_VERSION,
            "command": self.command,
            **self.info,
            "entries": self.entries,
        }
        data = (json.dumps(record, indent=2) + "\n").encode()
        self.tree.write_file(f"{run_rel}/{RECORD_NAME}", data, 0o600, replace=True)

    def finish(self, extra: dict[str, Any] | None = None) -> None:
        """Mark the run complete (nothing is written for a run that archived nothing)."""
        if self.run_rel is not None:
            self.write_record({**(extra or {}), "finished_at": utc_now()})


def read_record(tree: Tree, run_rel: str) -> dict[str, Any]:
    """record.json of a run folder; RecioError when it is missing, unreadable or malformed."""
    try:
        data = json.loads(tree.read_file(f"{run_rel}/{RECORD_NAME}", RECORD_LIMIT))
    except (OSError, ValueError, RecursionError) as exc:
        raise RecioError(f"{run_rel}/{RECORD_NAME} cannot be read ({exc})") from exc
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("command"), str)
        or not isinstance(data.get("entries"), list)
        or not all(_is_entry(entry) for entry in data["entries"])
    ):
        raise RecioError(f"{run_rel}/{RECORD_NAME} is not an archive record")
    return data


def _is_entry(entry: object) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("from"), str)


def archived_path(run_rel: str, entry: dict[str, Any]) -> str:
    """Where an entry's archived copy lives: in the run folder, whatever `to` says beyond the
    slot (files/ or files-N/), so a record cannot send undo anywhere else."""
    rel, to = entry["from"], entry.get("to")
    slot = "files"
    if isinstance(to, str) and to.endswith(f"/{rel}"):
        named = to[: -len(rel) - 1].rpartition("/")[2]
        if _SLOT.fullmatch(named):
            slot = named
    return f"{run_rel}/{slot}/{rel}"


_SLOT = re.compile(r"files(-[1-9][0-9]{0,5})?")
