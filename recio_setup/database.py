"""PostgreSQL for recio-setup: the connection test (probe), provisioning, and the settings both use.

The public API of the database part lives here; the connection machinery is in pgconn.py and the
role/database provisioning in provision.py. psycopg is imported inside functions: it costs ~100 ms
at start-up and most commands never need it.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from recio_setup.dburl import parse_database_url
from recio_setup.errors import UsageError
from recio_setup.masking import redact_url
from recio_setup.pgconn import CAUSES, ConnectFailed, Where, connect, explain, mask
from recio_setup.provision import AdminSettings, ProvisionReport, provision
from recio_setup.result import Check, Status
from recio_setup.settings import SSLMODES

if TYPE_CHECKING:
    import psycopg

# PostgreSQL truncates longer identifiers silently, which would create a role nobody asked for.
MAX_IDENTIFIER_BYTES = 63


def _check_text(label: str, value: str) -> None:
    if "\x00" in value:
        raise UsageError(f"{label} contains a NUL character, which PostgreSQL cannot take")


def _check_identifier(label: str, value: str) -> None:
    _check_text(label, value)
    if not value:
        raise UsageError(f"{label} is empty")
    if len(value.encode()) > MAX_IDENTIFIER_BYTES:
        raise UsageError(
            f"{label} is longer than {MAX_IDENTIFIER_BYTES} bytes; PostgreSQL would truncate it",
            hint=f"choose a shorter {label}",
        )


@dataclass(frozen=True)
class DbSettings:
    """Where and as whom to connect. The password never shows in repr()."""

    host: str
    port: int
    dbname: str
    user: str
    password: str | None = field(repr=False)
    sslmode: str = "prefer"
    connect_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.sslmode not in SSLMODES:
            raise UsageError(
                f"unknown sslmode {self.sslmode!r}", hint=f"use one of: {', '.join(SSLMODES)}"
            )
        if not (math.isfinite(self.connect_timeout) and 1 <= self.connect_timeout <= 3600):
            raise UsageError(
                f"the database timeout must be between 1 and 3600 seconds, not "
                f"{self.connect_timeout!r}"
            )
        if not 1 <= self.port <= 65535:
            raise UsageError(f"POSTGRES_PORT must be between 1 and 65535, not {self.port}")
        _check_text("POSTGRES_HOST", self.host)
        if "," in self.host:
            raise UsageError("POSTGRES_HOST must name one host, not a list")
        _check_identifier("POSTGRES_DB", self.dbname)
        _check_identifier("POSTGRES_USER", self.user)
        if self.password is not None and "\x00" in self.password:
            raise UsageError("POSTGRES_PASSWORD contains a NUL character, which libpq cannot take")

    @classmethod
    def from_values(
        cls, values: Mapping[str, str], *, sslmode: str = "prefer", connect_timeout: float = 5.0
    ) -> DbSettings:
        """From resolved POSTGRES_HOST/PORT/DB/USER/PASSWORD values (PASSWORD may be absent)."""
        required = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER")
        missing = [key for key in required if not values.get(key)]
        if missing:
            raise UsageError(f"{', '.join(missing)} not set", hint="set them in .env or the flags")
        port_text = values["POSTGRES_PORT"].strip()
        if not port_text.isdigit():
            raise UsageError(f"POSTGRES_PORT must be a number, not {port_text!r}")
        return cls(
            host=values["POSTGRES_HOST"],
            port=int(port_text),
            dbname=values["POSTGRES_DB"],
            user=values["POSTGRES_USER"],
            password=values.get("POSTGRES_PASSWORD"),
            sslmode=sslmode,
            connect_timeout=connect_timeout,
        )

    def params(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "password": self.password,
            "sslmode": self.sslmode,
        }


@dataclass
class DbProbe:
    """The outcome of one connection test."""

    ok: bool
    cause: str | None
    message: str
    hint: str | None
    raw: str | None
    server_version: str | None = None
    current_user: str | None = None
    database: str | None = None
    can_create_tables: bool | None = None
    elapsed: float = 0.0
    server: str = ""

    def to_check(self) -> Check:
        data: dict[str, Any] = {
            "cause": self.cause,
            "raw": self.raw,
            "server": self.server,
            "server_version": self.server_version,
            "current_user": self.current_user,
            "database": self.database,
            "can_create_tables": self.can_create_tables,
            "elapsed": round(self.elapsed, 3),
        }
        if not self.ok:
            return Check("database", "fail", self.message, self.hint, data)
        status: Status = "warn" if self.can_create_tables is False else "ok"
        return Check("database", status, self.message, self.hint, data)


def probe(settings: DbSettings) -> DbProbe:
    """Connect and report; connection problems come back as a DbProbe, never as an exception."""
    started = time.monotonic()
    where = Where(
        settings.host,
        str(settings.port),
        settings.user,
        settings.dbname,
        settings.sslmode,
        settings.connect_timeout,
    )
    try:
        conn = connect(settings.params(), settings.connect_timeout, autocommit=True)
    except ConnectFailed as failed:
        message, hint = explain(failed.cause, where, failed.raw)
        return DbProbe(
            False,
            failed.cause,
            mask(message, [settings.password]),
            hint,
            failed.raw,
            elapsed=time.monotonic() - started,
            server=where.server,
        )
    with conn:
        return _describe(conn, where, settings, started)


_ABOUT_SQL = """
select current_user::text, current_database()::text,
  coalesce((select pg_has_role(datdba, 'USAGE') from pg_database
            where datname = current_database()), false),
  coalesce((select has_schema_privilege(oid, 'CREATE') from pg_namespace
            where nspname = 'public'), false)
"""


def _describe(
    conn: psycopg.Connection[Any], where: Where, settings: DbSettings, started: float
) -> DbProbe:
    import psycopg

    version = conn.info.parameter_status("server_version")
    try:
        row = conn.execute(_ABOUT_SQL).fetchone()
    except psycopg.Error as exc:
        raw = mask(str(exc), [settings.password])
        return DbProbe(
            False,
            "other",
            f"Connected to {where.server}, but a query failed: {raw.splitlines()[0]}",
            None,
            raw,
            server_version=version,
            elapsed=time.monotonic() - started,
            server=where.server,
        )
    row = row or ("", "", False, False)
    user, dbname, owner, create_public = str(row[0]), str(row[1]), bool(row[2]), bool(row[3])
    can_create = owner or create_public
    message = f"Connected to {dbname!r} at {where.server} as {user!r} (PostgreSQL {version}); " + (
        "the user can create tables." if can_create else "the user cannot create tables."
    )
    hint = None
    if not can_create:
        hint = (
            f"as an admin: `ALTER DATABASE {dbname} OWNER TO {user};` or "
            f"`GRANT CREATE ON SCHEMA public TO {user};` (in database {dbname})"
        )
    return DbProbe(
        True,
        None,
        mask(message, [settings.password]),
        mask(hint, [settings.password]) if hint else None,
        None,
        server_version=version,
        current_user=user,
        database=dbname,
        can_create_tables=can_create,
        elapsed=time.monotonic() - started,
        server=where.server,
    )


def generate_password() -> str:
    """32 URL-safe characters (192 bits): no `$`, quotes, backslash or spaces, so .env is safe."""
    return secrets.token_urlsafe(24)


__all__ = [
    "CAUSES",
    "MAX_IDENTIFIER_BYTES",
    "SSLMODES",
    "AdminSettings",
    "ConnectFailed",
    "DbProbe",
    "DbSettings",
    "ProvisionReport",
    "generate_password",
    "parse_database_url",
    "probe",
    "provision",
    "redact_url",
]
