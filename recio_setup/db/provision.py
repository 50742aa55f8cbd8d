"""`--create-db`: create the LOGIN role and the database it owns, with admin credentials.

Idempotent: an existing role or database is left as it is; an existing role's password changes
only with reset_password. Names and the password are composed with psycopg.sql (Identifier,
Literal), never with string formatting. The password is sent as a SCRAM verifier computed by
libpq on this machine, so the plain text reaches neither the server nor its statement log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from recio_setup.db.admin import AdminRights, AdminSettings, Session, open_admin, rights
from recio_setup.db.connect import ConnectFailed, connect, mask
from recio_setup.errors import StepFailed, UsageError
from recio_setup.result import Check

if TYPE_CHECKING:
    from recio_setup.db.target import DbSettings

__all__ = ["AdminSettings", "ProvisionReport", "ProvisionState", "inspect", "provision"]


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


def _require(admin: AdminRights, *, role: bool, database: bool, target: DbSettings) -> None:
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


def _verifier(session: Session, user: str, password: str) -> str:
    """libpq's SCRAM (or md5, per password_encryption) verifier, computed on this machine."""
    import psycopg

    try:
        return session.conn.pgconn.encrypt_password(password.encode(), user.encode()).decode()
    except psycopg.Error:
        return password  # a libpq too old to hash: the server hashes it instead


def _set_role(session: Session, target: DbSettings, *, create: bool) -> None:
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


def _create_database(session: Session, admin: AdminRights, target: DbSettings) -> list[str]:
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


def _lookup(session: Session, target: DbSettings) -> tuple[bool | None, str | None]:
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


@dataclass(frozen=True)
class ProvisionState:
    """What the admin found, without changing anything."""

    admin: AdminRights
    can_login: bool | None  # None: the role does not exist
    owner: str | None  # None: the database does not exist
    # Whether POSTGRES_PASSWORD logs in as the role; None: not tried, or the server did not say.
    password_works: bool | None

    @property
    def password_differs(self) -> bool:
        """The role exists and can log in, and POSTGRES_PASSWORD is not its password."""
        return bool(self.can_login) and self.password_works is False

    def planned(self, target: DbSettings, *, reset_password: bool) -> list[tuple[str, str]]:
        """What provision would do, as (object, what happens to it), for --dry-run and the
        wizard's summary."""
        if self.can_login is None:
            role = "to create"
        elif reset_password:
            role = "already there; password to be set to POSTGRES_PASSWORD"
        else:
            role = "already there"
        database = "already there" if self.owner else f"to create, owned by {target.user!r}"
        return [(f"role {target.user!r}", role), (f"database {target.dbname!r}", database)]

    def refusal(self, target: DbSettings, *, reset_password: bool) -> StepFailed | None:
        """Why provision would refuse before changing anything, if it would."""
        change_own = reset_password and self.admin.user == target.user
        try:
            _require(
                self.admin,
                role=self.can_login is None or (reset_password and not change_own),
                database=self.owner is None,
                target=target,
            )
        except StepFailed as refused:
            return refused
        if self.password_differs and not reset_password:
            return StepFailed(
                f"The role {target.user!r} exists with another password: POSTGRES_PASSWORD does "
                "not log in as it.",
                hint="run init with `--create-db --reset-db-password` to set the role's password "
                "to POSTGRES_PASSWORD, or put the role's own password in POSTGRES_PASSWORD",
                cause="role_password_differs",
            )
        return None


def _password_works(target: DbSettings, timeout: float) -> bool | None:
    """Log in as the role. The server checks the password before it looks for the database, so
    `database_missing` means the password is right."""
    if target.password is None:
        return None
    try:
        connect(target.params(), timeout, autocommit=True).close()
    except ConnectFailed as failed:
        if failed.cause == "database_missing":
            return True
        return False if failed.cause == "auth_failed" else None
    return True


def _read_state(session: Session, target: DbSettings, timeout: float) -> ProvisionState:
    admin = rights(session)
    can_login, owner = _lookup(session, target)
    works = _password_works(target, timeout) if can_login else None
    return ProvisionState(admin, can_login, owner, works)


def inspect(admin: AdminSettings, target: DbSettings, *, timeout: float = 5.0) -> ProvisionState:
    """The admin login, its rights, the role and the database, and whether POSTGRES_PASSWORD
    logs in: read-only (for --dry-run and the wizard). Raises what provision raises for a
    failed admin login."""
    session = open_admin(admin, target, timeout)
    with session.conn:
        return _read_state(session, target, timeout)


def provision(
    admin: AdminSettings, target: DbSettings, *, reset_password: bool = False, timeout: float = 5.0
) -> ProvisionReport:
    """Make sure target.user (LOGIN, with target.password) and target.dbname (owned by it) exist.

    Raises StepFailed (cause admin_<connection cause>, admin_no_createrole, admin_no_createdb,
    role_password_differs or provision_failed) or UsageError (a bad admin URL), in every case
    but provision_failed before anything is changed. No message holds a password.
    """
    report = ProvisionReport()
    session = open_admin(admin, target, timeout)
    with session.conn:
        state = _read_state(session, target, timeout)
        refused = state.refusal(target, reset_password=reset_password)
        if refused is not None:
            raise refused
        if state.can_login is None:
            _set_role(session, target, create=True)
            report.role_created = True
            report.steps.append(f"Created the login role {target.user!r}.")
        elif reset_password:
            _set_role(session, target, create=False)
            report.role_password_changed = True
            report.steps.append(f"Set a new password on the existing role {target.user!r}.")
        else:
            report.steps.append(f"The role {target.user!r} exists; left as it is.")
            if not state.can_login:
                report.warnings.append(
                    f"The role {target.user!r} cannot log in (NOLOGIN); an admin can run "
                    f"`ALTER ROLE {target.user} LOGIN;`."
                )
        if state.owner is None:
            report.steps += _create_database(session, state.admin, target)
            report.database_created = True
        else:
            report.steps.append(f"The database {target.dbname!r} exists; left as it is.")
            if state.owner != target.user:
                report.warnings.append(
                    f"The database {target.dbname!r} is owned by {state.owner!r}, "
                    f"not {target.user!r}."
                )
    report.steps = [mask(step, session.secrets) for step in report.steps]
    report.warnings = [mask(warning, session.secrets) for warning in report.warnings]
    return report
