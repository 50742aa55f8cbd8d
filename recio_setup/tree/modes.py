"""The one rule for the mode of every entry the tool writes or checks, and for whether a file is
its own.

A mode is compared whole (stat.S_IMODE: setuid, setgid and sticky bits included). An entry may be
stricter than its table mode for group and others, which is the owner's choice and kept, but
never looser and never with a setuid, setgid or sticky bit. An owner who cannot read their own
entry (or enter their own folder) made no choice: that comes from a umask like 777 and gets the
table mode exactly. A regular file with more than one hard link shares its inode with a name the
tool does not know, maybe outside the project: it is never chmod-ed or written in place.
"""

from __future__ import annotations

from typing import Literal

EntryKind = Literal["dir", "file"]
# What the owner must keep: read for files, read and search for folders (write is not needed
# to use them, so a read-only credentials folder stays read-only).
OWNER_NEEDS: dict[EntryKind, int] = {"dir": 0o500, "file": 0o400}


def mode_to_set(found: int, wanted: int, kind: EntryKind) -> int | None:
    """The mode an existing entry must get, or None when `found` already satisfies `wanted`."""
    new = wanted if locks_out_its_owner(found, kind, wanted) else found & wanted
    return None if new == found else new


def locks_out_its_owner(found: int, kind: EntryKind, wanted: int = 0o7777) -> bool:
    """The owner lacks what they need of their own entry (of it, what `wanted` grants)."""
    need = OWNER_NEEDS[kind] & wanted
    return found & need != need


def shares_its_inode(kind: str, nlink: int | None) -> bool:
    """A regular file another name also points at: changing its inode changes that file too."""
    return kind == "file" and (nlink or 1) > 1


def what_is_wrong(found: int, new: int) -> str:
    """A mode_to_set change in words: it only takes bits away, or it gives the owner back theirs."""
    return "unusable by its owner" if new & ~found else "too open"
