"""A throwaway PostgreSQL cluster for the tests.

initdb with scram-sha-256 password auth and a superuser with a password; listening on 127.0.0.1
on a free port, its socket folder inside its own temp folder, fsync off; stopped at the end. As
root it runs as an unprivileged user, since initdb refuses root. The binaries are the product's
own (the `localdb` extra, which the test extra installs), so no system PostgreSQL is needed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from recio_setup.db.account import Account, server_account
from recio_setup.db.server import ServerBinaries, find_binaries

# A role the pg_hba.conf written below rejects outright, for the "pg_hba rejects" test.
HBA_REJECTED_ROLE = "hba_rejected"
HBA_CONF = f"""\
# written by tests/pgserver.py
local   all   all                        scram-sha-256
host    all   {HBA_REJECTED_ROLE}   127.0.0.1/32   reject
host    all   all   127.0.0.1/32   scram-sha-256
host    all   all   ::1/128        scram-sha-256
"""


def server_binaries(base: Path, account: Account | None) -> ServerBinaries:
    """The `localdb` extra's binaries, the product's own; as root, a copy in `base` when the
    unprivileged account cannot reach the installed ones (a checkout under a 0700 folder)."""
    binaries = find_binaries()
    if account is None or account.may_run(binaries.tool("postgres")):
        return binaries
    return binaries.copy_into(base / "server")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unprivileged_user() -> Account | None:
    """As root, the account the product itself would run a cluster as."""
    return server_account(Path("/nonexistent"))


@dataclass
class PgServer:
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="recio-pg-")))
    superuser: str = "postgres"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    host: str = "127.0.0.1"
    port: int = 0
    _owner: Account | None = None
    _binaries: ServerBinaries | None = None

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "sock"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self._owner is not None:
            kwargs = self._owner.run_as()
        assert self._binaries is not None
        return subprocess.run(
            [str(self._binaries.tool(args[0])), *args[1:]],
            capture_output=True,
            text=True,
            check=check,
            cwd=self.base,
            timeout=120,
            **kwargs,  # type: ignore[call-overload]
        )

    def start(self) -> PgServer:
        self._owner = _unprivileged_user()
        self._binaries = server_binaries(self.base, self._owner)
        self.socket_dir.mkdir()
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self._owner is not None:
            for path in (self.base, self.socket_dir, pwfile):
                os.chown(path, self._owner.uid, self._owner.gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self.superuser,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        )
        hba = self.data / "pg_hba.conf"
        hba.write_text(HBA_CONF)
        for attempt in range(5):
            self.port = free_port()
            options = (
                f"-c listen_addresses={self.host} -c port={self.port} "
                f"-c unix_socket_directories={self.socket_dir} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off"
            )
            done = self._run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.base / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
                check=False,
            )
            if done.returncode == 0:
                return self
            if attempt == 4:
                log = (self.base / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"PostgreSQL did not start: {done.stderr}\n{log}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    def url(
        self, user: str | None = None, password: str | None = None, db: str = "postgres"
    ) -> str:
        user = user or self.superuser
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(db, safe='')}"

    @property
    def admin_url(self) -> str:
        return self.url(self.superuser, self.password)

    def execute(
        self, query: str, params: tuple[object, ...] = (), db: str = "postgres"
    ) -> list[tuple[object, ...]]:
        """Run SQL as the superuser (in autocommit), for test setup and assertions."""
        import psycopg

        with psycopg.connect(
            self.url(db=db, password=self.password), autocommit=True, connect_timeout=5
        ) as conn:
            cursor = conn.execute(query, params)  # type: ignore[arg-type]
            return list(cursor.fetchall()) if cursor.description else []


def create_role(server: PgServer, name: str, password: str | None, *options: str) -> None:
    """CREATE ROLE name LOGIN [PASSWORD ...] [options], composed safely, as the superuser."""
    from psycopg import sql

    query = sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name))
    if password is not None:
        query += sql.SQL(" PASSWORD {}").format(sql.Literal(password))
    for option in options:
        query += sql.SQL(" " + option)
    server.execute(query)  # type: ignore[arg-type]


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A loopback port whose kernel completes the handshake but that never reads or answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def _error_response(message: str, sqlstate: str) -> bytes:
    fields = b"".join(
        code + value.encode() + b"\0"
        for code, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + (len(body) + 4).to_bytes(4, "big") + body


@contextlib.contextmanager
def refusing_server(message: str, sqlstate: str) -> Iterator[int]:
    """A loopback server that speaks just enough of the protocol to refuse every start-up.

    For causes the real cluster cannot produce on demand, such as "the database system is
    starting up" (57P03): it declines SSL, reads the start-up packet and sends a FATAL error.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve_one(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            while True:
                length = int.from_bytes(conn.recv(4, socket.MSG_WAITALL), "big")
                if length < 8:
                    return
                code = int.from_bytes(conn.recv(4, socket.MSG_WAITALL), "big")
                conn.recv(length - 8, socket.MSG_WAITALL)
                if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: decline
                    conn.sendall(b"N")
                    continue
                conn.sendall(_error_response(message, sqlstate))
                return

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with contextlib.suppress(OSError):
                serve_one(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        listener.close()
