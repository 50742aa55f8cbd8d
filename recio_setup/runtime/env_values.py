"""The project's .env as the runtime library reads it (get_host): values cached per version.

It shares the manifest's stat cache (file_cache): one stat per call while the file is unchanged,
and an edit seen by the very next call. (api keeps a cache of its own, of the validated host,
built from read_env_bytes and parse_env.) It must be a regular UTF-8 file within
readfile.TEXT_LIMIT; anything else raises an error naming it.
"""

from __future__ import annotations

import io

from recio_setup.errors import PROGRAM, UsageError
from recio_setup.runtime.file_cache import FileCache
from recio_setup.runtime.readfile import TEXT_LIMIT, read_whole


def read_env_bytes(path: str) -> bytes:
    """The file's bytes; FileNotFoundError when it is gone, UsageError when it cannot be read."""
    try:
        return read_whole(path, TEXT_LIMIT)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UsageError(
            f"{path} cannot be read: {exc.strerror}", hint="give this user read access to it"
        ) from None


def env_text(data: bytes, path: str) -> str:
    """A .env file's bytes as text; UsageError naming the file when they are not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path} is not UTF-8 text (byte {exc.start})",
            hint=f"run `{PROGRAM} reset` to repair it",
        ) from None


def parse_env(data: bytes, path: str) -> dict[str, str | None]:
    """What python-dotenv reads from a .env file with these bytes."""
    from dotenv import dotenv_values

    return dict(dotenv_values(stream=io.StringIO(env_text(data, path))))


_env_files: FileCache[dict[str, str | None]] = FileCache(read_env_bytes, parse_env)


def env_file_value(path: str, key: str) -> str | None:
    """KEY's value in the .env file at path, stripped; None when unset, blank or no file."""
    try:
        values = _env_files.get(path)
    except OSError:  # the stat failed (no file there), or the file went before it was read
        return None
    value = (values.get(key) or "").strip()
    return value or None


def clear_cache() -> None:
    _env_files.clear()
