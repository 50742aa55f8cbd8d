"""Is something listening on these loopback ports? All probed at once, within one short timeout.

Each port gets a non-blocking TCP connect to 127.0.0.1 (never any other address); one selector
waits for all of them. On loopback a closed port refuses at once and an open one accepts at once,
so the timeout only bounds the odd case (a full accept queue, a firewall rule on lo).
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time

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
