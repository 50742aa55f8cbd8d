"""The port manifest: parse, validate, and a cached lookup that still sees every edit.

The manifest (backend/core/config/MASTER_PORT_MANIFEST.json) is the single source of truth for
ports. Unlike the REC.IO v2 code this replaces, nothing here ever answers with a default port: an
unknown service raises UnknownServiceError, and a manifest that is missing or broken raises
ManifestError naming the file and each problem. Parsing happens again only when the file's
(mtime_ns, size, inode, device, ctime_ns) changes. A lookup costs one stat(), or on Linux, once
a process looks up often, one zero-timeout epoll on an inotify queue (see manifest_watch).
"""

from __future__ import annotations

import difflib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recio_setup import manifest_watch
from recio_setup.errors import RecioError
from recio_setup.manifest_rules import DEFAULT_AVOID, DEFAULT_RANGES, GROUPS, Problem, validate

__all__ = [
    "GROUPS",
    "Manifest",
    "ManifestError",
    "ManifestMissing",
    "Problem",
    "Service",
    "UnknownServiceError",
    "cached_manifest",
    "clear_cache",
    "load_manifest",
    "lookup_port",
    "parse_manifest",
]


class ManifestError(RecioError):
    """The manifest cannot be used: unreadable, not JSON, or failing validation."""

    def __init__(
        self, path: Path | str, problem: str, *, problems: list[Problem] | None = None
    ) -> None:
        super().__init__(
            f"port manifest {path}: {problem}",
            hint="fix the file by hand, or run `recio-setup reset` to reinstall the template "
            "(the current file is archived)",
            cause="manifest_invalid",
        )
        self.path = str(path)
        self.problems = problems or []


class ManifestMissing(ManifestError):
    def __init__(self, path: Path | str) -> None:
        super().__init__(path, "the file does not exist")
        self.hint = "run `recio-setup init` to install it from the template"
        self.cause = "manifest_missing"


class UnknownServiceError(RecioError, KeyError):
    """A service name the manifest does not know; a KeyError, so `except KeyError` works too."""

    def __init__(self, name: str, known: list[str], path: Path | str) -> None:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        suggestion = f"did you mean {', '.join(close)}?" if close else "no similar name"
        super().__init__(
            f"unknown service {name!r} in port manifest {path}; {suggestion}",
            hint=f"known services: {', '.join(sorted(known))}",
            cause="unknown_service",
        )
        self.name = name
        self.close_matches = close

    def __str__(self) -> str:
        # KeyError would show repr(message); a service author should read the sentence.
        return self.message


