"""Know, without a stat(), that the port manifest has not changed since it was last checked.

get_port must see an edit of the manifest on the very next call. A stat() per call does that
everywhere, but costs about 3 us on a microVM, where the reference's whole re-read costs about
35 us. On Linux the kernel can tell us instead: inotify queues an event before the writer's
write(), rename() or chmod() returns, and one zero-timeout epoll (inotify_queue) answers
"anything new?". Quiet means every verified manifest is unchanged. Otherwise the next lookup
takes the long way (prepare): it reads the events, and if one concerns a manifest (the file, its
name in its folder, a folder on its path itself, a lost event, a mount), re-adds its watches
from / down and re-reads the file. Events about other files beside it cost no re-read; if they
never stop (NOISY_AFTER), watching is given up for the stat.

watch_eligibility decides where a watch is exact; elsewhere, and for a manifest that is itself a
symlink, each lookup is a lock-free stat. A watch is set up only after WATCH_AFTER lookups, so a
one-shot script never loads ctypes. A forked child makes its own queue (reading the parent's
would steal its events). Descriptors closed under us (a library that closes every descriptor)
are noticed by the epoll's canary, and a new queue is built without touching the old numbers.

Known limits: writes through a shared memory map are not heard (no event exists for them); a
change of mount namespace after the queue exists is not heard; only closing our inotify
descriptor while leaving its epoll open goes unnoticed.
"""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from recio_setup.inotify_constants import (
    ANCESTOR_EVENTS,
    FILE_EVENTS,
    FOLDER_EVENTS,
    IN_DONT_FOLLOW,
    IN_IGNORED,
    IN_ONLYDIR,
)
from recio_setup.watch_eligibility import refusal

if TYPE_CHECKING:
    from recio_setup.inotify_queue import Event, Queue

WATCH_AFTER = 8  # lookups of a manifest before it is worth a watch (ctypes costs ~4 ms to load)


# -- state ------------------------------------------------------------------------------------
# Changed under manifest_cache's lock; read without it by the lookup's fast path, which polls
# before it reads `verified`. Whoever may have consumed news (prepare(), or a fast path whose
# poll took the one-shot mount event) empties `verified` and bumps `generation` first, so no
# lookup trusts an entry, and no slow path stores one, across news it did not see.
_queue: Queue | None = None
_eligible: dict[str, int] = {}  # manifest -> st_dev of its folder when it was judged
armed: dict[str, int] = {}  # manifest -> the `_news` count when its watches were (re-)added
_news = 0  # relevant events and mount changes seen: watches armed before the last are stale
_path_wds: dict[str, list[int]] = {}  # manifest -> the watch descriptors covering it
_wd_names: dict[int, frozenset[str] | None] = {}  # wd -> child names that matter (None: all)
refused: dict[str, str] = {}  # manifest -> why it is not watched (it is stat-checked instead)
_lookups: dict[str, int] = {}  # stat-checked lookups per manifest, until WATCH_AFTER
verified: set[str] = set()  # manifests checked since the last relevant event
generation = 0
poll: Callable[[float, int], list[tuple[int, int]]] | None = None  # the queue's epoll, once it runs
quiet_answer: list[tuple[int, int]] = []  # what poll returns when nothing happened
mount_news: tuple[tuple[int, int], ...] = ((-1, 0), (-1, 0))  # poll's answers to a mount change
_idle_wakeups = 0  # slow paths in a row caused only by events about other files
NOISY_AFTER = 256  # then the folders are too busy for a watch to pay: stat instead
# Queues whose descriptors were closed under us. Kept, never closed: their numbers may now
# belong to someone else's files.
_abandoned: list[Queue] = []


def distrust() -> None:
    global generation
    verified.clear()
    generation += 1


def after_mount_news() -> None:
    """A fast path's poll took the one-shot mount event (or may have: it was interrupted). It
    has already emptied `verified` and `armed`; this makes arming in progress stale too."""
    global _news
    _news += 1
    distrust()


def prepare(path: str) -> str:
    """Before `path` is checked: take in the news, (re-)arm its watches.

    "verified": nothing relevant happened and path was verified: use the cached copy as it is.
    "check": watched: stat and re-read the file, then mark it verified (if `generation` is
    still what it was after this call). "stat": not watched: an ordinary stat check.
    """
    if _queue is not None:
        kept = set(verified)
        distrust()
        seen = generation
        if not _take_news(_queue) and generation == seen:
            verified.update(kept)
            if path in kept:
                return "verified"
    if path in refused or not _is_eligible(path):
        return "stat"
    if armed.get(path) != _news:
        news = _news  # read first: news arriving while it arms leaves it stale
        if not _arm(path):
            return "stat"
        armed[path] = news
    return "check"


def _take_news(queue: Queue) -> bool:
    """Read what happened; True when it may concern a manifest (then every one is re-armed)."""
    global _idle_wakeups, _news
    # News first, pessimistically: if a signal handler raises while the events are being
    # taken, every manifest is re-armed on its next lookup instead of trusting old watches.
    before = _news
    _news += 1
    intact, queued, mounts_changed = queue.look()
    if not intact:
        _forget_queue(close=False)
        return True
    relevant = mounts_changed or (queued and _relevant(queue.read()))
    if not relevant:  # nothing happened to a manifest: what was armed still is
        for path, armed_at in list(armed.items()):
            if armed_at == before:
                armed[path] = _news
    _idle_wakeups = 0 if relevant or not queued else _idle_wakeups + 1
    if _idle_wakeups >= NOISY_AFTER:
        _give_up("its folders change too often for a watch to pay")
    return relevant


