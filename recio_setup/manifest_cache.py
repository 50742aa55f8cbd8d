"""get_port's cache of the manifest: parsed once per version, yet every edit seen on the next call.

Two ways to know the cached copy is current (manifest_watch decides which applies):
- watched (Linux, once a process looks up often): no inotify event since the copy was checked.
  Any event sends the next lookup here, which re-reads the bytes: a stamp can miss an edit.
- stat-checked (everywhere else): the file's stamp (mtime, size, inode, device, ctime) is the
  one that was read. A stamp is trusted only once the file is "settled", i.e. read at least
  RACY_NS after its last change (its ctime): on a filesystem with coarse timestamps (ext3,
  HFS+, FAT, or ext4 before Linux 6.13), a same-size edit in the same tick as the read keeps
  the stamp, so until then each lookup compares the bytes again (git's "racy" rule).
The bytes are parsed again only when they differ from the cached ones.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from recio_setup import manifest_watch
from recio_setup.ports import (
    Manifest,
    ManifestError,
    ManifestMissing,
    parse_manifest,
    read_manifest_bytes,
)

__all__ = ["cached_manifest", "clear_cache", "lookup_port"]

RACY_NS = 2_000_000_000  # FAT's 2 s timestamps; ext3 and HFS+ have 1 s

Stamp = tuple[int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class _Entry:
    stamp: Stamp  # mtime_ns, size, inode, device, ctime_ns, taken before the bytes were read
    manifest: Manifest
    data: bytes
    settled: bool  # read RACY_NS after the file's last change: its stamp alone can be trusted


_cache: dict[str, _Entry] = {}
# Re-entrant: a signal handler may look up a port while this thread is inside the slow path.
_lock = threading.RLock()


def _stamp_of(st: os.stat_result) -> Stamp:
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev, st.st_ctime_ns)


def _stat(path: str) -> Stamp:
    try:
        return _stamp_of(os.stat(path))  # noqa: PTH116 (a str key, no Path per lookup)
    except FileNotFoundError:
        raise ManifestMissing(path) from None
    except OSError as exc:
        raise ManifestError(path, f"cannot be read: {exc.strerror}") from None


def _checked(path: str) -> Manifest:
    """The long way: stat, re-read if needed, parse if the bytes changed; must be valid."""
    with _lock:
        # Before the stat: an edit from here on queues an event that the next lookup sees.
        how = manifest_watch.prepare(path)
        hit = _cache.get(path)
        if how == "verified" and hit is not None:
            return hit.manifest
        generation = manifest_watch.generation
        now = time.time_ns()
        stamp = _stat(path)
        if hit is None or hit.stamp != stamp or not hit.settled or how == "check":
            hit = _read(path, stamp, now, hit)
            # A lookup nested in this one (a signal handler) may have taken newer news and
            # stored a newer copy meanwhile: then this one is kept neither cached nor trusted.
            if manifest_watch.generation != generation:
                return hit.manifest.require_ok()
            _cache[path] = hit
        manifest = hit.manifest.require_ok()
        if how == "check" and manifest_watch.generation == generation:
            manifest_watch.verified.add(path)
        return manifest


def _read(path: str, stamp: Stamp, now: int, previous: _Entry | None) -> _Entry:
    # The stamp was taken before reading: if the file changes while it is read, the next call
    # sees a newer stamp (or an event) and reads it again.
    data = read_manifest_bytes(path)
    same = previous is not None and previous.data == data
    manifest = previous.manifest if same and previous else parse_manifest(data, path)
    # ctime, not mtime: anyone may set the mtime back, but any change sets the ctime to the
    # current time, so once the clock is past the cached ctime's tick, no change can keep it.
    settled = now - stamp[4] >= RACY_NS
    return _Entry(stamp, manifest, data, settled)


def _unchanged_by_stat(path: str) -> Manifest | None:
    """The cached manifest if a stat shows the settled file unchanged and it is valid; no lock."""
    try:
        st = os.stat(path)  # noqa: PTH116 (hot path)
    except OSError:
        return None
    hit = _cache.get(path)
    if hit is None or not hit.settled or hit.manifest.problems or hit.stamp != _stamp_of(st):
        return None
    return hit.manifest


def _quiet_poll(poll: Callable[[float, int], list[tuple[int, int]]]) -> bool:
    """Nothing happened since the last check: the epoll answered with its canary alone.

    Asked before `verified` (see manifest_watch). A poll that was not quiet may have consumed
    the one-shot mount event, so the `finally` tells manifest_watch even if a signal handler
    raises right after the poll returns."""
    answer = None
    quiet = False
    try:
        answer = poll(0, 3)
        quiet = answer == manifest_watch.quiet_answer
    except OSError:  # our descriptor was closed under us: prepare() builds a new queue
        pass
    finally:
        # No call before the clears (`in` is an operator): a signal handler that raises runs
        # only at a call or a loop, and must not skip them.
        news = manifest_watch.mount_news
        if not quiet and (answer is None or news[0] in answer or news[1] in answer):
            manifest_watch.verified.clear()
            manifest_watch.armed.clear()
            manifest_watch.after_mount_news()
    return quiet


def _fresh(path: str) -> Manifest | None:
    """The cached manifest when it is known current without the lock: no event since it was
    verified (watched), or a settled stamp (stat-checked). None: go the long way."""
    poll = manifest_watch.poll
    if poll is not None and _quiet_poll(poll) and path in manifest_watch.verified:
        hit = _cache.get(path)  # (clear_cache may run in another thread)
        return hit.manifest if hit is not None else None
    if path in manifest_watch.refused:
        return _unchanged_by_stat(path)
    return None


def cached_manifest(path: os.PathLike[str] | str) -> Manifest:
    """The manifest at path, parsed once per version of the file; must be valid."""
    key = os.fspath(path)
    return _fresh(key) or _checked(key)


def lookup_port(path: str, name: str) -> int:
    """get_port's hot path: while the manifest is unchanged, one epoll (or one stat where a watch
    cannot be exact) and two dict lookups. Anything unusual (a changed, missing or invalid file,
    an unknown name) goes the long way, which raises the right error."""
    manifest = _fresh(path)
    if manifest is not None:
        service = manifest.services.get(name)
        if service is not None:
            return service.port
    return _checked(path).port(name)


def clear_cache() -> None:
    with _lock:
        manifest_watch.reset()  # first: a lookup must not trust an entry about to go
        _cache.clear()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.RLock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
