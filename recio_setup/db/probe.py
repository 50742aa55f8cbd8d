"""The connection test behind `check` and `init`: connect, ask the server who we are, report.

Connection problems come back as a DbProbe with a cause, never as an exception. psycopg is
imported inside functions (connect.py): it costs ~100 ms at start-up and most commands never
need it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from recio_setup.db.connect import ConnectFailed, Where, connect, explain, mask
from recio_setup.db.target import DbSettings
from recio_setup.result import Check, Status

if TYPE_CHECKING:
    import psycopg


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
            return Check("db.connect", "database", "fail", self.message, self.hint, data)
        status: Status = "warn" if self.can_create_tables is False else "ok"
        return Check("db.connect", "database", status, self.message, self.hint, data)


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