def _relevant(events: list[Event]) -> bool:
    for event in events:
        if event.wd == -1:  # the queue overflowed: events were lost
            return True
        names = _wd_names.get(event.wd, frozenset())
        if event.mask & IN_IGNORED:  # a watch ended; not one we removed ourselves
            if event.wd in _wd_names:
                del _wd_names[event.wd]
                return True
            continue
        if names is None or event.name == "" or event.name in names:
            return True
    return False


def _forget_queue(*, close: bool) -> None:
    """Drop the queue and all that depends on it; the next lookup builds a new one. Its
    descriptors are closed only if asked and still ours: their numbers may now be someone
    else's (kept in _abandoned, so no finaliser closes them either)."""
    global _queue, poll
    queue, _queue, poll = _queue, None, None
    quiet_answer.clear()
    distrust()
    armed.clear()
    _path_wds.clear()
    _wd_names.clear()
    if queue is not None:
        if close and queue.intact():
            queue.close()
        else:
            _abandoned.append(queue)


def _give_up(why: str) -> None:
    for path in list(_eligible):
        refused[path] = why
    armed.clear()


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
    try:
        _eligible[path] = os.stat(os.path.dirname(path)).st_dev  # noqa: PTH116, PTH120
    except OSError:
        return False
    return True


def _arm(path: str) -> bool:
    """Add the watches covering path, from / down: a folder swapped while this runs is caught
    by the watch already on the level above it. Symlinks are not followed, so a folder turned
    into one is refused; a folder on another filesystem than when judged is judged again."""
    global _queue, poll, mount_news
    folders = [str(folder) for folder in reversed(Path(path).parents)]
    try:
        if os.stat(folders[-1]).st_dev != _eligible[path]:  # noqa: PTH116 (a mount came)
            del _eligible[path]
            return _is_eligible(path) and _arm(path)
        if _queue is None:
            try:
                from recio_setup.inotify_queue import Queue
            except ImportError:  # a lookup in a signal handler, while this thread imports it
                return False
            _queue = Queue()
            poll = _queue.poll
            quiet_answer[:] = _queue.quiet
            mount_news = _queue.mount_news
        wds = _add_all(_queue, path, folders)
    except (FileNotFoundError, NotADirectoryError):
        return _judge_missing(path, folders)
    except (OSError, AttributeError) as exc:  # no inotify, out of watches or queues
        refused[path] = f"inotify: {exc}"
        return False
    if wds is None:
        return False
    _replace_wds(path, wds)
    return True


def _add_all(queue: Queue, path: str, folders: list[str]) -> list[int] | None:
    # Each folder with the name below it; the manifest's own folder hears its entries change.
    wds = []
    for folder, below in itertools.pairwise([*folders, path]):
        events = FOLDER_EVENTS if below == path else ANCESTOR_EVENTS
        wds.append(_add(queue, folder, events | IN_ONLYDIR, below))
    mode = _lstat_mode(path)
    if stat.S_ISLNK(mode):
        refused[path] = "the manifest is a symlink: its target can change unheard"
        return None
    if mode:  # a missing file is fine: its folder hears it come back
        wds.append(_add(queue, path, FILE_EVENTS, None))
    return wds


def _add(queue: Queue, path: str, mask: int, child: str | None) -> int:
    """Watch path (never through a symlink); remember which of its events matter: those about
    itself, and those naming `child` (all of them when child is None: the manifest itself)."""
    wd = queue.add(path, mask | IN_DONT_FOLLOW)
    names = _wd_names.get(wd, frozenset())
    _wd_names[wd] = None if child is None or names is None else names | {os.path.basename(child)}  # noqa: PTH119
    return wd


def _lstat_mode(path: str) -> int:
    try:
        return os.lstat(path).st_mode
    except FileNotFoundError:
        return 0


def _judge_missing(path: str, folders: list[str]) -> bool:
    # A folder of the path is missing (stat now, arm later) or is a symlink (refused for good).
    for folder in folders:
        if stat.S_ISLNK(_lstat_mode(folder)):
            refused[path] = "a symlink in the path"
            break
    return False


def _replace_wds(path: str, wds: list[int]) -> None:
    """Remember path's watches; end the ones it no longer needs and no other manifest uses
    (an old folder kept by a deploy would otherwise hold a watch for ever)."""
    old = set(_path_wds.get(path, ())) - set(wds)
    _path_wds[path] = wds
    in_use = {wd for other in _path_wds.values() for wd in other}
    for wd in old - in_use:
        _wd_names.pop(wd, None)  # first: the IN_IGNORED this causes is then not news
        if _queue is not None:
            _queue.remove(wd)


def reset() -> None:
    """Back to a fresh process, but for the queue itself (tests; clear_cache)."""
    global _idle_wakeups
    distrust()
    armed.clear()
    _eligible.clear()
    refused.clear()
    _lookups.clear()
    _idle_wakeups = 0


def status(path: str) -> str:
    """ "watched", "counting" or the reason it is not watched: for tests and benchmarks."""
    if path in refused:
        return refused[path]
    return "watched" if path in _eligible else "counting"


def _after_fork_in_child() -> None:
    # The child shares the parent's queue: reading it would steal the parent's events. It has
    # one thread here, so nothing is using the queue while it is closed.
    _forget_queue(close=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
