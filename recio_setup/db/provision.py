"""`--create-db`: create the LOGIN role and the database it owns, with admin credentials.

Idempotent: an existing role or database is left as it is; an existing role's password changes
only with reset_password. Names and the password are composed with psycopg.sql (Identifier,
Literal), never with string formatting. The password is sent as a SCRAM verifier computed by
libpq on this machine, so the plain text reaches neither the server nor its statement log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from recio_setup.db.connect import ConnectFailed, Where, connect, explain, mask
from recio_setup.errors import StepFailed, UsageError
from recio_setup.masking import url_secrets
from recio_setup.result import Check

if TYPE_CHECKING:
    import psycopg

    from recio_setup.db.target import DbSettings

ADMIN_AUTH_HINT = (
    "check --admin-url / POSTGRES_ADMIN_URL and the admin password (POSTGRES_ADMIN_PASSWORD, "
    "--admin-password-file or the prompt)"
)


# Without an admin URL: the server the services use, as the superuser PostgreSQL installs make,
# unless libpq's own variable says otherwise (the variable wins, as it would for psql).
ADMIN_DEFAULTS = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "dbname": "PGDATABASE"}
ADMIN_URL_HINT = (
    "pass --admin-url postgresql://USER@HOST:PORT/postgres (the password through "
    "POSTGRES_ADMIN_PASSWORD or --admin-password-file, never on the command line)"
)


@dataclass(frozen=True)
class AdminSettings:
    """How to reach the server as an admin. url None: POSTGRES_HOST:POSTGRES_PORT as `postgres`
    to database `postgres`, each unless PGHOST, PGPORT, PGUSER or PGDATABASE is set."""

    url: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)


@dataclass
class ProvisionReport:
    """What provisioning did; `steps` are sentences without secrets."""

    role_created: bool = False
    role_password_changed: bool = False
    database_created: bool = False
    steps: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.role_created or self.role_password_changed or self.database_created

    def to_checks(self) -> list[Check]:
        data = {
            "role_created": self.role_created,
            "role_password_changed": self.role_password_changed,
            "database_created": self.database_created,
        }
        checks = [
            Check("db.provision", "database provisioning", "ok", " ".join(self.steps), None, data)
        ]
        checks += [Check("db.provision", "database provisioning", "warn", w) for w in self.warnings]
        return checks


@dataclass(frozen=True)
class _Admin:
    user: str
    superuser: bool
    createrole: bool
    createdb: bool


class _Session:
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


def _open_admin(admin: AdminSettings, target: DbSettings, timeout: float) -> _Session:
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
    return _Session(conn, secrets)


def _privileges(session: _Session) -> _Admin:
    rows = session.run(
        "select current_user::text, rolsuper, rolcreaterole, rolcreatedb from pg_roles "
        "where rolname = current_user",
        cause="provision_failed",
        what="read the admin's privileges",
    )
    user, superuser, createrole, createdb = rows[0]
    return _Admin(str(user), bool(superuser), bool(createrole), bool(createdb))


def _require(admin: _Admin, *, role: bool, database: bool, target: DbSettings) -> None:
    """Refuse before changing anything when the admin lacks what the plan needs."""
    if role and not (admin.superuser or admin.createrole):
        raise StepFailed(
            f"The admin role {admin.user!r} lacks CREATEROLE, so it cannot create or change the "
            f"role {target.user!r}.",
            hint=f"connect as a superuser with --admin-url, or (as a superuser) run "
            f"`ALTER ROLE {admin.user} CREATEROLE;`",
            cause="admin_no_createrole",
        )
    if database and not (admin.superuser or admin.createdb):
        raise StepFailed(
            f"The admin role {admin.user!r} lacks CREATEDB, so it cannot create the database "
            f"{target.dbname!r}.",
            hint=f"connect as a superuser with --admin-url, or (as a superuser) run "
            f"`ALTER ROLE {admin.user} CREATEDB;`",
            cause="admin_no_createdb",
        )


def _verifier(session: _Session, user: str, password: str) -> str:
    """libpq's SCRAM (or md5, per password_encryption) verifier, computed on this machine."""
    import psycopg

    try:
        return session.conn.pgconn.encrypt_password(password.encode(), user.encode()).decode()
    except psycopg.Error:
        return password  # a libpq too old to hash: the server hashes it instead


