"""Know, without a stat(), that the port manifest has not changed since it was last checked.

get_port must see an edit of the manifest on the very next call. A stat() per call does that
everywhere, but it is a path walk and a result object: about 3 us on a microVM, where the
reference's whole re-read costs about 35 us. On Linux the kernel can tell us instead: inotify
queues an event before the writer's write(), rename() or chmod() returns, and a zero-timeout
epoll on that queue answers "anything new?" in a fraction of that. No event since the manifest
was verified means it is unchanged; any event sends the next lookup back to the stat.

A watch is set up only where it is exact, else the lookup keeps its stat per call:
- Linux, with inotify available (other systems keep the stat);
- an absolute manifest path with no symlinked folder in it: a symlink could be re-pointed, or
  its target changed, where no watched folder sees it (a manifest that is itself a symlink keeps
  its folder watched but is stat-checked on every lookup);
- a local filesystem: inotify does not hear changes made on another machine (NFS, SMB, 9p,
  virtiofs, FUSE);
- REC_MANIFEST_WATCH is not 0, the escape hatch if a filesystem ever misreports;
- after a few lookups of the same manifest (WATCH_AFTER), so a one-shot script never pays for
  setting it up.

What is watched: the manifest itself (an edit through a hard link elsewhere is still heard), its
folder (replaced by rename, created, deleted), and every folder above it up to / (renamed, its
permissions changed). When a watched folder or the file goes away, every watch is rebuilt on the
next lookup. A forked child starts without watches: it must not read the parent's queue.
Mounting over a folder of the path is not heard (inotify has no event for it).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

WATCH_ENV = "REC_MANIFEST_WATCH"
WATCH_AFTER = 8  # lookups of a manifest before it is worth a watch (ctypes costs ~4 ms to load)

# Filesystems whose every change goes through this kernel, so inotify hears all of them.
LOCAL_FILESYSTEMS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "zfs", "jfs", "bcachefs", "reiserfs"}
    | {"tmpfs", "ramfs", "overlay"}
)

# <sys/inotify.h>
IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_UNMOUNT = 0x2000
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x1000000
IN_DONT_FOLLOW = 0x2000000
IN_MASK_ADD = 0x20000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

FILE_EVENTS = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF
FOLDER_EVENTS = (
    IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
) | (IN_DELETE_SELF | IN_MOVE_SELF)
ANCESTOR_EVENTS = IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF
# After these the watches no longer cover the path (or events were lost): rebuild them. Not
# IN_IGNORED: the kernel sends it when a watch ends, which our own rebuild does, and its other
# causes come with IN_DELETE_SELF or IN_UNMOUNT.
WATCHES_GONE = IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_Q_OVERFLOW


class _Inotify:
    """One inotify queue for the process, with an epoll that says whether it holds events."""

    def __init__(self) -> None:
        import ctypes  # loaded only here: a CLI run or a one-shot script never pays for it
        import select

        libc = ctypes.CDLL(None, use_errno=True)
        self._add_watch = libc.inotify_add_watch
        self._add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
        self._rm_watch = libc.inotify_rm_watch
        self._rm_watch.argtypes = (ctypes.c_int, ctypes.c_int)
        self._get_errno = ctypes.get_errno
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.fd: int = fd
        try:
            self._epoll = select.epoll()
            self._epoll.register(fd, select.EPOLLIN)
        except OSError:
            os.close(fd)
            raise
        self.poll: Callable[[float, int], list[tuple[int, int]]] = self._epoll.poll

    def add(self, path: str, mask: int) -> int:
        """Watch path; its watch descriptor (shared with any other watch of the same inode)."""
        wd: int = self._add_watch(self.fd, os.fsencode(path), mask | IN_MASK_ADD)
        if wd < 0:
            code = self._get_errno()
            raise OSError(code, os.strerror(code), path)
        return wd

    def remove(self, wd: int) -> None:
        self._rm_watch(self.fd, wd)  # fails harmlessly if the kernel already ended it

    def drain(self) -> int:
        """Read every queued event; the union of their masks."""
        seen = 0
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return seen
            if not chunk:
                return seen
            # struct inotify_event: int wd; uint32 mask, cookie, len; char name[len]
            offset = 0
            while offset + 16 <= len(chunk):
                seen |= int.from_bytes(chunk[offset + 4 : offset + 8], sys.byteorder)
                offset += 16 + int.from_bytes(chunk[offset + 12 : offset + 16], sys.byteorder)

    def close(self) -> None:
        self._epoll.close()
        os.close(self.fd)


# -- eligibility ------------------------------------------------------------------------------
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
    # The file itself may be a symlink: it is then stat-checked on every lookup (see prepare).
    if given.parent.resolve() != Path(os.path.normpath(path)).parent:
        return "a symlink in the path"
    if mountinfo is None:
        try:
            with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
                mountinfo = handle.read()
        except OSError:
            return "no /proc/self/mountinfo"
    kind = filesystem_type(path, mountinfo)
    if kind not in LOCAL_FILESYSTEMS:
        return f"filesystem {kind or 'unknown'} may change without this kernel seeing it"
    return ""


# -- state ------------------------------------------------------------------------------------
# Changed only under ports' lock; read without it by the lookup's fast path, which checks the
# queue before `verified`, so it never trusts an entry whose event someone else just drained.
# The queue lives as long as the process (a forked child makes its own): closing it under a
# lookup running in another thread would fail that lookup.
_inotify: _Inotify | None = None
_watches: dict[str, list[int]] = {}  # manifest -> the watch descriptors covering it
refused: dict[str, str] = {}  # manifest -> why it is not watched (it is stat-checked instead)
_lookups: dict[str, int] = {}  # stat-checked lookups per manifest, until WATCH_AFTER
verified: set[str] = set()  # manifests checked since the last event: unchanged while no event
poll: Callable[[float, int], list[tuple[int, int]]] | None = None  # the queue's epoll, once it runs


def prepare(path: str) -> bool:
    """Before `path` is stat-checked: take in queued events, set up its watch when due.

    True when the check that follows may mark it verified. Called under ports' lock.
    """
    if _inotify is not None and _inotify.poll(0, 1):
        verified.clear()  # before draining: see the note on ordering above
        if _inotify.drain() & WATCHES_GONE:
            unwatch_all()  # each manifest is watched afresh on its next lookup
    if path in _watches:
        return _is_plain_file(path)
    if path in refused:
        return False
    count = _lookups[path] = _lookups.get(path, 0) + 1
    if count < WATCH_AFTER:
        return False
    return _start_watching(path) and _is_plain_file(path)


def _is_plain_file(path: str) -> bool:
    # The file itself may be a symlink: its target can change where no watch hears it.
    try:
        return not Path(path).is_symlink()
    except OSError:
        return False


def _start_watching(path: str) -> bool:
    global _inotify, poll
    why = refusal(path)
    if why:
        refused[path] = why
        return False
    wds: list[int] = []
    try:
        if _inotify is None:
            _inotify = _Inotify()
            poll = _inotify.poll
        wds.append(_inotify.add(path, FILE_EVENTS | IN_DONT_FOLLOW))
        folder, *ancestors = Path(path).parents
        wds.append(_inotify.add(str(folder), FOLDER_EVENTS | IN_ONLYDIR))
        wds.extend(_inotify.add(str(above), ANCESTOR_EVENTS | IN_ONLYDIR) for above in ancestors)
    except (OSError, AttributeError) as exc:
        _remove(wds)
        if not isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            refused[path] = f"inotify: {exc}"  # no inotify here, or out of watches or queues
        return False  # (a missing manifest is watched on a later lookup, once it is back)
    _watches[path] = wds
    return True


def _remove(wds: list[int]) -> None:
    if _inotify is not None:
        for wd in wds:
            _inotify.remove(wd)


def unwatch_all() -> None:
    """End every watch; each manifest is watched again on its next lookup. Counts are kept."""
    verified.clear()
    for wds in _watches.values():
        _remove(wds)
    _watches.clear()


def reset() -> None:
    """Back to a fresh process, but for the queue itself (tests; clear_cache)."""
    unwatch_all()
    refused.clear()
    _lookups.clear()


def status(path: str) -> str:
    """ "watched", "counting" or the reason it is not watched: for tests and benchmarks."""
    if path in _watches:
        return "watched"
    return refused.get(path, "counting")


def _after_fork_in_child() -> None:
    # The child shares the parent's queue: reading it would steal the parent's events. The
    # child has one thread here, so nothing is using the queue while it is closed.
    global _inotify, poll
    poll = None
    verified.clear()
    _watches.clear()
    if _inotify is not None:
        with contextlib.suppress(OSError):
            _inotify.close()
        _inotify = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
