"""A value derived from a small file, derived again only when its bytes change, yet every edit
seen by the very next call.

While the file is unchanged a call costs one stat(): the value is kept under the file's stamp
(mtime, size, inode, device, ctime), taken before its bytes were read. A stamp alone can miss an
edit: on a filesystem with coarse timestamps (ext3, HFS+, FAT, ramfs, ext4 before Linux 6.13) a
same-size edit in the same tick as the read keeps it. So a stamp is trusted only once the file is
"settled", read at least RACY_NS after its last change (its ctime); until then every call reads
the bytes again and compares them with the cached ones (git's "racy" rule). The value is derived
again only when the bytes differ.

No lock: every call checks its entry against the file, so an entry stored late (by a slower
thread, or by a call a signal handler interrupted) holds bytes read after its stamp was taken,
and a stamp the file no longer has sends the next call back to the file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["RACY_NS", "FileCache"]

RACY_NS = 2_000_000_000  # FAT's 2 s timestamps; ext3 and HFS+ have 1 s

T = TypeVar("T")
Stamp = tuple[int, int, int, int, int]


def _stamp(path: str) -> Stamp:
    st = os.stat(path)  # noqa: PTH116 (a str key, no Path per call)
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev, st.st_ctime_ns)


@dataclass(frozen=True, slots=True)
class _Entry(Generic[T]):
    stamp: Stamp  # taken before `data` was read
    data: bytes
    value: T
    settled: bool  # read RACY_NS after the file's last change: its stamp alone can be trusted


class FileCache(Generic[T]):
    """`derive(bytes, path)` of the file at each path, once per version of its bytes.

    get() raises the stat's OSError (FileNotFoundError: no file) and whatever `read` and
    `derive` raise; nothing is cached for a call that raised."""

    def __init__(self, read: Callable[[str], bytes], derive: Callable[[bytes, str], T]) -> None:
        self._read = read
        self._derive = derive
        self._entries: dict[str, _Entry[T]] = {}

    def get(self, path: str) -> T:
        entry = self._entries.get(path)
        if entry is not None and entry.settled:
            st = os.stat(path)  # noqa: PTH116 (_stamp inlined: this is the whole fast path)
            if entry.stamp == (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev, st.st_ctime_ns):
                return entry.value
        return self._refresh(path, entry)

    def _refresh(self, path: str, previous: _Entry[T] | None) -> T:
        # The clock is read before the stat: `settled` must hold for the moment of the stamp.
        # ctime, not mtime: anyone may set the mtime back, but any change sets the ctime to the
        # current time, so once the clock is past the ctime's tick no change can keep it.
        now = time.time_ns()
        stamp = _stamp(path)
        data = self._read(path)
        if previous is not None and previous.data == data:
            value = previous.value
        else:
            value = self._derive(data, path)
        self._entries[path] = _Entry(stamp, data, value, now - stamp[4] >= RACY_NS)
        return value

    def clear(self) -> None:
        self._entries.clear()
