"""The database flags shared by init and check, and the database steps they run."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from recio_setup.env.settings import SSLMODE_FIELD, describe_source
from recio_setup.errors import PROGRAM, RecioError, UsageError
from recio_setup.result import ActionRecord, Check, Result, Value
from recio_setup.runtime.database import SSLMODES

if TYPE_CHECKING:
    from recio_setup.cli.commands import Context
    from recio_setup.db.admin import AdminSettings
    from recio_setup.db.provision import ProvisionReport
    from recio_setup.db.target import DbSettings
    from recio_setup.tree.fsops import Tree

T = TypeVar("T")


def add_arguments(parser: argparse.ArgumentParser, *, provisioning: bool) -> None:
    group = parser.add_argument_group("database")
    group.add_argument(
        "--skip-db-check", action="store_true", help="do not test the PostgreSQL connection"
    )
    group.add_argument(
        "--db-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="connection timeout (default: 5)",
    )
    group.add_argument(
        "--db-sslmode",
        choices=SSLMODES,
        metavar="MODE",
        help=f"libpq sslmode: {', '.join(SSLMODES)} (default: POSTGRES_SSLMODE, else "
        "DATABASE_URL's ?sslmode=, else prefer)",
    )
    if not provisioning:
        return
    group.add_argument(
        "--local-db",
        action="store_true",
        help="create and start a PostgreSQL of the project's own in backend/data/postgres "
        "(loopback only), then the role and database in it; sets POSTGRES_HOST and POSTGRES_PORT",
    )
    group.add_argument(
        "--create-db",
        action="store_true",
        help="create the role and the database (idempotent), as an admin",
    )
    group.add_argument(
        "--admin-url",
        metavar="URL",
        help="admin connection for --create-db (default: POSTGRES_ADMIN_URL, else "
        "libpq defaults); put a password in POSTGRES_ADMIN_URL or a file",
    )
    group.add_argument(
        "--admin-password-file",
        metavar="FILE",
        help="read the admin password from the first line of FILE (- for stdin)",
    )
    group.add_argument(
        "--reset-db-password",
        action="store_true",
        help="with --create-db, set the existing role's password to POSTGRES_PASSWORD",
    )


def skipped(by: str = "--skip-db-check") -> Check:
    return Check("db.connect", "database", "info", f"connection test skipped ({by})")


def validate(args: argparse.Namespace) -> None:
    if not 1 <= args.db_timeout <= 3600:
        raise UsageError(
            f"--db-timeout {args.db_timeout:g} is out of range",
            hint="give a number of seconds from 1 to 3600, e.g. --db-timeout 5",
        )
    if getattr(args, "reset_db_password", False) and not args.create_db:
        raise UsageError("--reset-db-password only works with --create-db", hint="add --create-db")
    if getattr(args, "local_db", False):
        _refuse_beside_local_db(args)


# What --local-db decides itself: where the server is and how to reach it as its admin.
DECIDED_BY_LOCAL_DB = {
    "postgres_host": "--postgres-host",
    "postgres_port": "--postgres-port",
    "database_url": "--database-url",
    "admin_url": "--admin-url",
    "admin_password_file": "--admin-password-file",
}


def _refuse_beside_local_db(args: argparse.Namespace) -> None:
    for dest, flag in DECIDED_BY_LOCAL_DB.items():
        if getattr(args, dest, None):
            raise UsageError(
                f"{flag} cannot be combined with --local-db, which runs the server on "
                "127.0.0.1 at a port of its own and is its own admin",
                hint=f"drop {flag}, or drop --local-db to use another server",
            )


def validate_admin(ctx: Context) -> None:
    """Read and check the admin inputs before anything is written (bad input: exit 2)."""
    url = ctx.args.admin_url or ctx.environ.get("POSTGRES_ADMIN_URL")
    create = getattr(ctx.args, "create_db", False)
    if url and (create or ctx.interactive):  # the wizard may log in with it too
        _check_admin_url(url, "--admin-url" if ctx.args.admin_url else "POSTGRES_ADMIN_URL")
    if create:
        ctx.args.admin_password = admin_password(ctx)
        ctx.output.add_secret(ctx.args.admin_password)


def _check_admin_url(url: str, where: str) -> None:
    import psycopg.conninfo

    from recio_setup.masking import redact_url

    after_first_at = url.split("://", 1)[-1].split("@", 1)[-1]
    if "@" in re.split(r"[/?#]", after_first_at, maxsplit=1)[0]:
        # libpq splits at the first `@`: the rest of a password would be looked up as a host
        # name, and go out in a DNS query.
        raise UsageError(
            f"{where} {redact_url(url)!r} has more than one `@` before the host",
            hint="percent-encode `@` in the password as %40",
        )
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except (psycopg.Error, UnicodeDecodeError):  # a %-escape that is not UTF-8, too
        raise UsageError(
            f"{where} {redact_url(url)!r} is not a valid connection URL",
            hint="use postgresql://USER@HOST:PORT/DBNAME, percent-encoding special characters",
        ) from None


def settings_from(
    values: Mapping[str, Value], args: argparse.Namespace, sslmode: Value
) -> DbSettings:
    from recio_setup.db.target import DbSettings

    return DbSettings.from_values(
        {key: value.value for key, value in values.items()},
        sslmode=sslmode.value,
        connect_timeout=args.db_timeout,
    )


def admin_password(ctx: Context) -> str | None:
    """The admin password from --admin-password-file or POSTGRES_ADMIN_PASSWORD, if given."""
    from recio_setup.env.settings import read_password_file

    if ctx.args.admin_password_file:
        return read_password_file(ctx.args.admin_password_file, "--admin-password-file") or None
    if ctx.environ.get("POSTGRES_ADMIN_PASSWORD"):
        return ctx.environ["POSTGRES_ADMIN_PASSWORD"]
    return None


def admin_settings(ctx: Context, password: str | None) -> AdminSettings:
    """The admin connection as the flags, the environment and the wizard's answers give it."""
    from recio_setup.db.admin import AdminSettings

    url = ctx.args.admin_url or ctx.environ.get("POSTGRES_ADMIN_URL") or None
    return AdminSettings(url=url, password=password, user=getattr(ctx.args, "admin_user", None))


