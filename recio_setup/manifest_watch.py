"""Know, without a stat(), that the port manifest has not changed since it was last checked.

get_port must see an edit of the manifest on the very next call. A stat() per call does that
everywhere, but it is a path walk and a result object: about 3 us on a microVM, where the
reference's whole re-read costs about 35 us. On Linux the kernel can tell us instead: inotify
queues an event before the writer's write(), rename() or chmod() returns, and a zero-timeout
epoll on that queue answers "anything new?" in a fraction of that. No event since the manifest
was verified means it is unchanged; any event sends the next lookup the long way, which re-adds
every watch (top down, so a folder swapped meanwhile is caught) and re-reads the file.

A watch is set up only where it is exact, else the lookup keeps its stat per call:
- Linux, with inotify available (other systems keep the stat);
- an absolute, normalised manifest path with no symlinked folder in it: a symlink could be
  re-pointed, or its target changed, where no watched folder sees it; a manifest that is itself
  a symlink is stat-checked too;
- a local filesystem: inotify does not hear changes made on another machine (NFS, SMB, 9p,
  virtiofs, FUSE);
- REC_MANIFEST_WATCH is not 0, the escape hatch if a filesystem ever misreports;
- after a few lookups of the same manifest (WATCH_AFTER), so a one-shot script never pays for
  setting it up.

What is watched: the manifest itself (an edit through a hard link elsewhere is heard), its folder
(replaced by rename, created, deleted), every folder above it up to / (renamed, its permissions
changed), and /proc/self/mountinfo (a mount or unmount anywhere). A forked child makes its own
queue: it must not read the parent's. If the queue's descriptors are closed under us (a library
that closes every descriptor), the next lookup notices and builds a new one.
Not heard: writes through a shared memory map of the file (no event exists for them). A mount
event is consumed by the first poll that sees it, so a lookup in another thread in the same few
microseconds may still answer from before the mount.
"""

from __future__ import annotations

import contextlib
import os
import stat
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


