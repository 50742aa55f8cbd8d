"""The project-local PostgreSQL cluster in backend/data/postgres/ (`init --local-db`, `db`).

The folder (0700) holds:
  data/               the cluster (PGDATA), 0700, owned by the account that runs the server
  superuser.password  the superuser's generated password, 0600 (never in .env, never printed)
  run/                the unix socket, named relative to data/ so its path stays short
  server.log          the server's log
  server/VERSION/     a copy of the binaries, only when the server account cannot reach the
                      installed ones (root with a venv under a private folder)

It listens on 127.0.0.1 only, with scram-sha-256 for every connection. The port and addresses
are in data/postgresql.conf (written by initdb), so every start keeps them. The callers create
the folder itself through the tree's safe operations and hold the run lock.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recio_setup.db.account import Account, require_reachable, server_account
from recio_setup.db.clusterfiles import (
    LOCK_FILE_LIMIT,
    configured_port,
    denied,
    is_server_of,
    logged_reason,
    pid_in,
    read_text,
    size_of,
)
from recio_setup.db.server import ServerBinaries
from recio_setup.errors import PROGRAM, StepFailed

SUPERUSER = "postgres"
LISTEN_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 5432
DATA = "data"
INITDB_FOLDER = "data.initdb"
PASSWORD_FILE = "superuser.password"  # noqa: S105 (a file name, not a password)
SOCKETS = "run"
LOG = "server.log"
SERVER_COPY = "server"
START_TIMEOUT = 60.0
# pg_ctl starts the server through /bin/sh inside double quotes, where these keep a meaning.
SHELL_SPECIAL = set('"$`\\')


@dataclass(frozen=True)
class Status:
    """What `db status` reports. state: absent, stopped or running."""

    state: str
    folder: Path
    port: int | None = None
    pid: int | None = None
    version: str | None = None

    def to_data(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "pid": self.pid,
            "port": self.port,
            "host": LISTEN_ADDRESS,
            "version": self.version,
            "data_folder": str(self.folder / DATA),
        }


class LocalCluster:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / DATA

    @property
    def password_file(self) -> Path:
        return self.folder / PASSWORD_FILE

    def exists(self) -> bool:
        """data/ appears only when initdb has finished (it works in data.initdb/ until then)."""
        try:
            (self.data / "PG_VERSION").stat()
        except (FileNotFoundError, NotADirectoryError):
            return False
        except PermissionError as exc:
            raise denied(self.data) from exc
        return True

    def configured_port(self) -> int | None:
        return configured_port(self.data) if self.exists() else None

    def status(self) -> Status:
        if not self.exists():
            return Status("absent", self.folder)
        version = (read_text(self.data / "PG_VERSION", 64) or "").strip() or None
        pid = self._server_pid()
        state = "running" if pid else "stopped"
        return Status(state, self.folder, self.configured_port(), pid, version)

    def superuser_password(self) -> str:
        password = (read_text(self.password_file, 4096) or "").strip()
        if not password:
            raise StepFailed(
                f"the local PostgreSQL's superuser password file {self.password_file} is "
                "missing or empty",
                hint="it cannot be recovered, since every login needs it: stop the server, move "
                f"{self.folder} aside (its data stays there) and run `{PROGRAM} init --local-db` "
                "again for a new cluster",
                cause="localdb_password_missing",
            )
        return password

    # -- creating ------------------------------------------------------------------------------
    def initialise(self, binaries: ServerBinaries, port: int) -> None:
        """initdb with a generated superuser password, scram-sha-256, loopback only: into
        data.initdb/, renamed to data/ once complete, so a killed initdb never looks finished."""
        account = server_account(self.data)
        self._set_aside(self.folder / INITDB_FOLDER)
        self._set_aside(self.data)
        self._write_password()
        (self.folder / SOCKETS).mkdir(mode=0o755, exist_ok=True)
        if account is not None:
            for path in (self.folder, self.folder / SOCKETS, self.password_file):
                os.chown(path, account.uid, account.gid, follow_symlinks=False)
        binaries = self._usable_binaries(binaries, account)
        settings = {
            "port": str(port),
            "listen_addresses": LISTEN_ADDRESS,
            "unix_socket_directories": f"../{SOCKETS}",
            "password_encryption": "scram-sha-256",
        }
        self._run(
            binaries,
            account,
            "initdb",
            "-D",
            INITDB_FOLDER,
            "-U",
            SUPERUSER,
            f"--pwfile={PASSWORD_FILE}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            *(f"--set={name}={value}" for name, value in settings.items()),
            what="create the cluster (initdb)",
        )
        (self.folder / INITDB_FOLDER).rename(self.data)

    def _write_password(self) -> None:
        """A new generated password, 0600 from its first byte. One an earlier run left belongs
        to no cluster (initdb never finished), so it is replaced, not reused."""
        temp = self.folder / f".{PASSWORD_FILE}.{os.getpid()}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(self.password_file)

    def _set_aside(self, path: Path) -> None:
        """What a killed initdb left (no data in it): moved aside, never deleted, so initdb
        can start again."""
        if not os.path.lexists(path):
            return
        for number in range(1, 1000):
            aside = self.folder / f"{DATA}.unfinished-{number}"
            if not os.path.lexists(aside):
                path.rename(aside)
                return

    # -- running -------------------------------------------------------------------------------
    def start(self, binaries: ServerBinaries, timeout: float = START_TIMEOUT) -> Status:
        """Start it unless it runs; a stale postmaster.pid (a crash, a reboot) is cleared."""
        status = self.status()
        if status.state == "running":
            return status
        if status.state == "absent":
            raise StepFailed(
                f"there is no project-local PostgreSQL in {self.folder}",
                hint=f"create it with `{PROGRAM} init --local-db`",
                cause="localdb_absent",
            )
        if status.port is not None and port_is_taken(status.port):
            raise PortTaken(status.port)
        self._require_a_regular_log()
        self._clear_stale_lock(self.data / "postmaster.pid")
        if status.port is not None:
            self._clear_stale_lock(self.folder / SOCKETS / f".s.PGSQL.{status.port}.lock")
        self._pg_ctl(binaries, "start", ["-l", LOG], timeout, what="start the server")
        return self.status()

    def stop(self, binaries: ServerBinaries, timeout: float = START_TIMEOUT) -> Status:
        status = self.status()
        if status.state != "running":
            return status
        self._pg_ctl(binaries, "stop", ["-m", "fast"], timeout, what="stop the server")
        return self.status()

    def _pg_ctl(
        self, binaries: ServerBinaries, action: str, options: list[str], timeout: float, what: str
    ) -> None:
        """pg_ctl ACTION, waiting for it, as the server account, with paths relative to the
        cluster folder (pg_ctl hands them to /bin/sh)."""
        account = server_account(self.data)
        binaries = self._usable_binaries(binaries, account)
        wait = ["-w", "-t", str(int(timeout))]
        self._run(binaries, account, "pg_ctl", "-D", DATA, *options, *wait, action, what=what)

    def _server_pid(self) -> int | None:
        """The PID in postmaster.pid when that process is this cluster's running server."""
        pid = pid_in(self.data / "postmaster.pid")
        return pid if pid is not None and is_server_of(pid, self.data) else None

    def _clear_stale_lock(self, path: Path) -> None:
        """A lock file whose PID is not this cluster's server (dead, reused after a reboot, or
        not a PID at all after a power loss) would make the server refuse to start; PostgreSQL
        clears it itself only when the PID is dead."""
        if read_text(path, LOCK_FILE_LIMIT) is None:
            return
        pid = pid_in(path)
        if pid is None or not is_server_of(pid, self.data):
            path.unlink()

    def _require_a_regular_log(self) -> None:
        log = self.folder / LOG
        if log.is_symlink() or (os.path.lexists(log) and not log.is_file()):
            raise StepFailed(
                f"{log} is not a regular file; the server would write its log through it",
                hint=f"move {log} out of the way, then run `{PROGRAM} db start` again",
                cause="localdb_bad_file",
            )

    def preflight(self, binaries: ServerBinaries) -> None:
        """What would stop the server, checked before anything is created: a path pg_ctl cannot
        pass on, a folder the server account (as root) cannot pass through."""
        for path in (self.folder, binaries.bindir):
            if SHELL_SPECIAL & set(str(path)):
                raise StepFailed(
                    f"the path {path} holds one of {' '.join(sorted(SHELL_SPECIAL))}, which "
                    "pg_ctl cannot pass to the server",
                    hint="move the project (or the venv) to a path without them",
                    cause="localdb_bad_path",
                )
        account = server_account(self.data)
        if account is not None:
            require_reachable(self.folder.parent, account, "the project's data folder")

    def _usable_binaries(self, binaries: ServerBinaries, account: Account | None) -> ServerBinaries:
        """The binaries the server account can run: as root with the installed ones out of its
        reach, a copy inside the cluster folder."""
        self.preflight(binaries)
        if account is None:
            return binaries
        require_reachable(self.folder, account, "the cluster folder")
        if account.may_run(binaries.tool("postgres")):
            return binaries
        return binaries.copy_into(self.folder / SERVER_COPY)

    def _run(
        self, binaries: ServerBinaries, account: Account | None, tool: str, *args: str, what: str
    ) -> None:
        extra = account.run_as() if account is not None else {}
        log_size = size_of(self.folder / LOG)
        try:
            done = subprocess.run(
                [str(binaries.tool(tool)), *args],
                cwd=self.folder,
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT + 30,
                check=False,
                stdin=subprocess.DEVNULL,
                **extra,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise StepFailed(f"could not {what}: {exc}", cause="localdb_failed") from exc
        if done.returncode == 0:
            return
        said = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        errors = [line for line in said if "error" in line.lower()] or said
        logged = logged_reason(self.folder / LOG, log_size) if tool == "pg_ctl" else None
        reason = logged or (errors[-1].strip() if errors else f"{tool} failed")
        log_hint = f"the server's log is {self.folder / LOG}" if tool == "pg_ctl" else None
        raise StepFailed(f"could not {what}: {reason}", hint=log_hint, cause="localdb_failed")


class PortTaken(StepFailed):
    """The cluster's port is held by another program (named by the CLI, which can see it)."""

    def __init__(self, port: int) -> None:
        super().__init__(
            f"port {port} on {LISTEN_ADDRESS}, the local PostgreSQL's, is taken by another program",
            hint=f"stop that program, then run `{PROGRAM} db start` again",
            cause="localdb_port_taken",
        )
        self.port = port


def port_is_taken(port: int) -> bool:
    """Whether something listens on (or holds) this loopback port; SO_REUSEADDR as the server
    uses it, so a connection in TIME_WAIT does not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LISTEN_ADDRESS, port))
        except OSError:
            return True
    return False


def choose_port(reserved: set[int]) -> int:
    """5432 when it is free and not reserved (the manifest's ports and avoided ports), else the
    next such port, else one the system picks."""
    for port in range(DEFAULT_PORT, DEFAULT_PORT + 100):
        if port not in reserved and not port_is_taken(port):
            return port
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((LISTEN_ADDRESS, 0))
            port = int(probe.getsockname()[1])
        if port not in reserved:
            return port