def _as_admin(ctx: Context, what: str, work: Callable[[AdminSettings], T]) -> T:
    """Run `work` as the admin; on a terminal, ask (masked) for an admin password it turns out
    to need, then try once more."""
    from recio_setup.db.admin import PASSWORD_CAUSES

    password = getattr(ctx.args, "admin_password", None)
    for attempt in range(2):
        ctx.output.add_secret(password)
        try:
            with ctx.output.progress(what):
                return work(admin_settings(ctx, password))
        except RecioError as error:
            if attempt or error.cause not in PASSWORD_CAUSES or not ctx.interactive:
                raise
            from recio_setup.cli.wizard import ask_secret

            password = ask_secret("PostgreSQL admin password (hidden):")
            ctx.args.admin_password = password
    raise AssertionError("unreachable")  # pragma: no cover


def _failed(error: RecioError) -> Check:
    return Check(
        "db.provision",
        "create database",
        "fail",
        error.message,
        error.hint,
        {"cause": error.cause},
    )


def provision_step(
    ctx: Context, values: Mapping[str, Value], result: Result, sslmode: Value
) -> bool:
    """--create-db: the role and database, before init writes anything, so a failure leaves a
    working .env as it was. False (and a failed check saying why) when it could not be done."""
    from recio_setup.db.provision import provision

    settings = settings_from(values, ctx.args, sslmode)

    def work(admin: AdminSettings) -> ProvisionReport:
        return provision(
            admin,
            settings,
            reset_password=ctx.args.reset_db_password,
            timeout=ctx.args.db_timeout,
        )

    try:
        report = _as_admin(ctx, "creating the database role and database", work)
    except RecioError as error:
        result.checks.append(_failed(error))
        return False
    result.checks.extend(report.to_checks())
    if report.changed:
        result.actions.append(
            ActionRecord(
                "provision", f"{settings.user}@{settings.dbname}", " ".join(report.steps), "done"
            )
        )
    return True


