"""The project's .env as the runtime library reads it (get_host): values cached per version.

A stat per call sees an edit: the file is read again when its stamp changes. It must be a
regular UTF-8 file within readfile.TEXT_LIMIT; anything else raises an error naming it.
"""

from __future__ import annotations

import io
import os
from typing import Any

from recio_setup.errors import UsageError
from recio_setup.readfile import TEXT_LIMIT, read_whole

_env_cache: dict[str, Any] = {}


def env_file_value(path: str, key: str) -> str | None:
    """KEY's value in the .env file at path, stripped; None when unset, blank or no file."""
    try:
        stat = os.stat(path)  # noqa: PTH116 (a str key, on the hot path like the manifest)
    except OSError:
        return None
    stamp = (path, stat.st_mtime_ns, stat.st_size, stat.st_ino)
    if _env_cache.get("stamp") != stamp:
        values = _read_env_file(path)
        if values is None:
            return None
        _env_cache["values"] = values
        _env_cache["stamp"] = stamp  # after the read: a refused file is refused again next time
    value = _env_cache["values"].get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _read_env_file(path: str) -> dict[str, str | None] | None:
    """The values in a .env file (None if it is gone); UsageError names it when it is not a
    regular UTF-8 text file of at most readfile.TEXT_LIMIT bytes."""
    from dotenv import dotenv_values

    try:
        data = read_whole(path, TEXT_LIMIT)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UsageError(
            f"{path} cannot be read: {exc.strerror}", hint="give this user read access to it"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path} is not UTF-8 text (byte {exc.start})",
            hint="run `recio-setup reset` to repair it",
        ) from None
    return dict(dotenv_values(stream=io.StringIO(text)))
