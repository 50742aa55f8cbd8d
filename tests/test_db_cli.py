"""The database steps as a user meets them: init/check against the throwaway server.

Every test asserts the exit code, the cause in --json, and that no password reaches any output.
"""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values

from tests.conftest import REPO, Cli, Run
from tests.pgserver import create_role, free_port

pytestmark = pytest.mark.db
BASE = ("--non-interactive", "--host", "127.0.0.1", "--json")


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def valid_envelope(run: Run) -> None:
    import jsonschema

    schema = json.loads((REPO / "docs/schema/envelope.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(run.json())


def db_check(run: Run) -> dict[str, Any]:
    checks = run.json()["result"]["checks"]
    return next(c for c in checks if c["name"] == "database")


def assert_secret_free(run: Run, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in run.all, "a password leaked into the output"


def init(
    cli: Cli,
    pg: Any,
    *args: str,
    password: str | None,
    user: str,
    db: str,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> Run:
    env = {"POSTGRES_PASSWORD": password} if password else {}
    env.update(extra_env or {})
    return cli(
        *BASE,
        "--postgres-host",
        "127.0.0.1",
        "--postgres-port",
        str(port or pg.port),
        "--postgres-user",
        user,
        "--postgres-db",
        db,
        *args,
        env=env,
    )


def test_create_db_then_again_then_reset_password(cli: Cli, project: Path, pg: Any) -> None:
    user, db = unique("u"), unique("d")
    admin = {"POSTGRES_ADMIN_URL": pg.admin_url}
    first = init(cli, pg, "--create-db", password=None, user=user, db=db, extra_env=admin)
    assert first.code == 0, first.err
    generated = dotenv_values(project / ".env")["POSTGRES_PASSWORD"]
    assert generated and len(generated) >= 24
    assert db_check(first)["status"] == "ok"
    assert_secret_free(first, generated, pg.password)
    assert pg.execute(
        "select pg_get_userbyid(datdba) from pg_database where datname = %s", (db,)
    ) == [(user,)]

    again = init(cli, pg, "--create-db", password=None, user=user, db=db, extra_env=admin)
    assert again.code == 0, again.err
    assert dotenv_values(project / ".env")["POSTGRES_PASSWORD"] == generated
    steps = " ".join(c["detail"] for c in again.json()["result"]["checks"])
    assert "already" in steps or "exists" in steps

    new_password = "N3w;pa'ss$$word"
    reset = init(
        cli,
        pg,
        "--create-db",
        "--reset-db-password",
        password=new_password,
        user=user,
        db=db,
        extra_env=admin,
    )
    assert reset.code == 0, reset.err
    assert dotenv_values(project / ".env")["POSTGRES_PASSWORD"] == new_password
    assert db_check(reset)["status"] == "ok"
    assert_secret_free(reset, new_password, generated, pg.password)


def test_wrong_password_is_auth_failed(cli: Cli, project: Path, pg: Any) -> None:
    user = unique("u")
    pg.execute(f"create role \"{user}\" login password 'right-one'")
    run = init(cli, pg, password="wrong-one-here", user=user, db="postgres")
    assert run.code == 1
    assert db_check(run)["data"]["cause"] == "auth_failed"
    # The failure comes after .env: it stays written, and the summary says so.
    assert dotenv_values(project / ".env")["POSTGRES_USER"] == user
    assert ".env is written" in run.json()["result"]["summary"]
    assert_secret_free(run, "wrong-one-here")


def test_missing_database_suggests_create_db(cli: Cli, pg: Any) -> None:
    user = unique("u")
    pg.execute(f"create role \"{user}\" login password 'pw-missing-db'")
    run = init(cli, pg, password="pw-missing-db", user=user, db=unique("nodb"))
    assert run.code == 1
    check = db_check(run)
    assert check["data"]["cause"] == "database_missing" and "--create-db" in check["fix"]
    assert_secret_free(run, "pw-missing-db")


def test_refused_port(cli: Cli, pg: Any) -> None:
    run = init(cli, pg, password="pw-refused-1", user="nobody_here", db="x", port=free_port())
    assert run.code == 1
    check = db_check(run)
    assert check["data"]["cause"] == "connection_refused"
    assert "POSTGRES_PORT" in check["fix"]
    assert_secret_free(run, "pw-refused-1")


def test_silent_server_times_out(cli: Cli, pg: Any) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        port = listener.getsockname()[1]
        run = init(
            cli, pg, "--db-timeout", "2", password="pw-timeout-1", user="u", db="d", port=port
        )
    assert run.code == 1
    assert db_check(run)["data"]["cause"] == "timeout"
    assert_secret_free(run, "pw-timeout-1")


def test_hba_reject(cli: Cli, pg: Any) -> None:
    from tests.pgserver import HBA_REJECTED_ROLE

    pg.execute(
        f"do $$ begin if not exists (select from pg_roles where rolname = "
        f"'{HBA_REJECTED_ROLE}') then create role {HBA_REJECTED_ROLE} login password "
        f"'pw-hba-1'; end if; end $$"
    )
    run = init(cli, pg, password="pw-hba-1", user=HBA_REJECTED_ROLE, db="postgres")
    assert run.code == 1
    assert db_check(run)["data"]["cause"] == "hba_rejected"
    assert_secret_free(run, "pw-hba-1")


def test_check_reports_success_and_failure(cli: Cli, project: Path, pg: Any) -> None:
    user, db = unique("u"), unique("d")
    created = init(
        cli,
        pg,
        "--create-db",
        password="pw-check-ok-1",
        user=user,
        db=db,
        extra_env={"POSTGRES_ADMIN_URL": pg.admin_url},
    )
    assert created.code == 0, created.err
    good = cli("check", "--json")
    assert good.code == 0, good.out
    assert db_check(good)["status"] == "ok"
    env_path = project / ".env"
    env_path.write_text(env_path.read_text().replace("pw-check-ok-1", "pw-check-bad-2"))
    bad = cli("check", "--json")
    assert bad.code == 1
    assert db_check(bad)["data"]["cause"] == "auth_failed"
    assert_secret_free(good, "pw-check-ok-1")
    assert_secret_free(bad, "pw-check-bad-2")


def test_admin_without_privileges_is_told_so(cli: Cli, pg: Any) -> None:
    weak = unique("weak")
    pg.execute(f"create role \"{weak}\" login password 'weak-pw-1'")
    admin_url = pg.url(weak, "weak-pw-1")
    run = init(
        cli,
        pg,
        "--create-db",
        password="target-pw-1",
        user=unique("u"),
        db=unique("d"),
        extra_env={"POSTGRES_ADMIN_URL": admin_url},
    )
    assert run.code == 1
    checks = run.json()["result"]["checks"]
    failed = next(c for c in checks if c["name"] == "create database")
    assert failed["data"]["cause"] in ("admin_no_createrole", "admin_no_createdb")
    assert "CREATEROLE" in failed["detail"] or "CREATEDB" in failed["detail"]
    assert_secret_free(run, "weak-pw-1", "target-pw-1")


def test_admin_password_from_a_file(cli: Cli, pg: Any, tmp_path: Path) -> None:
    secret = tmp_path / "admin-pw"
    secret.write_text(pg.password + "\n")
    admin_url = f"postgresql://{pg.superuser}@{pg.host}:{pg.port}/postgres"
    run = init(
        cli,
        pg,
        "--create-db",
        "--admin-url",
        admin_url,
        "--admin-password-file",
        str(secret),
        password="target-pw-2",
        user=unique("u"),
        db=unique("d"),
    )
    assert run.code == 0, run.err
    assert_secret_free(run, pg.password, "target-pw-2")


def test_admin_url_flag_with_password_is_refused(cli: Cli, project: Path, pg: Any) -> None:
    run = init(
        cli, pg, "--create-db", "--admin-url", pg.admin_url, password="x-pw-123", user="u", db="d"
    )
    assert run.code == 2
    assert list(project.iterdir()) == []
    assert_secret_free(run, pg.password)


def test_check_honours_the_environment_like_the_services(cli: Cli, pg: Any) -> None:
    user, db = unique("u"), unique("d")
    # .env points at a closed port; the environment at the real server.
    made = init(
        cli,
        pg,
        "--create-db",
        password="pw-env-over-1",
        user=user,
        db=db,
        extra_env={"POSTGRES_ADMIN_URL": pg.admin_url},
    )
    assert made.code == 0, made.err
    closed = init(cli, pg, password="pw-env-over-1", user=user, db=db, port=free_port())
    assert closed.code == 1
    assert cli("check", "--json").code == 1
    run = cli("check", "--json", env={"POSTGRES_PORT": str(pg.port)})
    assert run.code == 0, run.out
    assert db_check(run)["status"] == "ok"


def test_create_db_counts_as_a_change(cli: Cli, pg: Any) -> None:
    run = init(
        cli,
        pg,
        "--create-db",
        password="pw-count-1",
        user=unique("u"),
        db=unique("d"),
        extra_env={"POSTGRES_ADMIN_URL": pg.admin_url},
    )
    assert run.code == 0, run.err
    result = run.json()["result"]
    assert any(a["kind"] == "provision" and a["state"] == "done" for a in result["actions"])
    assert "already in place" not in result["summary"]


# The fixture server has no SSL: sslmode=require must fail with ssl_unsupported there, which
# proves the mode given reached the connection; disable (or prefer) connects.


def sslmode_of(run: Run) -> tuple[str, str]:
    value = next(v for v in run.json()["result"]["values"] if v["name"] == "POSTGRES_SSLMODE")
    return value["value"], value["source"]


def assert_ssl_outcome(run: Run, mode: str) -> None:
    check = db_check(run)
    if mode == "require":
        assert run.code == 1, run.all
        assert check["data"]["cause"] == "ssl_unsupported"
        assert "sslmode is require" in check["detail"]
    else:
        assert run.code == 0, run.all
        assert check["status"] == "ok"


@pytest.mark.parametrize("mode", ["require", "disable"])
def test_sslmode_in_database_url_reaches_the_connection(
    cli: Cli, project: Path, pg: Any, mode: str
) -> None:
    url = f"{pg.url(pg.superuser, pg.password)}?sslmode={mode}"
    run = cli(*BASE, env={"DATABASE_URL": url})
    assert_ssl_outcome(run, mode)
    assert sslmode_of(run) == (mode, "environment DATABASE_URL")
    if mode == "require":
        # The fix names where the mode came from, since that is what the user must change.
        assert "DATABASE_URL in the environment" in db_check(run)["fix"]
    # A connection setting of this run, not a .env value (see settings.SSLMODE_FIELD).
    assert "SSLMODE" not in (project / ".env").read_text()
    assert_secret_free(run, pg.password)


ENV_SSLMODE = "environment POSTGRES_SSLMODE"


@pytest.mark.parametrize(
    ("args", "sources", "mode", "source"),
    [
        # --db-sslmode beats every other source.
        (["--db-sslmode", "disable"], {"URL": "require"}, "disable", "flag --db-sslmode"),
        (["--db-sslmode", "require"], {"FLAG_URL": "disable"}, "require", "flag --db-sslmode"),
        # --database-url is at the flag level: above the environment.
        ([], {"FLAG_URL": "require", "VAR": "disable"}, "require", "flag --database-url"),
        # The specific variable beats DATABASE_URL, as for every POSTGRES_* value.
        ([], {"VAR": "require", "URL": "disable"}, "require", ENV_SSLMODE),
        ([], {"VAR": "disable", "URL": "require"}, "disable", ENV_SSLMODE),
    ],
)
def test_sslmode_precedence_against_the_real_server(
    cli: Cli, pg: Any, args: list[str], sources: dict[str, str], mode: str, source: str
) -> None:
    """URL: DATABASE_URL's ?sslmode=, FLAG_URL: --database-url's, VAR: POSTGRES_SSLMODE."""
    base_url = f"postgresql://{pg.superuser}@{pg.host}:{pg.port}/postgres"
    extra = {"POSTGRES_PASSWORD": pg.password}
    if "URL" in sources:
        extra["DATABASE_URL"] = f"{base_url}?sslmode={sources['URL']}"
    if "VAR" in sources:
        extra["POSTGRES_SSLMODE"] = sources["VAR"]
    if "FLAG_URL" in sources:
        args = [*args, "--database-url", f"{base_url}?sslmode={sources['FLAG_URL']}"]
    run = cli(*BASE, *args, env=extra)
    assert_ssl_outcome(run, mode)
    assert sslmode_of(run) == (mode, source)
    assert_secret_free(run, pg.password)


def test_check_honours_the_sslmode_of_the_environment(cli: Cli, pg: Any) -> None:
    url = pg.url(pg.superuser, pg.password)
    made = cli(*BASE, env={"DATABASE_URL": f"{url}?sslmode=disable"})
    assert made.code == 0, made.all
    plain = cli("check", "--json")
    assert plain.code == 0, plain.out
    assert sslmode_of(plain) == ("prefer", "default")
    required = cli("check", "--json", env={"DATABASE_URL": f"{url}?sslmode=require"})
    assert_ssl_outcome(required, "require")
    assert sslmode_of(required) == ("require", "environment DATABASE_URL")
    variable = cli("check", "--json", env={"POSTGRES_SSLMODE": "require"})
    assert_ssl_outcome(variable, "require")
    overridden = cli(
        "check",
        "--json",
        "--db-sslmode",
        "disable",
        env={"DATABASE_URL": f"{url}?sslmode=require"},
    )
    assert_ssl_outcome(overridden, "disable")
    assert sslmode_of(overridden) == ("disable", "flag --db-sslmode")
    for run in (plain, required, variable, overridden):
        assert_secret_free(run, pg.password)


def test_check_offers_reset_only_for_what_reset_repairs(cli: Cli, project: Path, pg: Any) -> None:
    user = unique("u")
    pg.execute(f"create role \"{user}\" login password 'right-one'")
    init(cli, pg, password="wrong-one-here", user=user, db="postgres")
    note = "reset` repairs every file and folder problem above"

    auth_only = cli("check", "--json")

    assert auth_only.code == 1
    assert "--reset-db-password" in (db_check(auth_only)["fix"] or "")
    assert db_check(auth_only)["repair"] is None
    assert not [n for n in auth_only.json()["result"]["notes"] if note in n]

    (project / "backend/data/users/user_0001/auth_tokens.json").write_text("{")
    with_a_corrupt_file = cli("check", "--json")

    checks = with_a_corrupt_file.json()["result"]["checks"]
    assert [c["repair"] for c in checks if "auth_tokens.json" in c["name"]] == ["reset"]
    assert [n for n in with_a_corrupt_file.json()["result"]["notes"] if note in n]


def test_create_db_finds_the_admin_at_the_services_server_without_a_url(cli: Cli, pg: Any) -> None:
    """No --admin-url: postgres@POSTGRES_HOST:POSTGRES_PORT/postgres, as a fresh install has."""
    user, db = unique("u"), unique("d")
    run = init(
        cli,
        pg,
        "--create-db",
        password="svc-pw-123",
        user=user,
        db=db,
        extra_env={"POSTGRES_ADMIN_PASSWORD": pg.password},
    )
    assert run.code == 0, run.err
    assert pg.execute("select 1 from pg_roles where rolname = %s", (user,)) == [(1,)]


def test_libpq_variables_still_win_for_the_admin_and_a_failure_names_what_was_tried(
    cli: Cli, pg: Any
) -> None:
    user, db = unique("u"), unique("d")
    run = init(
        cli,
        pg,
        "--create-db",
        password="svc-pw-123",
        user=user,
        db=db,
        extra_env={"POSTGRES_ADMIN_PASSWORD": pg.password, "PGUSER": "nobody_here"},
    )
    assert run.code == 1
    failed = [c for c in run.json()["result"]["checks"] if c["id"] == "db.provision"]
    assert failed and "nobody_here" in failed[0]["detail"]
    refused = init(
        cli,
        pg,
        "--create-db",
        password="svc-pw-123",
        user=user,
        db=db,
        port=free_port(),
        extra_env={"POSTGRES_ADMIN_PASSWORD": pg.password},
    )
    check = next(c for c in refused.json()["result"]["checks"] if c["id"] == "db.provision")
    assert "127.0.0.1" in check["detail"] and "--admin-url postgresql://" in check["fix"]


def test_a_failing_create_db_leaves_a_working_env_byte_for_byte(
    cli: Cli, pg: Any, project: Path
) -> None:
    user, db = unique("u"), unique("d")
    first = init(cli, pg, "--skip-db-check", password="svc-pw-123", user=user, db=db)
    assert first.code == 0, first.err
    before = (project / ".env").read_bytes()
    failed = init(
        cli,
        pg,
        "--create-db",
        password="another-pw-456",
        user=unique("u"),
        db=unique("d"),
        extra_env={"POSTGRES_ADMIN_PASSWORD": "not-the-admin-password"},
    )
    assert failed.code == 1
    assert failed.json()["result"]["summary"].startswith("nothing was written")
    assert (project / ".env").read_bytes() == before


def provision_checks(run: Run) -> list[dict[str, Any]]:
    return [c for c in run.json()["result"]["checks"] if c["id"] == "db.provision"]


def test_create_db_says_when_the_role_exists_with_another_password(
    cli: Cli, pg: Any, project: Path
) -> None:
    user, db = unique("u"), unique("d")
    create_role(pg, user, "its-own-pw-1")
    admin = {"POSTGRES_ADMIN_PASSWORD": pg.password}
    run = init(cli, pg, "--create-db", password="not-its-pw-2", user=user, db=db, extra_env=admin)
    assert run.code == 1
    [failed] = provision_checks(run)
    assert failed["data"]["cause"] == "role_password_differs"
    assert f"the role {user!r} exists with another password" in failed["detail"].lower()
    assert "--create-db --reset-db-password" in failed["fix"]
    assert not (project / ".env").exists()
    assert pg.execute("select 1 from pg_database where datname = %s", (db,)) == []
    assert_secret_free(run, "its-own-pw-1", "not-its-pw-2", pg.password)
    fixed = init(
        cli,
        pg,
        "--create-db",
        "--reset-db-password",
        password="not-its-pw-2",
        user=user,
        db=db,
        extra_env=admin,
    )
    assert fixed.code == 0, fixed.err
    assert db_check(fixed)["status"] == "ok"


def test_dry_run_create_db_shows_the_provisioning_step_and_changes_nothing(
    cli: Cli, pg: Any, project: Path
) -> None:
    user, db = unique("u"), unique("d")
    admin = {"POSTGRES_ADMIN_PASSWORD": pg.password}
    run = init(
        cli, pg, "--dry-run", "--create-db", password="dry-pw-1", user=user, db=db, extra_env=admin
    )
    assert run.code == 0, run.err
    valid_envelope(run)
    [check] = provision_checks(run)
    assert check["status"] == "ok" and "admin login as 'postgres' checked" in check["detail"]
    assert f"role {user!r}: to create" in check["detail"]
    assert f"database {db!r}: to create" in check["detail"]
    planned = [a for a in run.json()["result"]["actions"] if a["kind"] == "provision"]
    assert [a["state"] for a in planned] == ["planned"]
    assert pg.execute("select 1 from pg_roles where rolname = %s", (user,)) == []
    assert not (project / ".env").exists()
    assert_secret_free(run, "dry-pw-1", pg.password)

    create_role(pg, user, "dry-pw-1")
    pg.execute(f'create database "{db}" owner "{user}"')
    there = init(
        cli, pg, "--dry-run", "--create-db", password="dry-pw-1", user=user, db=db, extra_env=admin
    )
    assert there.code == 0, there.err
    [check] = provision_checks(there)
    assert f"role {user!r}: already there" in check["detail"]
    assert f"database {db!r}: already there" in check["detail"]
    assert not [a for a in there.json()["result"]["actions"] if a["kind"] == "provision"]
    reset = init(
        cli,
        pg,
        "--dry-run",
        "--create-db",
        "--reset-db-password",
        password="dry-pw-2",
        user=user,
        db=db,
        extra_env=admin,
    )
    assert reset.code == 0, reset.err
    assert "password to be set to POSTGRES_PASSWORD" in provision_checks(reset)[0]["detail"]
    assert pg.execute("select 1 from pg_roles where rolname = %s", (user,)) == [(1,)]


def test_dry_run_create_db_fails_like_the_real_run_when_the_admin_cannot_log_in(
    cli: Cli, pg: Any, project: Path
) -> None:
    user, db = unique("u"), unique("d")
    bad = {"POSTGRES_ADMIN_PASSWORD": "not-the-admin-pw"}
    dry = init(cli, pg, "--dry-run", "--create-db", password="p-1", user=user, db=db, extra_env=bad)
    real = init(cli, pg, "--create-db", password="p-1", user=user, db=db, extra_env=bad)
    assert dry.code == real.code == 1
    valid_envelope(dry)
    [dry_check], [real_check] = provision_checks(dry), provision_checks(real)
    assert dry_check["status"] == "fail" and dry_check["data"]["cause"] == "admin_auth_failed"
    for key in ("detail", "fix", "data"):
        assert dry_check[key] == real_check[key]
    assert not (project / ".env").exists()
    assert_secret_free(dry, "not-the-admin-pw", "p-1")


def test_an_admin_url_with_a_bare_at_in_its_password_is_refused_unsent(cli: Cli) -> None:
    # libpq would split at the first `@` and look the rest of the password up as a host name.
    url = "postgresql://postgres:first-half@second-half@127.0.0.1:1/postgres"
    run = cli("--non-interactive", "--create-db", env={"POSTGRES_ADMIN_URL": url})
    assert run.code == 2
    assert "%40" in run.err
    assert "first-half" not in run.err + run.out and "second-half" not in run.err + run.out
    assert not (cli.root / ".env").exists()
