"""The connection test against the real throwaway PostgreSQL: every cause loopback can produce.

Each probe asserts its cause, that the message and hint are there, and that the password never
appears in the message, hint, raw text or the check's JSON.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from recio_setup.db.connect import mask
from recio_setup.db.probe import DbProbe, probe
from recio_setup.db.target import DbSettings
from recio_setup.db.url import parse_database_url
from recio_setup.env.settings import generate_password
from recio_setup.errors import UsageError
from recio_setup.masking import redact_url
from recio_setup.result import MASK
from recio_setup.runtime.database import SSLMODES
from tests.pgserver import (
    HBA_REJECTED_ROLE,
    create_role,
    free_port,
    refusing_server,
    silent_server,
)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def settings(pg: Any, **changes: Any) -> DbSettings:
    values: dict[str, Any] = {
        "host": pg.host,
        "port": pg.port,
        "dbname": "postgres",
        "user": pg.superuser,
        "password": pg.password,
        "connect_timeout": 2.0,
    }
    values.update(changes)
    return DbSettings(**values)


def assert_secret_absent(secret: str | None, result: DbProbe) -> None:
    if not secret:
        return
    texts = [result.message, result.hint or "", result.raw or "", repr(result)]
    texts.append(json.dumps(result.to_check().to_json()))
    for text in texts:
        assert secret not in text


def assert_failed(result: DbProbe, cause: str, secret: str | None) -> None:
    assert not result.ok
    assert result.cause == cause, (result.cause, result.raw)
    assert result.message and result.hint
    check = result.to_check()
    assert check.name == "database"
    assert check.status == "fail"
    assert check.data["cause"] == cause
    assert_secret_absent(secret, result)


@pytest.mark.db
def test_success_reports_version_user_database_and_owner_rights(pg: Any) -> None:
    role, password = unique("owner"), generate_password()
    create_role(pg, role, password)
    db = unique("db")
    pg.execute(f'CREATE DATABASE "{db}" OWNER "{role}"')
    result = probe(settings(pg, user=role, password=password, dbname=db))
    assert result.ok, result.raw
    assert result.cause is None
    assert result.server_version and result.server_version[0].isdigit()
    assert result.current_user == role
    assert result.database == db
    assert result.can_create_tables is True
    check = result.to_check()
    assert check.status == "ok"
    assert check.data["server_version"] == result.server_version
    assert_secret_absent(password, result)


@pytest.mark.db
def test_a_user_without_create_on_public_and_not_owner_cannot_create_tables(pg: Any) -> None:
    role, password = unique("reader"), generate_password()
    create_role(pg, role, password)
    # PostgreSQL 15 took CREATE on schema public away from PUBLIC; older servers still grant it.
    pg.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    result = probe(settings(pg, user=role, password=password))
    assert result.ok, result.raw
    assert result.can_create_tables is False
    check = result.to_check()
    assert check.status == "warn"
    assert check.fix and "GRANT CREATE ON SCHEMA public" in check.fix
    assert_secret_absent(password, result)


@pytest.mark.db
def test_closed_port_is_connection_refused(pg: Any) -> None:
    result = probe(settings(pg, port=free_port()))
    assert_failed(result, "connection_refused", pg.password)
    assert result.hint is not None
    assert "brew services start" in result.hint
    assert "systemctl start postgresql" in result.hint
    assert "init --local-db" in result.hint  # for a machine with no PostgreSQL at all
    assert "POSTGRES_PORT" in result.hint


@pytest.mark.db
@pytest.mark.parametrize("short", ["u", "e", "r"])
def test_a_one_letter_name_does_not_hide_the_cause(pg: Any, short: str) -> None:
    # The names are taken out of libpq's text before it is matched; only their quoted form.
    result = probe(settings(pg, port=free_port(), user=short, dbname=short))
    assert_failed(result, "connection_refused", pg.password)


@pytest.mark.db
def test_silent_server_times_out_within_the_timeout_plus_one_second(pg: Any) -> None:
    with silent_server() as port:
        started = time.monotonic()
        result = probe(settings(pg, port=port, connect_timeout=2.0))
        elapsed = time.monotonic() - started
    assert_failed(result, "timeout", pg.password)
    # A deadline, not a benchmark: without it psycopg would wait 130 s.
    assert elapsed < 3.0


def test_silent_server_behind_localhost_times_out_once() -> None:
    # `localhost` may resolve to ::1 and 127.0.0.1: the deadline is shared, not per address.
    with silent_server() as port:
        started = time.monotonic()
        result = probe(
            DbSettings("localhost", port, "db", "user", "secret-pw-123", connect_timeout=2.0)
        )
        elapsed = time.monotonic() - started
    assert result.cause in ("timeout", "connection_refused")
    assert elapsed < 3.0


@pytest.mark.db
def test_wrong_password_is_auth_failed(pg: Any) -> None:
    wrong = generate_password()
    result = probe(settings(pg, password=wrong))
    assert_failed(result, "auth_failed", wrong)
    assert_secret_absent(pg.password, result)


@pytest.mark.db
def test_unknown_role_is_auth_failed_too(pg: Any) -> None:
    secret = generate_password()
    result = probe(settings(pg, user=unique("ghost"), password=secret))
    assert_failed(result, "auth_failed", secret)


@pytest.mark.db
def test_no_password_is_no_password(pg: Any) -> None:
    result = probe(settings(pg, password=None))
    assert_failed(result, "no_password", pg.password)
    assert result.hint is not None
    assert "POSTGRES_PASSWORD" in result.hint


@pytest.mark.db
def test_missing_database_is_database_missing_with_create_db_hint(pg: Any) -> None:
    db = unique("nodb")
    result = probe(settings(pg, dbname=db))
    assert_failed(result, "database_missing", pg.password)
    assert db in result.message
    assert result.hint is not None
    assert "--create-db" in result.hint


@pytest.mark.db
def test_pg_hba_reject_line_is_hba_rejected(pg: Any) -> None:
    from psycopg import sql

    password = generate_password()
    if not pg.execute("select 1 from pg_roles where rolname = %s", (HBA_REJECTED_ROLE,)):
        create_role(pg, HBA_REJECTED_ROLE, None)
    # The right password: only pg_hba.conf stands in the way.
    pg.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(HBA_REJECTED_ROLE), sql.Literal(password)
        )
    )
    result = probe(settings(pg, user=HBA_REJECTED_ROLE, password=password))
    assert_failed(result, "hba_rejected", password)
    assert result.hint is not None
    assert "pg_hba.conf" in result.hint


@pytest.mark.db
def test_sslmode_require_against_a_server_without_ssl_is_ssl_unsupported(pg: Any) -> None:
    result = probe(settings(pg, sslmode="require"))
    assert_failed(result, "ssl_unsupported", pg.password)
    assert result.hint is not None
    assert "--db-sslmode prefer" in result.hint


def test_server_starting_up_is_starting_up() -> None:
    secret = generate_password()
    with refusing_server("the database system is starting up", "57P03") as port:
        result = probe(DbSettings("127.0.0.1", port, "db", "user", secret, connect_timeout=2))
    assert_failed(result, "starting_up", secret)


def test_other_errors_keep_the_server_text() -> None:
    secret = generate_password()
    text = "sorry, too many clients already"
    with refusing_server(text, "53300") as port:
        result = probe(DbSettings("127.0.0.1", port, "db", "user", secret, connect_timeout=2))
    assert result.cause == "other"
    assert text in result.message
    assert result.raw and text in result.raw
    assert_secret_absent(secret, result)


def test_a_hostile_name_cannot_steer_the_classification() -> None:
    # The user name holds another cause's words; the server's own words must decide.
    secret = generate_password()
    with refusing_server('role "Connection refused" does not exist', "28000") as port:
        result = probe(
            DbSettings("127.0.0.1", port, "db", "Connection refused", secret, connect_timeout=2)
        )
    assert result.cause == "auth_failed"


def test_password_in_server_text_is_masked() -> None:
    secret = "s3cr'et\\pw$$;"
    with refusing_server(f"password was {secret} here", "XX000") as port:
        result = probe(DbSettings("127.0.0.1", port, "db", "user", secret, connect_timeout=2))
    assert result.cause == "other"
    assert result.raw and MASK in result.raw
    assert_secret_absent(secret, result)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"sslmode": "sometimes"}, "sslmode"),
        ({"connect_timeout": 0.1}, "timeout"),
        ({"connect_timeout": float("nan")}, "timeout"),
        ({"port": 0}, "POSTGRES_PORT"),
        ({"user": "x" * 64}, "63 bytes"),
        ({"dbname": "a\0b"}, "NUL"),
        ({"host": "a,b"}, "one host"),
    ],
)
def test_bad_settings_are_usage_errors(changes: dict[str, Any], fragment: str) -> None:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 5432,
        "dbname": "db",
        "user": "u",
        "password": "pw-secret",
    }
    with pytest.raises(UsageError, match=fragment) as caught:
        DbSettings(**{**values, **changes})
    assert "pw-secret" not in str(caught.value)


def test_settings_repr_hides_the_password() -> None:
    assert "pw-secret" not in repr(DbSettings("h", 1, "d", "u", "pw-secret"))


def test_settings_from_values() -> None:
    built = DbSettings.from_values(
        {
            "POSTGRES_HOST": "localhost",
            "POSTGRES_PORT": "5433",
            "POSTGRES_DB": "rec_io_db",
            "POSTGRES_USER": "rec_io_user",
        },
        sslmode="disable",
    )
    assert (built.port, built.password, built.sslmode) == (5433, None, "disable")
    with pytest.raises(UsageError, match="POSTGRES_PORT"):
        DbSettings.from_values(
            {"POSTGRES_HOST": "h", "POSTGRES_PORT": "x", "POSTGRES_DB": "d", "POSTGRES_USER": "u"}
        )
    with pytest.raises(UsageError, match="POSTGRES_DB"):
        DbSettings.from_values({"POSTGRES_HOST": "h", "POSTGRES_PORT": "1", "POSTGRES_USER": "u"})


def test_generate_password_is_strong_and_env_safe() -> None:
    passwords = {generate_password() for _ in range(200)}
    assert len(passwords) == 200
    for password in passwords:
        assert len(password) >= 32
        assert not set(password) & set("$'\"\\ #=\n`")


def test_parse_database_url_decodes_every_part() -> None:
    url = "postgresql://rec%40user:p%40ss%3Aw%2Fo%24rd@db.example:6543/rec%20db?sslmode=require"
    assert parse_database_url(url) == {
        "POSTGRES_HOST": "db.example",
        "POSTGRES_PORT": "6543",
        "POSTGRES_DB": "rec db",
        "POSTGRES_USER": "rec@user",
        "POSTGRES_PASSWORD": "p@ss:w/o$rd",
        "POSTGRES_SSLMODE": "require",
    }
    assert parse_database_url("postgres://u@[::1]/d") == {
        "POSTGRES_HOST": "::1",
        "POSTGRES_DB": "d",
        "POSTGRES_USER": "u",
    }


def test_parse_database_url_keeps_every_libpq_sslmode() -> None:
    for mode in SSLMODES:
        parsed = parse_database_url(f"postgresql://u@h/d?sslmode={mode}")
        assert parsed["POSTGRES_SSLMODE"] == mode


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("sslmode=sometimes", "'sometimes' is not an sslmode"),
        ("sslmode=REQUIRE", "'REQUIRE' is not an sslmode"),
        ("sslmode=require&sslmode=disable", "more than once"),
    ],
)
def test_parse_database_url_names_a_bad_sslmode(query: str, fragment: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_database_url(f"postgresql://u:topsecret@h/d?{query}")
    assert fragment in caught.value.message
    assert caught.value.hint and "sslmode" in caught.value.hint
    assert "topsecret" not in caught.value.message + caught.value.hint


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:topsecret@h/d",
        "postgresql://u:topsecret@h:notaport/d",
        "postgresql://u:topsecret@h1,h2/d",
        "postgresql://u:topsecret@h/d?application_name=x",
        "postgresql://u:topsecret@h/d%00x",
    ],
)
def test_parse_database_url_rejects_bad_urls_without_the_password(url: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_database_url(url)
    assert "topsecret" not in str(caught.value)
    assert "topsecret" not in (caught.value.hint or "")


def test_redact_url_and_mask() -> None:
    assert redact_url("postgresql://u:topsecret@h/d") == f"postgresql://u:{MASK}@h/d"
    assert redact_url("postgresql://u@h/d") == "postgresql://u@h/d"
    assert mask("a p%40ss b p@ss c", ["p@ss"]) == f"a {MASK} b {MASK} c"
