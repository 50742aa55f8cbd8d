"""Reading the small files of a PostgreSQL cluster the way the rest of recio-setup reads files:
whole, bounded, never hanging on a FIFO; and telling whether a PID is this cluster's server."""

from __future__ import annotations

import os
from pathlib import Path

from recio_setup.errors import StepFailed
from recio_setup.runtime.readfile import TEXT_LIMIT, FileRefused, open_regular, read_whole

# postmaster.pid and a socket's lock file: a few short lines.
LOCK_FILE_LIMIT = 4096


def read_text(path: Path, limit: int = TEXT_LIMIT) -> str | None:
    """The file's text, None when it is missing; StepFailed for one that may not be read or
    is not a regular file of at most `limit` bytes."""
    try:
        return read_whole(path, limit, label=str(path)).decode(errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError as exc:
        raise denied(path) from exc
    except FileRefused as exc:
        raise StepFailed(
            exc.message,
            hint=f"move {path} out of the way; PostgreSQL writes it itself",
            cause="localdb_bad_file",
        ) from None


def denied(path: Path) -> StepFailed:
    owner = _owner_of_first_closed(path)
    return StepFailed(
        f"{path} may not be read by this user: the project-local PostgreSQL belongs to {owner}",
        hint=f"run the command as {owner} (or as root)",
        cause="localdb_denied",
    )


def _owner_of_first_closed(path: Path) -> str:
    import pwd

    for folder in [*reversed(path.parents), path]:
        try:
            st = folder.stat()
        except OSError:
            continue
        if folder == path or not os.access(folder, os.X_OK):
            try:
                return f"the account {pwd.getpwuid(st.st_uid).pw_name!r}"
            except KeyError:
                return f"the user with uid {st.st_uid}"
    return "another user"


def configured_port(data: Path) -> int | None:
    """The port the server will use: the last `port = N` of postgresql.conf, then of
    postgresql.auto.conf (ALTER SYSTEM), as the server reads them."""
    port = None
    for name in ("postgresql.conf", "postgresql.auto.conf"):
        for line in (read_text(data / name) or "").splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "port":
                digits = value.split("#", 1)[0].strip().strip("'")
                port = int(digits) if digits.isdigit() else port
    return port


def pid_in(lock_file: Path) -> int | None:
    """The PID on a lock file's first line; None when missing or not a PID."""
    text = read_text(lock_file, LOCK_FILE_LIMIT) or ""
    first = text.split("\n", 1)[0].strip()
    return int(first) if first.isdigit() and 0 < int(first) < 1 << 22 else None


def is_server_of(pid: int, data: Path) -> bool:
    """Whether `pid` is a live PostgreSQL server working in `data` (its working folder: the
    server enters its data folder), not any postgres process, nor a PID reused after a reboot."""
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or not process.name().startswith("postgres"):
            return False
        return Path(process.cwd()).samefile(data)
    except (psutil.Error, OSError):
        return False


def logged_reason(log: Path, since: int) -> str | None:
    """The last FATAL or PANIC line the server logged after byte `since` of its log."""
    try:
        fd, size = open_regular(log)
    except (OSError, FileRefused):
        return None
    try:
        os.lseek(fd, max(since, size - 8192), os.SEEK_SET)
        lines = os.read(fd, 8192).decode(errors="replace").splitlines()
    finally:
        os.close(fd)
    found = [line for line in lines if "FATAL:" in line or "PANIC:" in line]
    return found[-1].split(":", 3)[-1].strip() if found else None


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
