"""Whether a manifest path can be watched exactly with inotify, and if not, why not.

A watch is exact only where every change to the file passes through this kernel and every
folder on the path is what it seems: Linux, an absolute normalised path with no symlinked folder,
on a local filesystem. REC_MANIFEST_WATCH=0 turns watching off.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

WATCH_ENV = "REC_MANIFEST_WATCH"

# Filesystems whose every change goes through this kernel, so inotify hears all of them.
LOCAL_FILESYSTEMS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "zfs", "jfs", "bcachefs", "reiserfs"}
    | {"tmpfs", "ramfs", "overlay"}
)


def _unescape_mount_point(text: str) -> str:
    # /proc/self/mountinfo writes space, tab, newline and backslash as \040 \011 \012 \134.
    parts = text.split("\\")
    out = [parts[0]]
    for part in parts[1:]:
        if len(part) >= 3 and part[:3].isdigit():
            out.append(chr(int(part[:3], 8)) + part[3:])
        else:
            out.append("\\" + part)
    return "".join(out)


def filesystem_type(path: str, mountinfo: str) -> str | None:
    """The type of the filesystem holding absolute `path`, per mountinfo's text."""
    best, best_type = "", None
    for line in mountinfo.splitlines():
        fields, _, rest = line.partition(" - ")
        parts = fields.split()
        if len(parts) < 5 or not rest:
            continue
        mount_point = _unescape_mount_point(parts[4])
        inside = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):  # the last of equal mounts is on top
            best, best_type = mount_point, rest.split()[0]
    return best_type


def refusal(path: str, *, platform: str = sys.platform, mountinfo: str | None = None) -> str:
    """Why `path` cannot be watched exactly, or "" when it can."""
    if not platform.startswith("linux"):
        return "not Linux"
    if os.environ.get(WATCH_ENV, "").strip().lower() in ("0", "off", "no", "false"):
        return f"{WATCH_ENV} turns it off"
    given = Path(path)
    if not given.is_absolute():
        return "a relative path means another file after a chdir"
    if os.path.normpath(path) != path:
        return "the path is not normalised (.. or //)"
    folder = given.parent.resolve()
    if folder != given.parent:
        return "a symlink in the path"
    if mountinfo is None:
        try:
            with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
                mountinfo = handle.read()
        except OSError:
            return "no /proc/self/mountinfo"
    kind = filesystem_type(str(folder), mountinfo)
    if kind not in LOCAL_FILESYSTEMS:
        return f"filesystem {kind or 'unknown'} may change without this kernel seeing it"
    return ""