class _Inotify:
    """One inotify queue for the process, in an epoll with /proc/self/mountinfo, so one
    zero-timeout poll says whether anything may have changed."""

    def __init__(self) -> None:
        import ctypes  # loaded only here: a CLI run or a one-shot script never pays for it
        import select

        libc = ctypes.CDLL(None, use_errno=True)
        self._add_watch = libc.inotify_add_watch
        self._add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
        self._get_errno = ctypes.get_errno
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.fd: int = fd
        self.mounts = -1
        try:
            self._epoll = select.epoll()
            self._epoll.register(fd, select.EPOLLIN)
            # mountinfo polls as "priority" once per change of the mount table.
            self.mounts = os.open("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
            self._epoll.register(self.mounts, select.EPOLLPRI | select.EPOLLERR)
        except OSError:
            self.close()
            raise
        self.poll: Callable[[float, int], list[tuple[int, int]]] = self._epoll.poll

    def add(self, path: str, mask: int) -> None:
        if self._add_watch(self.fd, os.fsencode(path), mask | IN_MASK_ADD) < 0:
            code = self._get_errno()
            raise OSError(code, os.strerror(code), path)

    def intact(self) -> bool:
        """Our descriptors still are what we opened (not closed, not reused by another file)."""
        expected = {
            self.fd: "anon_inode:inotify",
            self._epoll.fileno(): "anon_inode:[eventpoll]",
            self.mounts: "/proc/",
        }
        try:
            return all(
                os.readlink(f"/proc/self/fd/{fd}").startswith(prefix)  # noqa: PTH115
                for fd, prefix in expected.items()
            )
        except (OSError, ValueError):
            return False

    def drain(self) -> None:
        """Read every queued event (all that matters is that there were some)."""
        while True:
            try:
                if not os.read(self.fd, 65536):
                    return
            except BlockingIOError:
                return

    def close(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            self._epoll.close()
        for fd in (self.mounts, self.fd):
            with contextlib.suppress(OSError):
                if fd >= 0:
                    os.close(fd)


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


# -- state ------------------------------------------------------------------------------------
# Changed only under manifest_cache's lock; read without it by the lookup's fast path, which
# polls the queue before reading `verified`: prepare() empties `verified` before it drains, so a
# lookup never trusts an entry whose event another thread has just taken.
_inotify: _Inotify | None = None
_eligible: set[str] = set()  # manifests that passed refusal(): watched once armed
_armed: set[str] = set()  # manifests whose watches were (re-)added since the last event
refused: dict[str, str] = {}  # manifest -> why it is not watched (it is stat-checked instead)
_lookups: dict[str, int] = {}  # stat-checked lookups per manifest, until WATCH_AFTER
verified: set[str] = set()  # manifests checked since the last event: unchanged while no event
poll: Callable[[float, int], list[tuple[int, int]]] | None = None  # the queue's epoll, once it runs
# Queues whose descriptors were closed under us. Kept, never closed: their numbers may now
# belong to someone else's files.
_abandoned: list[_Inotify] = []


def prepare(path: str) -> bool:
    """Before `path` is stat-checked: take in whatever happened, and (re-)arm its watches.

    Called on every slow lookup, so it assumes something may have changed: it forgets every
    verification first (an exception anywhere below leaves things safe), drains the queue, and
    re-adds `path`'s watches. True when the check that follows may mark `path` verified; the
    caller must then re-read the file, as an event may have left its stamp unchanged.
    """
    global _inotify, poll
    if _inotify is not None:
        verified.clear()
        _armed.clear()
        if _inotify.intact():
            _inotify.drain()
        else:
            _abandoned.append(_inotify)
            _inotify, poll = None, None
    if path in refused or not _is_eligible(path):
        return False
    if path not in _armed:
        if not _arm(path):
            return False
        _armed.add(path)
    return True


def _is_eligible(path: str) -> bool:
    if path in _eligible:
        return True
    count = _lookups[path] = _lookups.get(path, 0) + 1
    if count < WATCH_AFTER:
        return False
    why = refusal(path)
    if why:
        refused[path] = why
        return False
    _eligible.add(path)
    return True


def _arm(path: str) -> bool:
    """Add the watches covering path, from / down: a folder swapped while this runs is caught
    by the watch already on the level above it. Watches are never removed (the kernel ends them
    with their inode), so one shared by several manifests is never lost."""
    global _inotify, poll
    folders = [str(folder) for folder in reversed(Path(path).parents)]
    try:
        if _inotify is None:
            _inotify = _Inotify()
            poll = _inotify.poll
        for folder in folders[:-1]:
            _inotify.add(folder, ANCESTOR_EVENTS | IN_ONLYDIR)
        _inotify.add(folders[-1], FOLDER_EVENTS | IN_ONLYDIR)
        return _watch_file(_inotify, path)
    except (FileNotFoundError, NotADirectoryError):
        return False  # a folder is missing: stat-checked now, armed on a later lookup
    except (OSError, AttributeError) as exc:  # no inotify, out of watches or queues
        refused[path] = f"inotify: {exc}"
        return False


def _watch_file(queue: _Inotify, path: str) -> bool:
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            refused[path] = "the manifest is a symlink: its target can change unheard"
            return False
        queue.add(path, FILE_EVENTS | IN_DONT_FOLLOW)
    except FileNotFoundError:
        pass  # its folder is watched, so its return is heard; the stat reports it missing
    return True


def reset() -> None:
    """Back to a fresh process, but for the queue itself (tests; clear_cache)."""
    verified.clear()
    _armed.clear()
    _eligible.clear()
    refused.clear()
    _lookups.clear()


def status(path: str) -> str:
    """ "watched", "counting" or the reason it is not watched: for tests and benchmarks."""
    if path in _eligible and path not in refused:
        return "watched"
    return refused.get(path, "counting")


def _after_fork_in_child() -> None:
    # The child shares the parent's queue: reading it would steal the parent's events. The
    # child has one thread here, so nothing is using the queue while it is closed.
    global _inotify, poll
    poll = None
    verified.clear()
    _armed.clear()
    if _inotify is not None:
        _inotify.close()
        _inotify = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