def local_db_step(
    ctx: Context, tree: Tree, values: Mapping[str, Value], result: Result, sslmode: Value
) -> None:
    """--local-db: the cluster created and started, then the role and database in it, before
    init writes anything else (a failure raises, and .env stays as it was)."""
    from recio_setup.cli.commands.localdb import ensure_running, provision_local

    result.actions.extend(ensure_running(ctx, tree, int(values["POSTGRES_PORT"].value)))
    settings = settings_from(values, ctx.args, sslmode)
    checks = provision_local(ctx, settings)
    result.checks.extend(checks)
    changes = ("role_created", "role_password_changed", "database_created")
    if any(check.data.get(change) for check in checks for change in changes):
        result.actions.append(
            ActionRecord(
                "provision",
                f"{settings.user}@{settings.dbname}",
                " ".join(check.detail for check in checks if check.status == "ok"),
                "done",
            )
        )


def provision_dry_run(
    ctx: Context, values: Mapping[str, Value], result: Result, sslmode: Value
) -> bool:
    """--dry-run --create-db: log in as the admin and read what is there (privileges, the role,
    the database), change nothing, and plan what the real run would do; a failure is the same
    check the real run would report. False when the real run would fail."""
    from recio_setup.db.provision import inspect

    settings = settings_from(values, ctx.args, sslmode)
    reset = ctx.args.reset_db_password
    try:
        state = _as_admin(
            ctx,
            "checking the admin login (read-only)",
            lambda admin: inspect(admin, settings, timeout=ctx.args.db_timeout),
        )
        refused = state.refusal(settings, reset_password=reset)
        if refused is not None:
            raise refused
    except RecioError as error:
        result.checks.append(_failed(error))
        return False
    planned = "; ".join(
        f"{what}: {step}" for what, step in state.planned(settings, reset_password=reset)
    )
    detail = f"admin login as {state.admin.user!r} checked (read-only); {planned}"
    result.checks.append(Check("db.provision", "database provisioning", "ok", detail))
    if state.can_login is None or state.owner is None or reset:
        result.actions.append(
            ActionRecord("provision", f"{settings.user}@{settings.dbname}", planned, "planned")
        )
    return True


def database_steps(
    ctx: Context, values: Mapping[str, Value], result: Result, sslmode: Value
) -> None:
    """The connection test, unless --skip-db-check (then psycopg is not even imported: it
    costs ~100 ms at start-up)."""
    if ctx.args.skip_db_check:
        by = "in the wizard" if getattr(ctx.args, "skipped_in_wizard", False) else None
        result.checks.append(skipped(by) if by else skipped())
        return
    from recio_setup.db.probe import probe

    settings = settings_from(values, ctx.args, sslmode)

    with ctx.output.progress(f"testing PostgreSQL at {settings.host}:{settings.port}"):
        outcome = probe(settings)
    check = outcome.to_check()
    if outcome.cause in ("ssl_required", "ssl_unsupported") and sslmode.source != "default":
        # The fix may be to change the place the mode came from, not to add a flag.
        where = describe_source(SSLMODE_FIELD, sslmode.source)
        check.fix = f"{check.fix}; sslmode {sslmode.value} came from {where}"
    if outcome.cause == "connection_refused":
        from recio_setup.cli.commands.localdb import points_at_local

        if points_at_local(ctx, settings.host, settings.port):
            check.fix = f"start the project's own PostgreSQL: `{PROGRAM} db start`"
    if not ctx.output.verbose and not ctx.output.json_mode:
        check.data.pop("raw", None)
    result.checks.append(check)
