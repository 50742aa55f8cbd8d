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

import contextlib
import os
import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recio_setup.db.account import Account, require_reachable, server_account
from recio_setup.db.server import ServerBinaries
from recio_setup.errors import PROGRAM, StepFailed

SUPERUSER = "postgres"
LISTEN_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 5432
DATA = "data"
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
        return (self.data / "PG_VERSION").is_file()

    def configured_port(self) -> int | None:
        """The last `port = N` of postgresql.conf (a later line wins, as for the server)."""
        port = None
        with contextlib.suppress(OSError):
            for line in (self.data / "postgresql.conf").read_text(errors="replace").splitlines():
                name, _, value = line.partition("=")
                if name.strip() == "port":
                    digits = value.split("#", 1)[0].strip().strip("'")
                    port = int(digits) if digits.isdigit() else port
        return port

    def status(self) -> Status:
        if not self.exists():
            return Status("absent", self.folder)
        version = (self.data / "PG_VERSION").read_text(errors="replace").strip() or None
        pid = self._server_pid()
        state = "running" if pid else "stopped"
        return Status(state, self.folder, self.configured_port(), pid, version)

    def superuser_password(self) -> str:
        try:
            return self.password_file.read_text().strip()
        except OSError as exc:
            raise StepFailed(
                f"the local PostgreSQL's superuser password file {self.password_file} cannot be "
                f"read ({exc.strerror})",
                hint="it is written when the cluster is created; if it is lost, set a new "
                "password as that superuser and put it in the file (mode 0600)",
                cause="localdb_password_missing",
            ) from exc

    # -- creating ------------------------------------------------------------------------------
    def initialise(self, binaries: ServerBinaries, port: int) -> None:
        """initdb into data/ with a generated superuser password, scram-sha-256, loopback only."""
        account = server_account(self.data)
        self._set_aside_an_unfinished_initdb()
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
            DATA,
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

    def _write_password(self) -> None:
        """0600 from its first byte; an existing file (an earlier, unfinished run) is kept."""
        try:
            fd = os.open(
                self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600
            )
        except FileExistsError:
            return
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def _set_aside_an_unfinished_initdb(self) -> None:
        """A data/ without PG_VERSION is what a killed initdb leaves (no data in it): moved
        aside, never deleted, so initdb can start again."""
        if self.data.exists() and not self.exists():
            for number in range(1, 1000):
                aside = self.folder / f"{DATA}.unfinished-{number}"
                if not aside.exists():
                    self.data.rename(aside)
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
        """The PID in postmaster.pid when that process is a live PostgreSQL server."""
        pid = _pid_in(self.data / "postmaster.pid")
        return pid if pid is not None and _is_postgres(pid) else None

    def _clear_stale_lock(self, path: Path) -> None:
        """A lock file whose PID is no PostgreSQL (dead, or reused after a reboot) would make
        the server refuse to start; the server removes it itself only when the PID is dead."""
        pid = _pid_in(path)
        if pid is not None and not _is_postgres(pid):
            path.unlink(missing_ok=True)

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
            raise StepFailed(
                f"could not {what}: {exc}", hint=f"see {self.folder / LOG}", cause="localdb_failed"
            ) from exc
        if done.returncode != 0:
            text = (done.stderr or done.stdout).strip().splitlines()
            reason = self._logged_reason() or (text[-1] if text else f"{tool} failed")
            raise StepFailed(
                f"could not {what}: {reason}",
                hint=f"the server's log is {self.folder / LOG}",
                cause="localdb_failed",
            )

    def _logged_reason(self) -> str | None:
        """The server's last FATAL or PANIC line: pg_ctl itself only says to read the log."""
        try:
            with (self.folder / LOG).open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 8192))
                lines = log.read().decode(errors="replace").splitlines()
        except OSError:
            return None
        found = [line for line in lines if "FATAL:" in line or "PANIC:" in line]
        return found[-1].split(":", 3)[-1].strip() if found else None


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


def _pid_in(path: Path) -> int | None:
    try:
        first = path.read_text(errors="replace").split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() and int(first) > 0 else None


def _is_postgres(pid: int) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and process.name().startswith("postgres")
    except psutil.Error:
        return False
