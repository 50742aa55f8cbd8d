"""The archive: where every replaced or moved file goes, so that no run ever deletes a byte.

One run gets one folder, backend/data/archives/<UTC timestamp>-<command>/, created on first use.
Its files/ keeps each entry under its project-relative path (by rename, so modes and size cost
nothing); record.json says what moved from where, and is rewritten after every move so that an
interrupted run still leaves an accurate record.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from recio_setup.fsops import Found, Tree

ARCHIVES_REL = "backend/data/archives"
RECORD_NAME = "record.json"
RECORD_VERSION = 1


@dataclass
class Archive:
    tree: Tree
    command: str
    archives_rel: str = ARCHIVES_REL
    run_rel: str | None = None
    entries: list[dict[str, Any]] = field(default_factory=list)

    def _ensure_run_dir(self) -> str:
        if self.run_rel is None:
            self.tree.ensure_dirs(self.archives_rel, 0o755)
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            base = f"{self.archives_rel}/{stamp}-{self.command}"
            candidate, counter = base, 1
            while self.tree.inspect(candidate).kind != "missing":
                counter += 1
                candidate = f"{base}-{counter}"
            # 0700: an archive may hold tokens, credentials and the previous .env.
            self.tree.make_dir(candidate, 0o700)
            self.run_rel = candidate
        return self.run_rel

    def destination(self, rel: str) -> str:
        return f"{self._ensure_run_dir()}/files/{rel}"

    def move_in(self, rel: str, reason: str) -> str:
        """Move the entry at rel (the symlink itself, if it is one) into the archive."""
        found = self.tree.inspect(rel)
        dst = self.destination(rel)
        self.tree.move(rel, dst)
        self._record(rel, dst, found, "moved", reason)
        return dst

    def keep_copy(self, rel: str, reason: str) -> str:
        """Keep the current version of a file that is about to be replaced atomically."""
        found = self.tree.inspect(rel)
        dst = self.destination(rel)
        if self.tree.hard_link(rel, dst):
            how = "linked"
        else:
            data = self.tree.read_file(rel, limit=1 << 30)
            self.tree.write_file(dst, data, found.mode or 0o600)
            how = "copied"
        self._record(rel, dst, found, how, reason)
        return dst

    def _record(self, rel: str, dst: str, found: Found, how: str, reason: str) -> None:
        self.entries.append(
            {
                "from": rel,
                "to": dst,
                "kind": found.kind,
                "mode": found.mode_text,
                "size": found.size,
                "how": how,
                "reason": reason,
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
        self.write_record()

    def write_record(self, extra: dict[str, Any] | None = None) -> None:
        run_rel = self._ensure_run_dir()
        record = {
            "version": RECORD_VERSION,
            "command": self.command,
            "entries": self.entries,
            **(extra or {}),
        }
        data = (json.dumps(record, indent=2) + "\n").encode()
        self.tree.write_file(f"{run_rel}/{RECORD_NAME}", data, 0o600, replace=True)
