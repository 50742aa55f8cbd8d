"""Connecting to PostgreSQL within a deadline, and naming the cause when it fails.

Passwords go to libpq only as keyword parameters (never argv, never a log); every text that comes
back from psycopg is masked before it reaches a message, a hint, JSON or an exception.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from recio_setup.errors import PROGRAM
from recio_setup.masking import mask_secrets

if TYPE_CHECKING:
    import psycopg

CAUSES = (
    "host_unresolved",
    "connection_refused",
    "timeout",
    "starting_up",
    "auth_failed",
    "no_password",
    "hba_rejected",
    "database_missing",
    "ssl_required",
    "ssl_unsupported",
    "other",
)
# psycopg turns connect_timeout into whole seconds, and anything under 2 into 2.
PSYCOPG_MIN_TIMEOUT = 2

START_SERVER_HINT = (
    "start PostgreSQL (Homebrew: `brew services start postgresql@15`; Postgres.app: open it and "
    "press Start; Linux: `sudo systemctl start postgresql`), or set POSTGRES_PORT to the port it "
    f"listens on; with none installed, `{PROGRAM} init --local-db` runs one of the project's own"
)


def mask(text: str, secret_values: Iterable[str | None]) -> str:
    """`text` with every secret (raw, URL-encoded or conninfo-quoted) replaced by the mask."""
    return mask_secrets(text, secret_values)


class ConnectFailed(Exception):
    """Every attempt failed; `cause` is the most telling one, `raw` psycopg's (masked) text."""

    def __init__(self, cause: str, raw: str) -> None:
        super().__init__(raw)
        self.cause = cause
        self.raw = raw


# Later entries are more telling: a server that answered says more than one that did not.
_PRIORITY = ("host_unresolved", "connection_refused", "timeout")


def _needs_resolution(host: str | None, params: Mapping[str, Any]) -> bool:
    if not host or params.get("hostaddr") or host.startswith(("/", "@")) or "," in host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def _resolve(host: str, port: object, timeout: float) -> list[str]:
    """getaddrinfo in a thread, so that a slow resolver is bounded by the timeout too."""
    box: list[object] = []

    def work() -> None:
        try:
            box.append(socket.getaddrinfo(host, str(port or 5432), type=socket.SOCK_STREAM))
        except OSError as exc:
            box.append(exc)

    threading.Thread(target=work, daemon=True, name="resolve-db-host").start()
    deadline = time.monotonic() + timeout
    while not box and time.monotonic() < deadline:
        time.sleep(0.005)
    if not box:
        raise ConnectFailed("host_unresolved", f"looking up {host!r} took over {timeout:g} s")
    if isinstance(box[0], OSError):
        raise ConnectFailed("host_unresolved", f"could not resolve host {host!r}: {box[0]}")
    addresses: list[str] = []
    for info in box[0]:  # type: ignore[attr-defined]
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def connect(
    params: Mapping[str, Any], timeout: float, *, autocommit: bool = False
) -> psycopg.Connection[Any]:
    """Connect within `timeout` (+1 s at most), trying each address of the host in turn.

    psycopg applies connect_timeout per address and resolves names without any bound, so we
    resolve (bounded) ourselves and spend one shared deadline over the addresses.
    """
    import psycopg

    deadline = time.monotonic() + timeout
    host = params.get("host")
    # Our deadline replaces any connect_timeout the caller's URL carried.
    attempts = [{k: v for k, v in params.items() if k != "connect_timeout"}]
    if _needs_resolution(host, params):
        addresses = _resolve(str(host), params.get("port"), timeout)
        attempts = [{**attempts[0], "hostaddr": address} for address in addresses]
    secret = params.get("password")
    failures: list[tuple[str, str]] = []
    for attempt in attempts:
        remaining = deadline - time.monotonic()
        if failures and remaining < 1:
            break
        seconds = max(PSYCOPG_MIN_TIMEOUT, math.floor(remaining))
        try:
            return psycopg.connect(**attempt, connect_timeout=seconds, autocommit=autocommit)
        except psycopg.Error as exc:
            raw = mask(str(exc), [secret])
            failures.append((classify(exc, raw, attempt), raw))
    if not failures:
        raise ConnectFailed("timeout", f"no time left to connect within {timeout:g} s")
    rank = {cause: i for i, cause in enumerate(_PRIORITY)}
    cause, raw = max(failures, key=lambda f: rank.get(f[0], len(_PRIORITY)))
    if len(failures) > 1:
        raw = "\n".join(text for _, text in failures)
    raise ConnectFailed(cause, raw)


def _neutral(text: str, names: Iterable[object]) -> str:
    """Lower-cased text with our own names removed, so a hostile name cannot steer the match.

    libpq and the server quote every name they print (role "x", database "x", server at "x"), so
    only the quoted form is replaced: a short name such as `u` must not wreck the words around
    it ("connection ref<name>sed")."""
    for name in sorted({str(n) for n in names if n}, key=len, reverse=True):
        text = text.replace(f'"{name}"', '"<name>"')
    return text.lower()


