"""The run lock: an flock on backend/data/locks/bootstrap.lock, so two runs never change the
tree at once. The holder writes its PID and command there, so a waiting run can name it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Callable
from pathlib import PurePosixPath

from recio_setup.errors import PROGRAM, StepFailed
from recio_setup.tree.fsops import Tree
from recio_setup.tree.modes import mode_to_set, shares_its_inode

LOCK_MODE = 0o644
_LOCK_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def _open_lock_file(folder_fd: int, name: str) -> int:
    """The lock file, created with exactly LOCK_MODE whatever the umask."""
    try:
        handle = os.open(name, _LOCK_FLAGS | os.O_CREAT | os.O_EXCL, LOCK_MODE, dir_fd=folder_fd)
    except FileExistsError:
        return os.open(name, _LOCK_FLAGS, dir_fd=folder_fd)
    try:
        os.fchmod(handle, LOCK_MODE)
    except BaseException:
        os.close(handle)
        raise
    return handle


def _lock_file_problem(handle: int) -> str | None:
    """Why the opened lock file cannot be used (None: it can); a wrong mode is put right."""
    st = os.fstat(handle)
    if not stat.S_ISREG(st.st_mode):
        return "it is not a regular file"
    if shares_its_inode("file", st.st_nlink):
        # Writing the PID would truncate whatever file outside the project shares it.
        return f"it has {st.st_nlink} hard links, so another file shares it"
    new = mode_to_set(stat.S_IMODE(st.st_mode), LOCK_MODE, "file")
    if new is not None:
        # Someone else's lock keeps its mode (check reports it); it still works as a lock.
        with contextlib.suppress(PermissionError):
            os.fchmod(handle, new)
    return None


class RunLock:
    """An flock on backend/data/locks/bootstrap.lock, so two runs never change the tree at once."""

    def __init__(
        self,
        tree: Tree,
        rel: str,
        timeout: float,
        *,
        command: str = "",
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.tree = tree
        self.rel = rel
        self.timeout = timeout
        self.command = command  # written beside the PID, so a waiting run can name the holder
        self.on_wait = on_wait  # told once, the moment this run has to wait
        self.handle: int | None = None

    def __enter__(self) -> RunLock:
        self.tree.ensure_dirs(str(PurePosixPath(self.rel).parent), 0o755)
        with self.tree.parent(self.rel) as (fd, name):
            try:
                self.handle = _open_lock_file(fd, name)
            except OSError as exc:
                raise self.unusable(exc.strerror or "cannot be opened") from None
            problem = _lock_file_problem(self.handle)
            if problem is not None:
                os.close(self.handle)
                self.handle = None
                raise self.unusable(problem)
        # From here an error (a full disk, Ctrl-C while waiting) means __exit__ will not run:
        # unlock and close here, or a process that goes on (a test, a service) keeps both.
        try:
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if self.on_wait is not None:
                        self.on_wait(
                            f"waiting for {self._holder() or 'another run'} to finish, "
                            f"up to {self.timeout:g} s (--lock-timeout)"
                        )
                        self.on_wait = None
                    if time.monotonic() >= deadline:
                        holder = self._holder()
                        os.close(self.handle)
                        self.handle = None
                        raise StepFailed(
                            f"another recio-setup run{f', {holder},' if holder else ''} holds "
                            f"{self.rel}; "
                            f"gave up after waiting {self.timeout:g}s",
                            hint="wait for it to finish, or raise --lock-timeout",
                            cause="locked",
                        ) from None
                    time.sleep(0.05)
            os.ftruncate(self.handle, 0)
            os.pwrite(self.handle, f"{os.getpid()} {self.command}".strip().encode() + b"\n", 0)
        except BaseException:
            self.__exit__()
            raise
        return self

    def unusable(self, why: str) -> StepFailed:
        return StepFailed(
            f"the run lock {self.rel} cannot be used: {why}",
            hint=f"`{PROGRAM} reset` moves it into the archive (or move it away yourself)",
            cause="bad_lock",
        )

    def _holder(self) -> str:
        """`PID 1234 (init)` from what the holder wrote: its PID, then its command."""
        if self.handle is None:
            return ""
        pid, _, command = os.pread(self.handle, 64, 0).decode(errors="replace").partition(" ")
        if not pid.strip().isdigit():
            return ""
        named = command.strip()
        return f"PID {pid.strip()}" + (f" ({named})" if named.isidentifier() else "")

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            os.close(self.handle)
            self.handle = None
