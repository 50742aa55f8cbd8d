"""get_port's cache of the manifest: parsed once per version, yet every edit seen on the next call.

A lookup costs one stat() while the file is unchanged; file_cache says when the bytes are read
again (a changed stamp, or a file younger than the timestamp granularity) and the manifest is
parsed again only when they differ.
"""

from __future__ import annotations

import os

from recio_setup.runtime.file_cache import FileCache
from recio_setup.runtime.ports import (
    Manifest,
    ManifestError,
    ManifestMissing,
    parse_manifest,
    read_manifest_bytes,
)

__all__ = ["cached_manifest", "clear_cache"]

_manifests: FileCache[Manifest] = FileCache(read_manifest_bytes, parse_manifest)


def cached_manifest(path: os.PathLike[str] | str) -> Manifest:
    """The manifest at path, parsed once per version of the file; must be valid."""
    key = os.fspath(path)
    try:
        manifest = _manifests.get(key)
    except FileNotFoundError:
        raise ManifestMissing(key) from None
    except OSError as exc:
        raise ManifestError(key, f"cannot be read: {exc.strerror}") from None
    return manifest.require_ok()


def clear_cache() -> None:
    _manifests.clear()