_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("host_unresolved", ("could not translate host name", "failed to resolve host")),
    ("connection_refused", ("connection refused", "no such file or directory")),
    ("timeout", ("timeout expired", "timed out")),
    (
        "starting_up",
        ("is starting up", "not yet accepting connections", "in recovery mode", "shutting down"),
    ),
    ("ssl_unsupported", ("server does not support ssl",)),
    ("ssl_required", ("ssl connection is required", "ssl required")),
    ("hba_rejected", ("no pg_hba.conf entry", "pg_hba.conf rejects")),
    ("no_password", ("no password supplied",)),
    ("auth_failed", ("authentication failed", 'role "<name>" does not exist')),
    ("database_missing", ('database "<name>" does not exist',)),
)


def classify(exc: BaseException, raw: str, params: Mapping[str, Any]) -> str:
    """The cause of one failed attempt, from the exception type, pgconn and libpq's text."""
    import psycopg

    if isinstance(exc, psycopg.errors.ConnectionTimeout):
        return "timeout"
    text = _neutral(raw, (params.get(k) for k in ("user", "dbname", "host", "hostaddr")))
    for cause, needles in _RULES:
        if any(needle in text for needle in needles):
            if cause == "hba_rejected" and _server_wants_ssl(text, params):
                return "ssl_required"
            return cause
    pgconn = getattr(exc, "pgconn", None)
    if pgconn is not None and pgconn.needs_password:
        return "no_password"
    return "other"


def _server_wants_ssl(text: str, params: Mapping[str, Any]) -> bool:
    # A hostssl-only server tells a plain connection "no pg_hba.conf entry ..., no encryption".
    plain = str(params.get("sslmode") or "prefer") in ("disable", "allow")
    return (
        plain and "no pg_hba.conf entry" in text and ("no encryption" in text or "ssl off" in text)
    )


@dataclass(frozen=True)
class Where:
    """What a message names: never the password."""

    host: str
    port: str
    user: str
    dbname: str
    sslmode: str
    timeout: float

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"


def explain(cause: str, where: Where, raw: str) -> tuple[str, str | None]:
    """A one-sentence message and a concrete fix for a cause."""
    first = raw.strip().splitlines()[0] if raw.strip() else "no details"
    table: dict[str, tuple[str, str | None]] = {
        "host_unresolved": (
            f"The database host {where.host!r} could not be resolved.",
            "check POSTGRES_HOST (a local server is `localhost` or `127.0.0.1`)",
        ),
        "connection_refused": (
            f"Nothing accepts connections at {where.server}: PostgreSQL is not running there "
            "or listens on another port.",
            START_SERVER_HINT,
        ),
        "timeout": (
            f"{where.server} did not answer within {where.timeout:g} s.",
            "check that POSTGRES_HOST and POSTGRES_PORT point at PostgreSQL and no firewall "
            "drops the packets, or raise --db-timeout",
        ),
        "starting_up": (
            f"The PostgreSQL server at {where.server} is starting up, shutting down or "
            "in recovery.",
            "wait a few seconds and run again",
        ),
        "auth_failed": (
            f"Authentication failed for user {where.user!r}: the password is wrong or the role "
            "does not exist (the server does not say which).",
            "check POSTGRES_USER and POSTGRES_PASSWORD, or create the role with `--create-db` "
            "(add `--reset-db-password` to set a new password on an existing role)",
        ),
        "no_password": (
            f"The server asks a password for user {where.user!r} and none was given.",
            "set POSTGRES_PASSWORD in .env or the environment, or run init with `--create-db`",
        ),
        "hba_rejected": (
            f"The server's pg_hba.conf does not let user {where.user!r} connect to database "
            f"{where.dbname!r} from this host.",
            "add a line such as `host DB USER 127.0.0.1/32 scram-sha-256` to pg_hba.conf (with "
            "your database and user) and reload with `SELECT pg_reload_conf();`",
        ),
        "database_missing": (
            f"The database {where.dbname!r} does not exist on {where.server}.",
            "run init with `--create-db` to create it, or fix POSTGRES_DB",
        ),
        "ssl_required": (
            f"The server at {where.server} accepts only SSL connections, and sslmode is "
            f"{where.sslmode}.",
            "use `--db-sslmode require` (or prefer)",
        ),
        "ssl_unsupported": (
            f"The server at {where.server} does not support SSL, and sslmode is {where.sslmode}.",
            "use `--db-sslmode prefer` (or disable) for a local server, or enable ssl on it",
        ),
    }
    if cause in table:
        return table[cause]
    return f"Could not connect to PostgreSQL at {where.server}: {first}", None
