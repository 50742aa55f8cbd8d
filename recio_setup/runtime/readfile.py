"""Reading a file whole: never hanging on it, never growing without bound, never cutting it short.

Every file that recio-setup or a service reads in one piece comes through `read_whole`: the
runtime's port manifest and .env, and fsops.Tree.read_file (the CLI's .env, manifest,
config.json, token files and archive records). The open uses O_NONBLOCK, since opening a FIFO
waits for a writer, and O_NOCTTY, since opening a terminal could make it ours; fstat on the open
descriptor then refuses anything that is not a regular file (a FIFO, a device such as /dev/zero,
a socket, a folder). A file over its limit is refused, never read in part: a part would be
taken for the whole and, for .env, written back.

The limits below are the only place their numbers are stated in the code.
"""

from __future__ import annotations

import os
import stat

from recio_setup.errors import UsageError

# .env, the port manifest and config.json: text a person writes, a few KiB. Bigger is refused;
# python-dotenv already needs seconds to read a 1 MiB .env of short lines.
TEXT_LIMIT = 1 << 20
# auth_tokens.json and device_tokens.json: written by the services, they grow with devices; a
# bigger one is reported, its content not judged.
TOKEN_LIMIT = 4 << 20
# An archive's record.json: one entry per moved path; far beyond any real run.
RECORD_LIMIT = 64 << 20
# A file copied into the archive where a hard link is not possible (another filesystem).
COPY_LIMIT = 1 << 30

OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
CHUNK = 1 << 16

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileRefused(UsageError):
    """A file that cannot be read whole: not a regular file, or over its limit."""

    def __init__(self, label: str, problem: str, hint: str) -> None:
        super().__init__(f"{label} {problem}; it was not read", hint=hint, cause="file_refused")
        self.label = label
        self.problem = problem


def size_text(size: int) -> str:
    """1 MiB, 4 MiB, 1.5 MiB, 300 KiB: a limit the way the README states it."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift:
            return f"{size / (1 << shift):g} {unit}"
    return f"{size} bytes"


def kind_of(mode: int) -> str:
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def not_regular(label: str, mode: int) -> FileRefused:
    return FileRefused(
        label,
        f"is {kind_of(mode)}, not a regular file",
        hint=f"replace {label} with a regular file",
    )


def too_large(label: str, limit: int) -> FileRefused:
    return FileRefused(
        label,
        f"is larger than {size_text(limit)}, the most this file may hold",
        hint=f"shorten {label} by hand; nothing cuts it for you",
    )


def open_regular(
    path: str | os.PathLike[str],
    *,
    label: str | None = None,
    dir_fd: int | None = None,
    follow_symlinks: bool = True,
) -> tuple[int, int]:
    """(descriptor, size) of a regular file opened for reading; FileRefused names `label` (else
    the path) for anything else. OSError (a missing file, a symlink with follow_symlinks=False:
    ELOOP) is the caller's to word."""
    flags = OPEN_FLAGS if follow_symlinks else OPEN_FLAGS | os.O_NOFOLLOW
    fd = os.open(path, flags, dir_fd=dir_fd)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise not_regular(label or os.fspath(path), st.st_mode)
    return fd, st.st_size


def read_fd(fd: int, size: int, limit: int, label: str) -> bytes:
    """All of an open regular file's bytes, if it holds at most `limit` of them."""
    if size > limit:
        raise too_large(label, limit)
    chunks: list[bytes] = []
    total = 0
    # One byte past the limit tells a file that grew since the fstat from one that fits.
    while total <= limit:
        chunk = os.read(fd, min(CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    raise too_large(label, limit)


def sha256_fd(fd: int) -> str:
    """The SHA-256 of an open file, read in chunks: any size, in constant memory."""
    import hashlib  # ~5 ms to import; only undo's fingerprints need it

    digest = hashlib.sha256()
    while chunk := os.read(fd, CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def read_whole(path: str | os.PathLike[str], limit: int, *, label: str | None = None) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, following symlinks (a service's
    manifest may be one); see open_regular for the errors."""
    fd, size = open_regular(path, label=label)
    try:
        return read_fd(fd, size, limit, label or os.fspath(path))
    finally:
        os.close(fd)
