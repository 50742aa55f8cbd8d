"""The wizard's database step: test the values just entered, then offer only what can help.

A server that works gets no offer; one where nothing answers gets the choice of a project-local
PostgreSQL, another test, or no database; a server that answers but does not know the role, the
database or the password gets the offer to create them, with the admin login checked here,
before the summary, so that the summary says what will happen to the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from recio_setup.cli.output import Output
from recio_setup.cli.wizard import DbChoice, ask, ask_secret, confirm
from recio_setup.errors import RecioError
from recio_setup.result import Value

if TYPE_CHECKING:
    from recio_setup.db.probe import DbProbe
    from recio_setup.db.provision import ProvisionState
    from recio_setup.db.target import DbSettings

# Causes that say no server answered at POSTGRES_HOST:POSTGRES_PORT.
NOT_ANSWERING = ("connection_refused", "timeout", "host_unresolved")
# Causes that creating the role and database (or setting the role's password) can fix.
CREATABLE = ("auth_failed", "no_password", "database_missing")

LOCAL = "Start a project-local PostgreSQL (recommended)"
AGAIN = "I will start my own: test again"
SKIP = "Skip the database"
CREATE = "Create the role and database now? (needs admin access to PostgreSQL)"
RETYPE = "Type the admin password again"
OTHER_ADMIN = "Log in as another admin user"
NO_CREATE = "Do not create them now"

UNTESTED = "not working yet: tested again at the end"


def _database_row(text: str) -> DbChoice:
    """A choice that changes nothing, said in the summary's `database` row."""
    return DbChoice((("database", text),))


@dataclass(frozen=True)
class DbAccess:
    """What the step needs from the command: the settings the values make, and the admin
    connection as the flags and the environment give it."""

    settings: Callable[[dict[str, Value]], DbSettings]
    admin_url: str | None
    # Read only when the admin logs in: `--admin-password-file -` reads stdin.
    admin_password: Callable[[], str | None]
    timeout: float


def database_step(values: dict[str, Value], output: Output, access: DbAccess) -> DbChoice:
    """Test, and decide with the user what happens to the database (values are not changed)."""
    from recio_setup.db.probe import probe

    while True:
        settings = access.settings(values)
        with output.progress(f"testing PostgreSQL at {settings.host}:{settings.port}"):
            outcome = probe(settings)
        if outcome.ok:
            output.status(outcome.message)
            return _database_row("works: connected and tested")
        if outcome.cause in NOT_ANSWERING:
            choice = _nothing_answers(output, outcome)
            if choice is not None:
                return choice
            continue
        if outcome.cause in CREATABLE:
            return _offer_to_create(output, access, settings, outcome)
        output.warn(f"{outcome.message} {outcome.hint or ''}".strip())
        return _database_row(UNTESTED)


def _nothing_answers(output: Output, outcome: DbProbe) -> DbChoice | None:
    """None: test again."""
    import questionary

    output.warn(outcome.message)
    answer = ask(
        questionary.select(
            f"No PostgreSQL answers at {outcome.server}. What now?",
            choices=[LOCAL, AGAIN, SKIP],
            default=LOCAL,
        )
    )
    if answer == AGAIN:
        return None
    if answer == LOCAL:
        return DbChoice((("database", "a project-local PostgreSQL, set up by init"),), local=True)
    skipped = "skipped: neither set up nor tested (`check` tests it later)"
    return DbChoice((("database", skipped),), skip=True)


def _offer_to_create(
    output: Output, access: DbAccess, settings: DbSettings, outcome: DbProbe
) -> DbChoice:
    output.status(outcome.message)
    if not confirm(CREATE, default=True):
        return _database_row(UNTESTED)
    login = _admin_login(output, access, settings)
    if login is None:
        return _database_row(UNTESTED)
    state, user, password = login
    reset = False
    if state.password_differs:
        reset = confirm(
            f"The role {settings.user!r} exists with another password. Set it to the "
            "POSTGRES_PASSWORD of this setup? Whatever else logs in as that role (another "
            "checkout, say) then needs the new one.",
            default=False,
        )
        if not reset:
            return _database_row(f"{UNTESTED} (the role {settings.user!r} has another password)")
    refused = state.refusal(settings, reset_password=reset)
    if refused is not None:
        output.warn(_said(refused))
        return _database_row(UNTESTED)
    admin = ("PostgreSQL admin", f"{state.admin.user!r}: login checked")
    return DbChoice(
        (*state.planned(settings, reset_password=reset), admin),
        create=True,
        reset_password=reset,
        admin_user=user,
        admin_password=password,
    )


def _admin_login(
    output: Output, access: DbAccess, settings: DbSettings
) -> tuple[ProvisionState, str | None, str | None] | None:
    """Log in as the admin and look (read-only), asking the user and the password as the server
    needs them; None when the user gives up. An admin URL names its own user: not asked."""
    from recio_setup.db.admin import PASSWORD_CAUSES, AdminSettings
    from recio_setup.db.provision import inspect

    user = None if access.admin_url else _ask_admin_user()
    given = access.admin_password()
    password = given
    while True:
        admin = AdminSettings(url=access.admin_url, password=password, user=user)
        try:
            with output.progress("logging in as the PostgreSQL admin (read-only)"):
                return inspect(admin, settings, timeout=access.timeout), user, password
        except RecioError as failed:
            if failed.cause == "admin_no_password" and password is None:
                password = _ask_admin_password(output)
                continue
            output.warn(failed.message if failed.cause in PASSWORD_CAUSES else _said(failed))
            answer = _after_failed_login(access)
            if answer == NO_CREATE:
                return None
            if answer == OTHER_ADMIN:
                user, password = _ask_admin_user(), given
                continue
            password = _ask_admin_password(output)


def _said(failed: RecioError) -> str:
    return f"{failed.message} ({failed.hint})" if failed.hint else failed.message


def _after_failed_login(access: DbAccess) -> str:
    import questionary

    choices = [RETYPE, *([] if access.admin_url else [OTHER_ADMIN]), NO_CREATE]
    return str(ask(questionary.select("What now?", choices=choices, default=RETYPE)))


def _ask_admin_user() -> str:
    import questionary

    def valid(text: str) -> bool | str:
        return bool(text.strip()) or "give the admin's user name"

    answer = ask(questionary.text("PostgreSQL admin user:", default="postgres", validate=valid))
    return str(answer).strip()


def _ask_admin_password(output: Output) -> str:
    password = ask_secret("PostgreSQL admin password (hidden):")
    output.add_secret(password)
    return password
