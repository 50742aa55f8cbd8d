"""Every change to the project tree goes through here.

A `Tree` opens the project folder once and reaches each path below it one component at a time,
through folder file descriptors opened with O_NOFOLLOW (the openat style of systemd-tmpfiles). A
symlink anywhere on the way, even one swapped in after planning, stops the operation instead of
redirecting a chmod, a write or a move outside the project. Files are created with their final
mode from the first byte and replaced atomically (temp file in the same folder, fsync, rename).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from recio_setup.errors import PROGRAM, RecioError, StepFailed
from recio_setup.runtime.readfile import open_regular, read_fd, sha256_fd
from recio_setup.tree.fsentry import (
    DENIED_ERRNOS,
    Conflict,
    Denied,
    Found,
    UnsafePath,
    found_from_stat,
    reports_denied,
)
from recio_setup.tree.modes import locks_out_its_owner, shares_its_inode

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO someone left in the tree must not hang the run.
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
TEMP_TOKEN_BYTES = 4


def temp_name(name: str, pid: int, token: bytes) -> str:
    """The name write_file gives its temp file beside `name`; leftovers.py recognises exactly it."""
    return f".{name}.{pid}-{token.hex()}.tmp"


def split_rel(rel: str) -> list[str]:
    """The components of a project-relative path; absolute paths and '..' are refused."""
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts or not path.parts or "\0" in rel:
        raise UnsafePath(f"refusing the path {rel!r}: it must stay inside the project")
    return list(path.parts)


class Tree:
    """The project folder, opened once. All paths given to its methods are relative to it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            # The root itself is the user's choice and may be reached through a symlink.
            self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise RecioError(
                f"the project folder {root} does not exist", hint="pass --root DIR"
            ) from exc
        except NotADirectoryError as exc:
            raise RecioError(f"{root} is not a folder", hint="pass --root DIR") from exc
        except PermissionError as exc:
            raise Denied(root, "", "open the project folder", "permission denied") from exc

    def close(self) -> None:
        os.close(self.root_fd)

    def __enter__(self) -> Tree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- walking ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def parent(self, rel: str) -> Iterator[tuple[int, str]]:
        """Yield (fd of the folder holding rel, rel's last component), reached with O_NOFOLLOW."""
        parts = split_rel(rel)
        fd = os.dup(self.root_fd)
        try:
            for index, part in enumerate(parts[:-1]):
                try:
                    child = os.open(part, DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    where = "/".join(parts[: index + 1])
                    if exc.errno in DENIED_ERRNOS:
                        raise Denied(self.root, where, f"reach {rel}", "permission denied") from exc
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                        raise UnsafePath(
                            f"{where} is not a real folder (a symlink or a file); "
                            f"refusing to reach {rel} through it",
                            hint=f"run `{PROGRAM} check` to see it, `{PROGRAM} reset` to repair",
                        ) from exc
                    raise
                os.close(fd)
                fd = child
            yield fd, parts[-1]
        finally:
            os.close(fd)

    def inspect(self, rel: str) -> Found:
        try:
            with self.parent(rel) as (fd, name):
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                target = os.readlink(name, dir_fd=fd) if stat.S_ISLNK(st.st_mode) else None
                return found_from_stat(st, target)
        except FileNotFoundError:
            return Found("missing")
        except UnsafePath:
            return Found("blocked", blocked_by=self._first_unreal_ancestor(rel))
        except Denied as exc:
            return Found("denied", blocked_by=exc.where)
        except PermissionError:
            # The folder could be opened but not searched (r without x).
            return Found("denied", blocked_by=str(PurePosixPath(rel).parent).strip("."))

    def _first_unreal_ancestor(self, rel: str) -> str:
        parts = split_rel(rel)
        for index in range(1, len(parts)):
            prefix = "/".join(parts[:index])
            if self.inspect(prefix).kind != "dir":
                return prefix
        return rel

    @reports_denied("list")
    def list_dir(self, rel: str) -> list[str]:
        """Names in a folder, reached without following symlinks; [] when it is missing."""
        try:
            with self.parent(rel) as (fd, name):
                child = _open_real_dir(rel, name, fd)
                try:
                    return sorted(os.listdir(child))
                finally:
                    os.close(child)
        except FileNotFoundError:
            return []

    @reports_denied("list")
    def list_entries(self, rel: str) -> list[tuple[str, Found]]:
        """(name, Found) for each entry directly in a folder, by lstat: nothing is followed or read.

        [] when the folder is missing; only one level, so its cost is the folder's own size.
        "" lists the project folder itself.
        """
        if not rel:
            return sorted(_lstat_entries(self.root_fd), key=lambda entry: entry[0])
        try:
            with self.parent(rel) as (fd, name):
                child = _open_real_dir(rel, name, fd)
                try:
                    return sorted(_lstat_entries(child), key=lambda entry: entry[0])
                finally:
                    os.close(child)
        except FileNotFoundError:
            return []

    # -- changing ------------------------------------------------------------------------------
    @reports_denied("create")
    def make_dir(self, rel: str, mode: int) -> None:
        """Create one folder with exactly `mode`; its parent must exist."""
        with self.parent(rel) as (fd, name):
            try:
                # 0o700 & ~umask is never looser than any mode we want; fchmod then makes it exact.
                os.mkdir(name, 0o700, dir_fd=fd)
            except FileExistsError as exc:
                raise Conflict(f"{rel} appeared while this run was working; left as it is") from exc
            except FileNotFoundError as exc:
                # The parent is open, so the file system itself refuses (/proc, sysfs).
                raise StepFailed(
                    f"cannot create {rel}: the file system holding the project refuses it "
                    f"({exc.strerror})",
                    hint="choose a project folder on an ordinary disk (--root DIR)",
                ) from exc
            # Under a umask like 777 the new folder is 0000: set its mode without entering it.
            self._chmod_at(fd, name, rel, mode, None)

    def ensure_dirs(self, rel: str, mode: int) -> None:
        """Create rel and any missing parents with `mode`; existing folders are left alone, but
        for one its owner cannot enter (a umask 777 leftover), which gets `mode`."""
        parts = split_rel(rel)
        for index in range(1, len(parts) + 1):
            prefix = "/".join(parts[:index])
            found = self.inspect(prefix)
            if found.kind == "missing":
                with contextlib.suppress(Conflict):
                    self.make_dir(prefix, mode)
            elif found.kind == "dir" and locks_out_its_owner(found.mode or 0, "dir"):
                self.chmod(prefix, mode, found)
            elif found.kind == "denied":
                where = found.blocked_by or ""
                raise Denied(self.root, where, f"reach {prefix}", "permission denied")
            elif found.kind != "dir":
                raise UnsafePath(f"{prefix} is not a real folder ({found.describe()})")

    @reports_denied("change the mode of")
    def chmod(self, rel: str, mode: int, expect: Found | None = None) -> None:
        """Set the mode of the file or folder at rel itself, never of a symlink's target, nor of
        a file another hard link shares (its inode may be a file outside the project)."""
        with self.parent(rel) as (fd, name):
            self._chmod_at(fd, name, rel, mode, expect)

    def _chmod_at(self, fd: int, name: str, rel: str, mode: int, expect: Found | None) -> None:
        """chmod the entry `name` in folder fd, even one its owner may not read (mode 0000)."""
        try:
            target = os.open(name, FILE_FLAGS, dir_fd=fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise UnsafePath(f"{rel} is a symlink; its target was not touched") from exc
            if exc.errno != errno.EACCES:
                raise
            if not hasattr(os, "O_PATH"):
                # macOS: no O_PATH, but its fchmodat can refuse to follow a symlink.
                self._check_same(rel, os.stat(name, dir_fd=fd, follow_symlinks=False), expect)
                os.chmod(name, mode, dir_fd=fd, follow_symlinks=False)
                return
            target = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        try:
            self._check_same(rel, os.fstat(target), expect)
            try:
                os.fchmod(target, mode)
            except OSError:
                # An O_PATH descriptor cannot be fchmod-ed; its /proc entry can, safely.
                os.chmod(f"/proc/self/fd/{target}", mode)
        finally:
            os.close(target)

    @staticmethod
    def _check_same(rel: str, st: os.stat_result, expect: Found | None) -> None:
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise Conflict(f"{rel} is neither a file nor a folder; left as it is")
        if shares_its_inode("file" if stat.S_ISREG(st.st_mode) else "dir", st.st_nlink):
            raise UnsafePath(
                f"{rel} has {st.st_nlink} hard links: another name, maybe outside the project, "
                "shares it, so its mode was not changed",
                hint=f"`{PROGRAM} reset` moves this name into the archive and puts a private "
                "copy in its place",
            )
        if (
            expect is not None
            and expect.ino is not None
            and (st.st_ino, st.st_dev)
            != (
                expect.ino,
                expect.dev,
            )
        ):
            raise Conflict(f"{rel} was replaced while this run was working; left as it is")

    @contextlib.contextmanager
    def _regular_file(self, rel: str) -> Iterator[tuple[int, int]]:
        """(descriptor, size) of the regular file at rel, reached without following a symlink;
        readfile.FileRefused for a FIFO, device or folder."""
        with self.parent(rel) as (fd, name):
            try:
                handle, size = open_regular(name, label=rel, dir_fd=fd, follow_symlinks=False)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise UnsafePath(f"{rel} is a symlink; it was not read") from exc
                raise
            try:
                yield handle, size
            finally:
                os.close(handle)

    @reports_denied("read")
    def read_file(self, rel: str, limit: int) -> bytes:
        """All of a regular file; FileRefused if it holds more than `limit` (a readfile limit)."""
        with self._regular_file(rel) as (handle, size):
            return read_fd(handle, size, limit, rel)

    @reports_denied("read")
    def sha256(self, rel: str) -> str:
        """The SHA-256 of a regular file of any size, read in constant memory."""
        with self._regular_file(rel) as (handle, _):
            return sha256_fd(handle)

    @reports_denied("write")
    def write_file(self, rel: str, data: bytes, mode: int, *, replace: bool = False) -> None:
        """Write rel atomically with exactly `mode` from the first byte.

        With replace=False an existing entry is never touched (Conflict). With replace=True the
        entry at rel (a file, or a symlink itself) is swapped for the new file by rename; the caller
        archives the old one first.
        """
        with self.parent(rel) as (fd, name):
            # Unpredictable enough to avoid clashes (O_EXCL refuses any); not a secret.
            temp = temp_name(name, os.getpid(), os.urandom(TEMP_TOKEN_BYTES))
            handle = os.open(
                temp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                mode,
                dir_fd=fd,
            )
            try:
                try:
                    os.fchmod(handle, mode)  # the umask can only have made it stricter
                    _write_all(handle, data)
                    os.fsync(handle)
                finally:
                    os.close(handle)
                self._put_in_place(fd, temp, name, rel, replace)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=fd)
                raise
            _fsync_dir(fd)

    @staticmethod
    def _put_in_place(fd: int, temp: str, name: str, rel: str, replace: bool) -> None:
        if replace:
            os.rename(temp, name, src_dir_fd=fd, dst_dir_fd=fd)
            return
        try:
            # link() fails if the name exists, so a file that appeared meanwhile is never replaced.
            os.link(temp, name, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
        except FileExistsError as exc:
            raise Conflict(f"{rel} appeared while this run was working; left as it is") from exc
        os.unlink(temp, dir_fd=fd)

    @reports_denied("move")
    def move(self, src: str, dst: str, *, dst_dir_mode: int = 0o700) -> None:
        """Rename src (a file, folder or the symlink itself) to dst, creating dst's parents."""
        dst_parent = str(PurePosixPath(dst).parent)
        if dst_parent != ".":
            self.ensure_dirs(dst_parent, dst_dir_mode)
        with self.parent(src) as (src_fd, src_name), self.parent(dst) as (dst_fd, dst_name):
            if _exists_at(dst_fd, dst_name):
                raise Conflict(f"{dst} already exists; {src} was not moved")
            os.rename(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
            _fsync_dir(dst_fd)
            _fsync_dir(src_fd)

    @reports_denied("link")
    def hard_link(self, src: str, dst: str, *, dst_dir_mode: int = 0o700) -> bool:
        """Give src a second name (to keep a previous version); False where unsupported."""
        dst_parent = str(PurePosixPath(dst).parent)
        if dst_parent != ".":
            self.ensure_dirs(dst_parent, dst_dir_mode)
        with self.parent(src) as (src_fd, src_name), self.parent(dst) as (dst_fd, dst_name):
            try:
                os.link(
                    src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd, follow_symlinks=False
                )
            except OSError as exc:
                if exc.errno in (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
                    return False
                raise
        return True


def _open_real_dir(rel: str, name: str, parent_fd: int) -> int:
    """A folder to list; a symlink or file standing there is refused, never followed."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):
            raise UnsafePath(f"{rel} is not a real folder") from None
        raise


def _lstat_entries(folder_fd: int) -> list[tuple[str, Found]]:
    entries = []
    for name in os.listdir(folder_fd):
        try:
            st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
            target = os.readlink(name, dir_fd=folder_fd) if stat.S_ISLNK(st.st_mode) else None
        except FileNotFoundError:
            continue  # removed while listing
        entries.append((name, found_from_stat(st, target)))
    return entries


def _exists_at(fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _write_all(handle: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(handle, view)
        view = view[written:]


def _fsync_dir(fd: int) -> None:
    # Makes the rename durable; some filesystems refuse fsync on folders, which is harmless.
    with contextlib.suppress(OSError):
        os.fsync(fd)
