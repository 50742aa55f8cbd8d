"""The port manifest: parse, validate, and a cached lookup that still sees every edit.

The manifest (backend/core/config/MASTER_PORT_MANIFEST.json) is the single source of truth for
ports. Unlike the REC.IO v2 code this replaces, nothing here ever answers with a default port: an
unknown service raises UnknownServiceError, and a manifest that is missing or broken raises
ManifestError naming the file and each problem. The cached lookup that get_port uses is in
manifest_cache.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recio_setup.errors import PROGRAM, RecioError
from recio_setup.runtime.jsondoc import NotJson, load_json
from recio_setup.runtime.manifest_rules import (
    DEFAULT_AVOID,
    DEFAULT_RANGES,
    GROUPS,
    Problem,
    validate,
)
from recio_setup.runtime.readfile import TEXT_LIMIT, FileRefused, read_whole

__all__ = [
    "GROUPS",
    "Manifest",
    "ManifestError",
    "ManifestMissing",
    "Problem",
    "Service",
    "UnknownServiceError",
    "load_manifest",
    "parse_manifest",
]


class ManifestError(RecioError):
    """The manifest cannot be used: unreadable, not JSON, or failing validation."""

    def __init__(
        self, path: Path | str, problem: str, *, problems: list[Problem] | None = None
    ) -> None:
        super().__init__(
            f"port manifest {path}: {problem}",
            hint=f"fix the file by hand, or run `{PROGRAM} reset` to reinstall the template "
            "(the current file is archived)",
            cause="manifest_invalid",
        )
        self.path = str(path)
        self.problems = problems or []


class ManifestMissing(ManifestError):
    def __init__(self, path: Path | str) -> None:
        super().__init__(path, "the file does not exist")
        self.hint = f"run `{PROGRAM} init` to install it from the template"
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
    # The script relative to the project root, then its arguments (manifest_rules).
    command: tuple[str, ...] = ()


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


def parse_manifest(data: bytes | str, path: Path | str) -> Manifest:
    """Parse and validate manifest text. Bad JSON raises; rule violations become `problems`."""
    try:
        document: Any = load_json(data)
    except NotJson as exc:
        raise ManifestError(path, exc.problem) from None
    checked = validate(document)
    services = {
        entry.name: Service(
            entry.name, entry.group, entry.port, entry.description, entry.status, entry.command
        )
        for entry in checked.services
    }
    return Manifest(Path(path), services, checked.ranges, checked.avoid, checked.problems)


def read_manifest_bytes(path: Path | str) -> bytes:
    """The file's bytes, or the ManifestError that says why they cannot be had."""
    try:
        return read_whole(path, TEXT_LIMIT)
    except FileNotFoundError:
        raise ManifestMissing(path) from None
    except FileRefused as refused:
        raise ManifestError(path, refused.problem) from None
    except OSError as exc:
        raise ManifestError(path, f"cannot be read: {exc.strerror}") from None


def load_manifest(path: Path) -> Manifest:
    return parse_manifest(read_manifest_bytes(path), path)