def _set_role(session: _Session, target: DbSettings, *, create: bool) -> None:
    from psycopg import sql

    if target.password is None:
        raise UsageError(
            f"no password for the role {target.user!r}",
            hint="set POSTGRES_PASSWORD, or let init generate one",
        )
    verb = "CREATE ROLE {} LOGIN PASSWORD {}" if create else "ALTER ROLE {} PASSWORD {}"
    query = sql.SQL(verb).format(
        sql.Identifier(target.user),
        sql.Literal(_verifier(session, target.user, target.password)),
    )
    what = f"{'create' if create else 'change the password of'} the role {target.user!r}"
    session.run(query, cause="admin_no_createrole", what=what)


def _create_database(session: _Session, admin: _Admin, target: DbSettings) -> list[str]:
    """CREATE DATABASE ... OWNER, in autocommit; a non-superuser must be a member of the owner."""
    from psycopg import sql

    role = sql.Identifier(target.user)
    steps: list[str] = []
    # Giving a database away takes membership of the owner; from PostgreSQL 16 the right to
    # SET ROLE to it, which a CREATEROLE admin lacks for the roles it made unless granted.
    member = session.run(
        "select pg_has_role(current_user, %s, case when "
        "current_setting('server_version_num')::int >= 160000 then 'SET' else 'MEMBER' end)",
        (target.user,),
        cause="provision_failed",
        what="check role membership",
    )[0][0]
    granted = False
    if not admin.superuser and not member:
        what = f"join the role {target.user!r} to give it the new database"
        session.run(
            sql.SQL("GRANT {} TO CURRENT_USER").format(role), cause="admin_no_createdb", what=what
        )
        granted = True
    try:
        session.run(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(target.dbname), role),
            cause="admin_no_createdb",
            what=f"create the database {target.dbname!r}",
        )
        steps.append(f"Created the database {target.dbname!r} owned by {target.user!r}.")
    finally:
        if granted:
            session.run(
                sql.SQL("REVOKE {} FROM CURRENT_USER").format(role),
                cause="provision_failed",
                what=f"leave the role {target.user!r} again",
            )
    return steps


def _lookup(session: _Session, target: DbSettings) -> tuple[bool | None, str | None]:
    """(role can log in, or None if missing; owner of the database, or None if missing)."""
    role = session.run(
        "select rolcanlogin from pg_roles where rolname = %s",
        (target.user,),
        cause="provision_failed",
        what="look up the role",
    )
    database = session.run(
        "select pg_get_userbyid(datdba)::text from pg_database where datname = %s",
        (target.dbname,),
        cause="provision_failed",
        what="look up the database",
    )
    return (bool(role[0][0]) if role else None), (str(database[0][0]) if database else None)


def provision(
    admin: AdminSettings, target: DbSettings, *, reset_password: bool = False, timeout: float = 5.0
) -> ProvisionReport:
    """Make sure target.user (LOGIN, with target.password) and target.dbname (owned by it) exist.

    Raises StepFailed (cause admin_<connection cause>, admin_no_createrole, admin_no_createdb or
    provision_failed) or UsageError (a bad admin URL). No message holds a password.
    """
    report = ProvisionReport()
    session = _open_admin(admin, target, timeout)
    with session.conn:
        privileges = _privileges(session)
        can_login, owner = _lookup(session, target)
        change_own = reset_password and privileges.user == target.user
        _require(
            privileges,
            role=can_login is None or (reset_password and not change_own),
            database=owner is None,
            target=target,
        )
        if can_login is None:
            _set_role(session, target, create=True)
            report.role_created = True
            report.steps.append(f"Created the login role {target.user!r}.")
        elif reset_password:
            _set_role(session, target, create=False)
            report.role_password_changed = True
            report.steps.append(f"Set a new password on the existing role {target.user!r}.")
        else:
            report.steps.append(f"The role {target.user!r} exists; left as it is.")
            if not can_login:
                report.warnings.append(
                    f"The role {target.user!r} cannot log in (NOLOGIN); an admin can run "
                    f"`ALTER ROLE {target.user} LOGIN;`."
                )
        if owner is None:
            report.steps += _create_database(session, privileges, target)
            report.database_created = True
        else:
            report.steps.append(f"The database {target.dbname!r} exists; left as it is.")
            if owner != target.user:
                report.warnings.append(
                    f"The database {target.dbname!r} is owned by {owner!r}, not {target.user!r}."
                )
    report.steps = [mask(step, session.secrets) for step in report.steps]
    report.warnings = [mask(warning, session.secrets) for warning in report.warnings]
    return report
