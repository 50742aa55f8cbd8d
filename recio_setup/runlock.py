"""The run lock: an flock on backend/data/locks/bootstrap.lock, so two runs never change the
tree at once. The holder writes its PID there, so a waiting run can name it."""

from __future__ import annotations

import fcntl
import os
import stat
import time
from pathlib import PurePosixPath

from recio_setup.errors import StepFailed
from recio_setup.fsops import Tree


class RunLock:
    """An flock on backend/data/locks/bootstrap.lock, so two runs never change the tree at once."""

    def __init__(self, tree: Tree, rel: str, timeout: float) -> None:
        self.tree = tree
        self.rel = rel
        self.timeout = timeout
        self.handle: int | None = None

    def __enter__(self) -> RunLock:
        self.tree.ensure_dirs(str(PurePosixPath(self.rel).parent), 0o755)
        with self.tree.parent(self.rel) as (fd, name):
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
            try:
                self.handle = os.open(name, flags, 0o644, dir_fd=fd)
            except OSError as exc:
                raise self.unusable(exc.strerror or "cannot be opened") from None
            if not stat.S_ISREG(os.fstat(self.handle).st_mode):
                os.close(self.handle)
                self.handle = None
                raise self.unusable("it is not a regular file")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self._holder()
                    os.close(self.handle)
                    self.handle = None
                    raise StepFailed(
                        f"another recio-setup run{holder} holds {self.rel}; "
                        f"gave up after waiting {self.timeout:g}s",
                        hint="wait for it to finish, or raise --lock-timeout",
                        cause="locked",
                    ) from None
                time.sleep(0.05)
        os.ftruncate(self.handle, 0)
        os.pwrite(self.handle, f"{os.getpid()}\n".encode(), 0)
        return self

    def unusable(self, why: str) -> StepFailed:
        return StepFailed(
            f"the run lock {self.rel} cannot be used: {why}",
            hint="`recio-setup reset` moves it into the archive (or move it away yourself)",
            cause="bad_lock",
        )

    def _holder(self) -> str:
        if self.handle is None:
            return ""
        text = os.pread(self.handle, 32, 0).decode(errors="replace").strip()
        return f" (PID {text})" if text.isdigit() else ""

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            os.close(self.handle)
            self.handle = None
