"""The port manifest: parse, validate, and a cached lookup that still sees every edit.

The manifest (backend/core/config/MASTER_PORT_MANIFEST.json) is the single source of truth for
ports. Unlike the REC.IO v2 code this replaces, nothing here ever answers with a default port: an
unknown service raises UnknownServiceError, and a manifest that is missing or broken raises
ManifestError naming the file and each problem. Parsing happens again only when the file's
(mtime_ns, size, inode, device) changes, so a lookup costs one stat().
"""

from __future__ import annotations

import difflib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
# deploy may replace the file by rename with the same size and a preserved mtime.
Stamp = tuple[int, int, int, int]
_cache: dict[str, tuple[Stamp, Manifest]] = {}
_lock = threading.Lock()


def _stamp(path: str) -> Stamp:
    try:
        st = os.stat(path)  # noqa: PTH116 (no Path object per lookup: this is the hot path)
    except FileNotFoundError:
        raise ManifestMissing(path) from None
    except OSError as exc:
        raise ManifestError(path, f"cannot be read: {exc.strerror}") from None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)


def cached_manifest(path: Path | str) -> Manifest:
    """The manifest at path, parsed once per version of the file; must be valid."""
    key = os.fspath(path)
    stamp = _stamp(key)
    hit = _cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1].require_ok()
    with _lock:
        # The stamp was taken before reading: if the file changes while it is read, the next
        # call sees a newer stamp and reads it again, so a stale parse is never kept.
        manifest = load_manifest(Path(key))
        _cache[key] = (stamp, manifest)
    return manifest.require_ok()


def lookup_port(path: str, name: str) -> int:
    """get_port's hot path: one stat and two dict lookups while the file is unchanged.

    Anything unusual (a changed, missing or invalid file, an unknown name) goes the long way
    through cached_manifest, which raises the right error.
    """
    try:
        st = os.stat(path)  # noqa: PTH116 (hot path)
    except OSError:
        return cached_manifest(path).port(name)
    hit = _cache.get(path)
    if (
        hit is not None
        and hit[0] == (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)
        and not hit[1].problems
    ):
        service = hit[1].services.get(name)
        if service is not None:
            return service.port
    return cached_manifest(path).port(name)


def clear_cache() -> None:
    with _lock:
        _cache.clear()
