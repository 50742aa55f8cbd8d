"""Test guard: loaded through PYTHONPATH in every Python the tests start, where it installs the
guard and (with RECIO_TEST_KILL_AT) the fault injection. tests/conftest.py loads it by path in
pytest itself, where the CLI also runs in-process, and installs only the guard.

It makes the real home folder and the checkout's own .env, backend/data, backend/core/config and
logs/ unwritable, through an audit hook: any open-for-write, mkdir, rename, chmod, link or unlink
that lands there raises PermissionError. Paths given relative to a folder descriptor are resolved
through /proc/self/fd, so the openat-style operations of fsops are covered too.
"""

from __future__ import annotations

import os
import sys

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
FORBIDDEN = [p for p in os.environ.get("RECIO_TEST_FORBIDDEN", "").split(os.pathsep) if p]
# Opening these as folders is how a Tree starts working in them; refuse that too.
FORBIDDEN_DIRS = [p for p in os.environ.get("RECIO_TEST_FORBIDDEN_DIRS", "").split(os.pathsep) if p]


def _resolve(path: object, dir_fd: object = None) -> str | None:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        return None
    if not os.path.isabs(path):
        base = os.getcwd()
        if isinstance(dir_fd, int) and dir_fd >= 0:
            try:
                base = os.readlink(f"/proc/self/fd/{dir_fd}")
            except OSError:
                return None
        path = os.path.join(base, path)
    return os.path.normpath(path)


def _is_forbidden(path: str | None) -> bool:
    if path is None:
        return False
    return any(path == p or path.startswith(p.rstrip(os.sep) + os.sep) for p in FORBIDDEN)


def _refuse(event: str, path: str | None) -> None:
    raise PermissionError(f"test guard: {event} on {path} is forbidden in tests")


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event == "open":
        path, _mode, flags = args
        if not isinstance(flags, int):
            return
        # A relative name here may be relative to a folder descriptor the event does not carry;
        # those are covered by refusing to open the forbidden folders themselves (below).
        resolved = _resolve(path) if isinstance(path, str) and os.path.isabs(path) else None
        if flags & WRITE_FLAGS and _is_forbidden(resolved):
            _refuse("write", resolved)
        if flags & getattr(os, "O_DIRECTORY", 0) and resolved in FORBIDDEN_DIRS:
            _refuse("opening the folder", resolved)
    elif event in ("os.mkdir", "os.chmod", "os.remove", "os.rmdir", "os.chown"):
        path, dir_fd = args[0], args[-1]
        if isinstance(path, int):
            try:
                resolved: str | None = os.readlink(f"/proc/self/fd/{path}")
            except OSError:
                resolved = None
        else:
            resolved = _resolve(path, dir_fd)
        if _is_forbidden(resolved):
            _refuse(event, resolved)
    elif event == "os.symlink":
        # args: (target text, link path, dir_fd); only where the link is made is a write.
        _target, link, dir_fd = (*args, None)[:3]
        if _is_forbidden(_resolve(link, dir_fd)):
            _refuse(event, _resolve(link, dir_fd))
    elif event in ("os.rename", "os.link"):
        src, dst, src_fd, dst_fd = [*list(args), None, None][:4]
        for path, fd in ((src, src_fd), (dst, dst_fd)):
            if _is_forbidden(_resolve(path, fd)):
                _refuse(event, _resolve(path, fd))


def install_guard() -> None:
    """The write guard, once per process (an audit hook cannot be removed)."""
    if FORBIDDEN and not getattr(sys, "_recio_test_guard", False):
        sys._recio_test_guard = True  # type: ignore[attr-defined]
        sys.addaudithook(_hook)


# Fault injection for the kill-point tests: with RECIO_TEST_KILL_AT=N, the process SIGKILLs
# itself just before its Nth file-changing operation (the audit event fires before the system
# call), so every state a power loss could leave is reachable. N=0 only counts, and writes the
# count to RECIO_TEST_KILL_COUNT at exit.
CHANGING_EVENTS = {
    "os.mkdir",
    "os.rename",
    "os.chmod",
    "os.link",
    "os.remove",
    "os.rmdir",
    "os.symlink",
    "os.truncate",
    "os.chown",
}
KILL_AT = int(os.environ.get("RECIO_TEST_KILL_AT", "-1"))


def _changes_files(event: str, args: tuple[object, ...]) -> bool:
    if event == "open":
        flags = args[2]
        return isinstance(flags, int) and bool(flags & WRITE_FLAGS)
    return event in CHANGING_EVENTS


def _install_killer() -> None:
    import atexit
    import signal

    seen = [0]

    def killer(event: str, args: tuple[object, ...]) -> None:
        if _changes_files(event, args):
            seen[0] += 1
            if seen[0] == KILL_AT:
                os.kill(os.getpid(), signal.SIGKILL)

    def report() -> None:
        count = seen[0]
        with open(os.environ["RECIO_TEST_KILL_COUNT"], "w") as out:
            out.write(str(count))

    sys.addaudithook(killer)
    if KILL_AT == 0:
        atexit.register(report)


if __name__ == "sitecustomize":  # a Python the tests started, not pytest loading it by path
    install_guard()
    if KILL_AT >= 0 and not getattr(sys, "_recio_test_killer", False):
        sys._recio_test_killer = True  # type: ignore[attr-defined]
        _install_killer()
