"""A Linux inotify queue in an epoll, answering "did anything happen?" in one syscall.

The epoll holds three things: the inotify queue (readable when it holds events), the mount table
(/proc/self/mountinfo, which polls as "priority" once per mount or unmount), and a canary, the
write end of an empty pipe, which is always writable. A quiet poll therefore returns exactly
QUIET, the canary alone: anything else, including an empty answer from an epoll whose number
now belongs to someone else (a library closed every descriptor and another epoll took it),
means "look closer". Loaded only once a manifest is watched: ctypes costs ~4 ms to import.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from recio_setup.inotify_constants import IN_MASK_ADD


@dataclass(frozen=True)
class Event:
    wd: int  # -1 for a queue overflow
    mask: int
    name: str  # "" when the event is about the watched object itself


@dataclass(frozen=True)
class _Libc:
    init: Any
    add_watch: Any
    rm_watch: Any


_libc: _Libc | None = None


def _functions() -> _Libc:
    """libc's inotify functions, looked up once per process. A forked child reuses them: a
    dlopen or dlsym there could wait for ever on a loader lock another thread of the parent
    held at the fork."""
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)
        add_watch = libc.inotify_add_watch
        add_watch.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32)
        rm_watch = libc.inotify_rm_watch
        rm_watch.argtypes = (ctypes.c_int, ctypes.c_int)
        _libc = _Libc(libc.inotify_init1, add_watch, rm_watch)
    return _libc


class Queue:
    def __init__(self) -> None:
        libc = _functions()
        self._add_watch = libc.add_watch
        self._rm_watch = libc.rm_watch
        self.fd = self.mounts = self.canary = self._canary_read = -1
        fd = libc.init(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.fd = fd
        try:
            self._epoll = select.epoll()
            self._epoll.register(fd, select.EPOLLIN)
            self.mounts = os.open("/proc/self/mountinfo", os.O_RDONLY | os.O_CLOEXEC)
            self._epoll.register(self.mounts, select.EPOLLPRI | select.EPOLLERR)
            self._canary_read, self.canary = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
            self._epoll.register(self.canary, select.EPOLLOUT)
        except OSError:
            self.close()
            raise
        self.quiet: list[tuple[int, int]] = [(self.canary, select.EPOLLOUT)]
        # mountinfo answers a change with ERR|PRI; PRI alone is allowed for as well.
        self.mount_news = (
            (self.mounts, select.EPOLLPRI | select.EPOLLERR),
            (self.mounts, select.EPOLLPRI),
        )
        self.poll: Callable[[float, int], list[tuple[int, int]]] = self._epoll.poll

    def add(self, path: str, mask: int) -> int:
        """Watch path; its watch descriptor, shared with any watch of the same inode."""
        wd: int = self._add_watch(self.fd, os.fsencode(path), mask | IN_MASK_ADD)
        if wd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), path)
        return wd

    def remove(self, wd: int) -> None:
        self._rm_watch(self.fd, wd)  # fails harmlessly if the kernel already ended it

    def look(self) -> tuple[bool, bool, bool]:
        """(intact, events queued, mount table changed). Events are read only when the poll
        itself vouches for the descriptors: a closed number may now be someone else's file."""
        try:
            answer = self.poll(0, 3)
        except (OSError, ValueError):  # closed under us, or now someone else's non-epoll file
            return False, False, False
        intact = (self.canary, select.EPOLLOUT) in answer
        ready = {fd for fd, _ in answer}
        return intact, intact and self.fd in ready, self.mounts in ready

    def read(self) -> list[Event]:
        events: list[Event] = []
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return events
            if not chunk:
                return events
            events.extend(_parse(chunk))

    def intact(self) -> bool:
        """Our descriptors are still what we opened (for a forked child, before it closes them)."""
        expected = {
            self.fd: "anon_inode:inotify",
            self._epoll.fileno(): "anon_inode:[eventpoll]",
            self.mounts: "/proc/",
            self.canary: "pipe:",
        }
        try:
            links = {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in expected}  # noqa: PTH115
        except (OSError, ValueError):
            return False
        return all(links[fd].startswith(prefix) for fd, prefix in expected.items())

    def close(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            self._epoll.close()
        for fd in (self.canary, self._canary_read, self.mounts, self.fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


def _parse(chunk: bytes) -> list[Event]:
    # struct inotify_event: int wd; uint32 mask, cookie, len; char name[len] (NUL-padded)
    events = []
    offset = 0
    while offset + 16 <= len(chunk):
        wd = int.from_bytes(chunk[offset : offset + 4], sys.byteorder, signed=True)
        mask = int.from_bytes(chunk[offset + 4 : offset + 8], sys.byteorder)
        size = int.from_bytes(chunk[offset + 12 : offset + 16], sys.byteorder)
        raw = chunk[offset + 16 : offset + 16 + size].split(b"\0", 1)[0]
        events.append(Event(wd, mask, os.fsdecode(raw)))
        offset += 16 + size
    return events
