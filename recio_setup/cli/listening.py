"""Is something listening on these loopback ports? All probed at once, within one short timeout.

Each port gets a non-blocking TCP connect to 127.0.0.1 (never any other address); one selector
waits for all of them. On loopback a closed port refuses at once and an open one accepts at once,
so the timeout only bounds the odd case (a full accept queue, a firewall rule on lo). Who
listens comes from the kernel's socket table, through psutil, where the OS shows it.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

LOOPBACK = "127.0.0.1"
DEFAULT_TIMEOUT = 0.05


def probe_listening(ports: list[int], timeout: float = DEFAULT_TIMEOUT) -> dict[int, bool | None]:
    """port -> True (accepts), False (refused), None (no answer within the timeout)."""
    results: dict[int, bool | None] = dict.fromkeys(ports)
    selector = selectors.DefaultSelector()
    pending: dict[socket.socket, int] = {}
    try:
        for port in set(ports):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex((LOOPBACK, port))
            if code in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                pending[sock] = port
                selector.register(sock, selectors.EVENT_WRITE)
            else:
                results[port] = False
                sock.close()
        _wait(selector, pending, results, time.monotonic() + timeout)
    finally:
        for sock in pending:
            with contextlib.suppress(OSError):
                sock.close()
        selector.close()
    return results


def _wait(
    selector: selectors.BaseSelector,
    pending: dict[socket.socket, int],
    results: dict[int, bool | None],
    deadline: float,
) -> None:
    waiting = len(pending)
    while waiting:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        for key, _ in selector.select(remaining):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)  # noqa: S101 (only sockets are registered)
            selector.unregister(sock)
            waiting -= 1
            results[pending[sock]] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0


@dataclass(frozen=True)
class Owner:
    """Who listens on a port: its PID and command line, or None where the OS does not tell
    this user (another user's process without root; macOS without root)."""

    pid: int | None
    command: str | None

    def text(self) -> str:
        if self.pid is None:
            return "owner not visible to this user"
        return f"PID {self.pid}: {self.command}" if self.command else f"PID {self.pid}"

    def to_json(self) -> dict[str, int | str | None]:
        return {"pid": self.pid, "command": self.command}


COMMAND_LIMIT = 80  # a command line can be long; the start says what it is


def port_owners(ports: Iterable[int]) -> dict[int, Owner]:
    """The owner of each of these listening TCP ports, from the kernel's socket table (psutil,
    imported here); a port whose owner cannot be seen gets Owner(None, None)."""
    wanted = set(ports)
    owners = dict.fromkeys(wanted, Owner(None, None))
    if not wanted:
        return owners  # nothing listens: psutil need not load
    import psutil

    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return owners
    for connection in connections:
        port = connection.laddr.port if connection.laddr else None
        if connection.status == psutil.CONN_LISTEN and port in wanted and connection.pid:
            owners[port] = Owner(connection.pid, _command(connection.pid))
    return owners


def _command(pid: int) -> str | None:
    import psutil

    try:
        process = psutil.Process(pid)
        command = " ".join(process.cmdline()) or process.name()
        # One line whatever its arguments hold (a newline, an escape sequence).
        command = "".join(ch if ch.isprintable() else " " for ch in command)
    except (psutil.Error, OSError):
        return None
    return command if len(command) <= COMMAND_LIMIT else command[: COMMAND_LIMIT - 3] + "..."