@dataclass(frozen=True)
class Service:
    name: str
    group: str
    port: int
    description: str = ""
    status: str = ""


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest: its services in file order, its port policy and its problems."""

    path: Path
    services: dict[str, Service]
    ranges: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_RANGES))
    avoid: tuple[int, ...] = DEFAULT_AVOID
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def port(self, name: str) -> int:
        service = self.services.get(name)
        if service is None:
            raise UnknownServiceError(name, list(self.services), self.path)
        return service.port

    def ports(self) -> dict[str, int]:
        return {name: service.port for name, service in self.services.items()}

    def require_ok(self) -> Manifest:
        """Raise ManifestError listing every problem; services must not run on a bad manifest."""
        if self.problems:
            listed = "; ".join(problem.text() for problem in self.problems)
            raise ManifestError(self.path, listed, problems=self.problems)
        return self


def _json_error(path: Path | str, exc: json.JSONDecodeError) -> ManifestError:
    return ManifestError(
        path, f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
    )


def parse_manifest(data: bytes | str, path: Path | str) -> Manifest:
    """Parse and validate manifest text. Bad JSON raises; rule violations become `problems`."""
    try:
        document: Any = json.loads(data)
    except json.JSONDecodeError as exc:
        raise _json_error(path, exc) from None
    except UnicodeDecodeError as exc:
        raise ManifestError(path, f"not UTF-8 text ({exc.reason})") from None
    checked = validate(document)
    services = {
        entry.name: Service(entry.name, entry.group, entry.port, entry.description, entry.status)
        for entry in checked.services
    }
    return Manifest(Path(path), services, checked.ranges, checked.avoid, checked.problems)


def load_manifest(path: Path) -> Manifest:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ManifestMissing(path) from None
    except IsADirectoryError:
        raise ManifestError(path, "is a folder, not a file") from None
    except OSError as exc:
        raise ManifestError(path, f"cannot be read: {exc.strerror}") from None
    return parse_manifest(data, path)


# -- the cache ------------------------------------------------------------------------------
# path -> (stamp, manifest). The inode and device are in the stamp because an editor or a
# deploy may replace the file by rename with the same size and a preserved mtime; the ctime
# because an in-place edit of the same size may be followed by restoring the mtime (the kernel
# sets ctime on every change, and no call sets it back).
Stamp = tuple[int, int, int, int, int]
_cache: dict[str, tuple[Stamp, Manifest]] = {}
_lock = threading.Lock()


def _stamp(path: str) -> Stamp:
    try:
        st = os.stat(path)  # noqa: PTH116 (no Path object per lookup: this is the hot path)
    except FileNotFoundError:
        raise ManifestMissing(path) from None
    except OSError as exc:
        raise ManifestError(path, f"cannot be read: {exc.strerror}") from None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev, st.st_ctime_ns)


def _checked(path: str) -> Manifest:
    """The manifest at path after a stat: re-parsed only if its stamp changed; must be valid."""
    with _lock:
        watching = manifest_watch.prepare(path)  # before the stat: a later edit queues an event
        stamp = _stamp(path)
        hit = _cache.get(path)
        if hit is None or hit[0] != stamp:
            # The stamp was taken before reading: if the file changes while it is read, the
            # next call sees a newer stamp (and an event) and reads it again.
            hit = (stamp, load_manifest(Path(path)))
            _cache[path] = hit
        manifest = hit[1].require_ok()
        if watching:
            manifest_watch.verified.add(path)
        return manifest


def cached_manifest(path: Path | str) -> Manifest:
    """The manifest at path, parsed once per version of the file; must be valid."""
    key = os.fspath(path)
    poll = manifest_watch.poll
    # The queue is asked before `verified`: an entry is trusted only if no event is waiting.
    if poll is not None and not poll(0, 1) and key in manifest_watch.verified:
        hit = _cache.get(key)
        if hit is not None:
            return hit[1]
    return _checked(key)


def lookup_port(path: str, name: str) -> int:
    """get_port's hot path: while the manifest is unchanged, one epoll (or one stat where a watch
    cannot be exact) and two dict lookups. Anything unusual (a changed, missing or invalid file,
    an unknown name) goes the long way, which raises the right error."""
    poll = manifest_watch.poll
    if poll is not None and not poll(0, 1) and path in manifest_watch.verified:
        hit = _cache.get(path)  # (clear_cache may run in another thread)
        manifest: Manifest | None = hit[1] if hit is not None else None
    elif path in manifest_watch.refused:
        manifest = _unchanged_by_stat(path)
    else:
        manifest = None
    if manifest is not None:
        service = manifest.services.get(name)
        if service is not None:
            return service.port
    return _checked(path).port(name)


def _unchanged_by_stat(path: str) -> Manifest | None:
    """The cached manifest if a stat shows the file unchanged and it is valid; no lock taken."""
    try:
        st = os.stat(path)  # noqa: PTH116 (hot path)
    except OSError:
        return None
    hit = _cache.get(path)
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev, st.st_ctime_ns)
    return hit[1] if hit is not None and hit[0] == stamp and not hit[1].problems else None


def clear_cache() -> None:
    with _lock:
        manifest_watch.reset()  # first: a lookup must not trust an entry about to go
        _cache.clear()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
