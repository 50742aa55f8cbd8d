"""The admin connection of `--create-db`: where it goes, how it fails, what the admin may do.

Without an admin URL it goes to the server the services use, as the superuser PostgreSQL
installs make; every failure names what was tried and the flag that changes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from recio_setup.db.connect import ConnectFailed, Where, connect, explain, mask
from recio_setup.errors import StepFailed, UsageError
from recio_setup.masking import url_secrets

if TYPE_CHECKING:
    import psycopg

    from recio_setup.db.target import DbSettings

ADMIN_AUTH_HINT = (
    "check --admin-url / POSTGRES_ADMIN_URL and the admin password (POSTGRES_ADMIN_PASSWORD, "
    "--admin-password-file or the prompt)"
)
# The causes of an admin login that a password (another one, or one at all) may fix.
PASSWORD_CAUSES = ("admin_no_password", "admin_auth_failed")

# Without an admin URL: the server the services use, as the superuser PostgreSQL installs make,
# unless libpq's own variable says otherwise (the variable wins, as it would for psql).
ADMIN_DEFAULTS = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "dbname": "PGDATABASE"}
ADMIN_URL_HINT = (
    "pass --admin-url postgresql://USER@HOST:PORT/postgres (the password through "
    "POSTGRES_ADMIN_PASSWORD or --admin-password-file, never on the command line)"
)


@dataclass(frozen=True)
class AdminSettings:
    """How to reach the server as an admin. url None: POSTGRES_HOST:POSTGRES_PORT as `user`
    (default `postgres`) to database `postgres`, each unless PGHOST, PGPORT, PGUSER or
    PGDATABASE is set; a `user` given (the wizard's answer) wins over PGUSER."""

    url: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    user: str | None = None


@dataclass(frozen=True)
class AdminRights:
    user: str
    superuser: bool
    createrole: bool
    createdb: bool


class Session:
    """An admin connection and the secrets to mask in anything it reports."""

    def __init__(self, conn: psycopg.Connection[Any], secrets: list[str | None]) -> None:
        self.conn = conn
        self.secrets = secrets

    def run(self, query: Any, params: tuple[object, ...] = (), *, cause: str, what: str) -> Any:
        """Execute; a server error becomes StepFailed naming `what` and masked server text."""
        import psycopg

        try:
            cursor = self.conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []
        except psycopg.errors.InsufficientPrivilege as exc:
            raise StepFailed(
                f"The admin may not {what}: {self._text(exc)}",
                hint="connect as a superuser with --admin-url, or grant the missing privilege",
                cause=cause,
            ) from None
        except psycopg.Error as exc:
            raise StepFailed(
                f"Could not {what}: {self._text(exc)}", cause="provision_failed"
            ) from None

    def _text(self, exc: BaseException) -> str:
        lines = mask(str(exc), self.secrets).strip().splitlines()
        return lines[0] if lines else type(exc).__name__


def _admin_params(
    admin: AdminSettings, target: DbSettings, secrets: list[str | None]
) -> dict[str, Any]:
    import psycopg

    params: dict[str, Any] = {}
    if not admin.url:
        wanted = {
            "host": target.host,
            "port": target.port,
            "user": "postgres",
            "dbname": "postgres",
        }
        params = {
            key: wanted[key] for key, env in ADMIN_DEFAULTS.items() if not os.environ.get(env)
        }
        if admin.user:
            params["user"] = admin.user
    if admin.url:
        # What libpq might echo back from a URL it cannot parse (e.g. a bad %-escape).
        secrets += url_secrets(admin.url)
        try:
            params = dict(psycopg.conninfo.conninfo_to_dict(admin.url))
        except psycopg.Error as exc:
            raise UsageError(
                f"the admin URL is not valid: {mask(str(exc), secrets)}",
                hint="use postgresql://USER@HOST:PORT/postgres (percent-encode special characters)",
            ) from None
        secrets.append(str(params.get("password") or "") or None)
    if admin.password is not None:
        params["password"] = admin.password
    return params


def open_admin(admin: AdminSettings, target: DbSettings, timeout: float) -> Session:
    secrets: list[str | None] = [admin.password, target.password]
    params = _admin_params(admin, target, secrets)
    try:
        conn = connect(params, timeout, autocommit=True)
    except ConnectFailed as failed:

        def tried(key: str, unknown: str) -> str:
            # What libpq used: the URL's or our default, else its own environment variable.
            return str(params.get(key) or os.environ.get(ADMIN_DEFAULTS[key]) or unknown)

        where = Where(
            tried("host", "the default host"),
            tried("port", "default port"),
            tried("user", "(default)"),
            tried("dbname", "(default)"),
            str(params.get("sslmode") or "prefer"),
            timeout,
        )
        message, hint = explain(failed.cause, where, failed.raw)
        if failed.cause in ("auth_failed", "no_password", "hba_rejected"):
            hint = ADMIN_AUTH_HINT
        elif not admin.url:
            hint = f"{hint}; or, for another admin server or user, {ADMIN_URL_HINT}"
        raise StepFailed(
            mask(f"Admin connection failed: {message}", secrets),
            hint,
            cause=f"admin_{failed.cause}",
        ) from None
    return Session(conn, secrets)


def rights(session: Session) -> AdminRights:
    rows = session.run(
        "select current_user::text, rolsuper, rolcreaterole, rolcreatedb from pg_roles "
        "where rolname = current_user",
        cause="provision_failed",
        what="read the admin's privileges",
    )
    user, superuser, createrole, createdb = rows[0]
    return AdminRights(str(user), bool(superuser), bool(createrole), bool(createdb))
