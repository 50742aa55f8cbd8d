"""Provisioning the role and database against the real throwaway PostgreSQL.

Fresh, again (no change), with reset_password; hostile names and passwords; admins lacking
privileges. Every test checks that no password shows in steps, checks or exception text.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from recio_setup.db.probe import probe
from recio_setup.db.provision import AdminSettings, ProvisionReport, inspect, provision
from recio_setup.db.target import DbSettings
from recio_setup.env.settings import generate_password
from recio_setup.errors import RecioError, StepFailed, UsageError
from tests.pgserver import create_role, free_port

pytestmark = pytest.mark.db


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def target(pg: Any, user: str, dbname: str, password: str | None) -> DbSettings:
    return DbSettings(pg.host, pg.port, dbname, user, password, connect_timeout=2)


def report_text(report: ProvisionReport) -> str:
    checks = [check.to_json() for check in report.to_checks()]
    return json.dumps(checks) + repr(report) + "\n".join(report.steps + report.warnings)


def error_text(error: RecioError) -> str:
    return f"{error} {error.message} {error.hint} {error.cause} {error!r}"


def assert_absent(secrets: list[str], *texts: str) -> None:
    for secret in secrets:
        for text in texts:
            assert secret not in text


def database_owner(pg: Any, dbname: str) -> Any:
    rows = pg.execute(
        "select pg_get_userbyid(datdba) from pg_database where datname = %s", (dbname,)
    )
    return rows[0][0] if rows else None


def test_fresh_then_again_then_reset_password(pg: Any) -> None:
    user, dbname, first = unique("rec"), unique("recdb"), generate_password()
    admin = AdminSettings(pg.admin_url)
    secrets = [first, pg.password]

    created = provision(admin, target(pg, user, dbname, first))
    assert (created.role_created, created.database_created) == (True, True)
    assert not created.role_password_changed
    assert database_owner(pg, dbname) == user
    logged_in = probe(target(pg, user, dbname, first))
    assert logged_in.ok, logged_in.raw
    assert logged_in.can_create_tables is True
    assert_absent(secrets, report_text(created))

    again = provision(admin, target(pg, user, dbname, first))
    assert not again.changed
    assert "left as it is" in " ".join(again.steps)
    assert_absent(secrets, report_text(again))

    # Another password without reset: refused, saying so, and nothing changes.
    second = generate_password()
    with pytest.raises(StepFailed) as caught:
        provision(admin, target(pg, user, dbname, second))
    assert caught.value.cause == "role_password_differs"
    assert "exists with another password" in caught.value.message
    assert caught.value.hint and "--create-db --reset-db-password" in caught.value.hint
    assert probe(target(pg, user, dbname, first)).ok
    assert probe(target(pg, user, dbname, second)).cause == "auth_failed"
    assert_absent([*secrets, second], error_text(caught.value))

    reset = provision(admin, target(pg, user, dbname, second), reset_password=True)
    assert reset.role_password_changed
    assert not (reset.role_created or reset.database_created)
    assert probe(target(pg, user, dbname, second)).ok
    assert probe(target(pg, user, dbname, first)).cause == "auth_failed"
    assert_absent([*secrets, second], report_text(reset))


def test_the_plain_password_never_reaches_the_server(pg: Any) -> None:
    user, dbname, password = unique("rec"), unique("recdb"), generate_password()
    provision(AdminSettings(pg.admin_url), target(pg, user, dbname, password))
    stored = pg.execute("select rolpassword from pg_authid where rolname = %s", (user,))[0][0]
    assert stored.startswith("SCRAM-SHA-256$")
    assert password not in stored


HOSTILE_NAMES = [
    'qu"ote',
    "semi; DROP ROLE postgres; --",
    "$$dollar$$",
    "back\\slash",
    "new\nline",
    "ünïcødé 🐘",
    "it's",
]
HOSTILE_PASSWORDS = [
    "pa'ss\"word; DROP TABLE x; --",
    "$$ $tag$ \\\\ \\' end",
    "new\nline\ttab",
    "ünïcødé 🐘 pässwörd",
    " leading and trailing ",
]


@pytest.mark.parametrize(
    ("name", "password"),
    list(zip(HOSTILE_NAMES, HOSTILE_PASSWORDS * 2, strict=False)),
    ids=[f"hostile{i}" for i in range(len(HOSTILE_NAMES))],
)
def test_hostile_names_and_passwords_are_taken_literally(pg: Any, name: str, password: str) -> None:
    suffix = uuid.uuid4().hex[:6]
    user, dbname = f"{name} r{suffix}", f"{name} d{suffix}"
    report = provision(AdminSettings(pg.admin_url), target(pg, user, dbname, password))
    assert report.role_created and report.database_created
    assert pg.execute("select 1 from pg_roles where rolname = %s", (user,)) == [(1,)]
    assert database_owner(pg, dbname) == user
    # Nothing was injected: the superuser is still there and still a superuser.
    assert pg.execute("select rolsuper from pg_roles where rolname = 'postgres'") == [(True,)]
    logged_in = probe(target(pg, user, dbname, password))
    assert logged_in.ok, logged_in.raw
    assert logged_in.current_user == user
    assert logged_in.database == dbname
    assert_absent([password], report_text(report), json.dumps(logged_in.to_check().to_json()))


def test_admin_without_createrole_is_refused_before_any_change(pg: Any) -> None:
    admin_user, admin_password = unique("weak"), generate_password()
    create_role(pg, admin_user, admin_password)
    user, dbname, password = unique("rec"), unique("recdb"), generate_password()
    admin = AdminSettings(pg.url(admin_user, admin_password))
    with pytest.raises(StepFailed) as caught:
        provision(admin, target(pg, user, dbname, password))
    assert caught.value.cause == "admin_no_createrole"
    assert "CREATEROLE" in caught.value.message
    assert caught.value.hint and "superuser" in caught.value.hint
    assert not pg.execute("select 1 from pg_roles where rolname = %s", (user,))
    assert database_owner(pg, dbname) is None
    assert_absent([admin_password, password], error_text(caught.value))


def test_admin_without_createdb_is_refused_before_any_change(pg: Any) -> None:
    admin_user, admin_password = unique("halfweak"), generate_password()
    create_role(pg, admin_user, admin_password, "CREATEROLE")
    user, dbname, password = unique("rec"), unique("recdb"), generate_password()
    with pytest.raises(StepFailed) as caught:
        provision(
            AdminSettings(pg.url(admin_user, admin_password)), target(pg, user, dbname, password)
        )
    assert caught.value.cause == "admin_no_createdb"
    assert "CREATEDB" in caught.value.message
    assert not pg.execute("select 1 from pg_roles where rolname = %s", (user,))
    assert_absent([admin_password, password], error_text(caught.value))


def test_non_superuser_admin_with_createrole_and_createdb_gives_the_database_away(
    pg: Any,
) -> None:
    admin_user, admin_password = unique("creator"), generate_password()
    create_role(pg, admin_user, admin_password, "CREATEROLE", "CREATEDB")
    user, dbname, password = unique("rec"), unique("recdb"), generate_password()
    # The admin password comes separately (environment, file or prompt), not in the URL.
    admin = AdminSettings(pg.url(admin_user), password=admin_password)
    report = provision(admin, target(pg, user, dbname, password))
    assert report.role_created and report.database_created
    assert database_owner(pg, dbname) == user
    # The temporary membership used to hand the database over is gone again (from PostgreSQL
    # 16 a CREATEROLE admin keeps the ADMIN OPTION on the roles it made, but not SET ROLE).
    member = pg.execute(
        "select pg_has_role(%s, %s, case when current_setting('server_version_num')::int "
        ">= 160000 then 'SET' else 'MEMBER' end)",
        (admin_user, user),
    )
    assert member == [(False,)]
    assert probe(target(pg, user, dbname, password)).can_create_tables is True
    assert_absent([admin_password, password], report_text(report))


def test_wrong_admin_password_names_the_admin_cause(pg: Any) -> None:
    wrong, password = generate_password(), generate_password()
    admin = AdminSettings(pg.url(pg.superuser, wrong))
    with pytest.raises(StepFailed) as caught:
        provision(admin, target(pg, unique("rec"), unique("recdb"), password))
    assert caught.value.cause == "admin_auth_failed"
    assert caught.value.hint and "--admin-url" in caught.value.hint
    assert_absent([wrong, password, pg.password], error_text(caught.value))


def test_unreachable_admin_server_is_refused(pg: Any) -> None:
    admin = AdminSettings(f"postgresql://postgres:topsecret1@127.0.0.1:{free_port()}/postgres")
    with pytest.raises(StepFailed) as caught:
        provision(admin, target(pg, unique("rec"), unique("recdb"), "pw-secret-2"))
    assert caught.value.cause == "admin_connection_refused"
    assert_absent(["topsecret1", "pw-secret-2"], error_text(caught.value))


def test_bad_admin_url_is_a_usage_error_without_the_password(pg: Any) -> None:
    admin = AdminSettings("postgresql://postgres:top%ZZsecret@127.0.0.1/postgres")
    with pytest.raises(UsageError) as caught:
        provision(admin, target(pg, unique("rec"), unique("recdb"), "pw-secret-3"))
    assert_absent(["top%ZZsecret", "topsecret", "pw-secret-3"], error_text(caught.value))


def test_existing_database_owned_by_someone_else_is_left_with_a_warning(pg: Any) -> None:
    user, dbname, password = unique("rec"), unique("recdb"), generate_password()
    pg.execute(f'CREATE DATABASE "{dbname}"')
    report = provision(AdminSettings(pg.admin_url), target(pg, user, dbname, password))
    assert report.role_created and not report.database_created
    assert database_owner(pg, dbname) == "postgres"
    statuses = [check.status for check in report.to_checks()]
    assert statuses == ["ok", "warn"]
    assert_absent([password], report_text(report))


def test_admin_can_reset_its_own_password_without_createrole(pg: Any) -> None:
    user, old, new = unique("self"), generate_password(), generate_password()
    create_role(pg, user, old)
    dbname = unique("selfdb")
    pg.execute(f'CREATE DATABASE "{dbname}" OWNER "{user}"')
    admin = AdminSettings(pg.url(user, old, dbname))
    report = provision(admin, target(pg, user, dbname, new), reset_password=True)
    assert report.role_password_changed
    assert probe(target(pg, user, dbname, new)).ok
    assert_absent([old, new], report_text(report))


def test_bad_key_value_admin_conninfo_hides_the_password(pg: Any) -> None:
    admin = AdminSettings("host=127.0.0.1 password='kv secret' bogus_option=1")
    with pytest.raises(UsageError) as caught:
        provision(admin, target(pg, unique("rec"), unique("recdb"), "pw-secret-4"))
    assert_absent(["kv secret", "pw-secret-4"], error_text(caught.value))


def test_admin_url_with_its_own_connect_timeout_still_works(pg: Any) -> None:
    user, dbname, password = unique("rec"), unique("recdb"), generate_password()
    admin = AdminSettings(pg.admin_url + "?connect_timeout=30&sslmode=disable")
    report = provision(admin, target(pg, user, dbname, password))
    assert report.role_created and report.database_created


def test_a_role_with_another_password_is_said_before_the_database_is_created(pg: Any) -> None:
    user, dbname = unique("other"), unique("otherdb")
    create_role(pg, user, "its-own-pw-1")
    with pytest.raises(StepFailed) as caught:
        provision(AdminSettings(pg.admin_url), target(pg, user, dbname, "not-its-pw-2"))
    assert caught.value.cause == "role_password_differs"
    assert database_owner(pg, dbname) is None
    assert_absent(["its-own-pw-1", "not-its-pw-2"], error_text(caught.value))


def test_inspect_reads_without_changing_anything(pg: Any) -> None:
    admin = AdminSettings(pg.admin_url)
    user, dbname, password = unique("look"), unique("lookdb"), generate_password()
    fresh = inspect(admin, target(pg, user, dbname, password))
    assert (fresh.can_login, fresh.owner, fresh.password_works) == (None, None, None)
    assert fresh.planned(target(pg, user, dbname, password), reset_password=False) == [
        (f"role {user!r}", "to create"),
        (f"database {dbname!r}", f"to create, owned by {user!r}"),
    ]
    assert pg.execute("select 1 from pg_roles where rolname = %s", (user,)) == []
    create_role(pg, user, password)
    # The database is still missing: the server checks the password first, so it is known.
    right = inspect(admin, target(pg, user, dbname, password))
    assert (right.can_login, right.password_works, right.password_differs) == (True, True, False)
    wrong = inspect(admin, target(pg, user, dbname, "not-the-pw-9"))
    assert wrong.password_differs
    refused = wrong.refusal(target(pg, user, dbname, "x"), reset_password=False)
    assert refused is not None and refused.cause == "role_password_differs"
    assert wrong.refusal(target(pg, user, dbname, "x"), reset_password=True) is None
    assert database_owner(pg, dbname) is None
