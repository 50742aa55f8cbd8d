"""`init` without a terminal, as CI runs it: flags, environment, precedence, bad input, re-runs."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from dotenv import dotenv_values

from recio_setup.env.settings import ENV_ORDER
from tests.conftest import REPO, Cli, tree_snapshot

BASE = ("--non-interactive", "--skip-db-check")


def env_of(project: Path) -> dict[str, str | None]:
    return dict(dotenv_values(project / ".env"))


def values_by_name(run_json: dict[str, object]) -> dict[str, dict[str, object]]:
    result = run_json["result"]
    assert isinstance(result, dict)
    return {v["name"]: v for v in result["values"]}


def test_flags_write_env_with_mode_0600_and_sources(cli: Cli, project: Path) -> None:
    run = cli(
        *BASE,
        "--json",
        "--host",
        "10.1.2.3",
        "--auth-enabled",
        "--postgres-port",
        "6543",
        "--postgres-db",
        "trading",
        "--postgres-user",
        "trader",
        env={"POSTGRES_PASSWORD": "s3cret-Pass"},
    )
    assert run.code == 0, run.err
    env = env_of(project)
    assert env["TRADING_SYSTEM_HOST"] == "10.1.2.3"
    assert env["AUTH_ENABLED"] == "true"
    assert env["POSTGRES_PORT"] == "6543" and env["POSTGRES_DB"] == "trading"
    assert env["POSTGRES_USER"] == "trader" and env["POSTGRES_PASSWORD"] == "s3cret-Pass"
    assert env["POSTGRES_HOST"] == "localhost" and env["DATABASE_TYPE"] == "postgresql"
    assert stat.S_IMODE((project / ".env").stat().st_mode) == 0o600
    values = values_by_name(run.json())
    assert values["TRADING_SYSTEM_HOST"]["source"] == "flag --host"
    assert values["POSTGRES_PASSWORD"]["source"] == "environment POSTGRES_PASSWORD"
    assert values["POSTGRES_HOST"]["source"] == "default"
    assert "s3cret-Pass" not in run.all


def test_the_json_result_holds_what_a_script_reads_and_no_internal_flag(cli: Cli) -> None:
    result = cli(*BASE, "--json", env={"POSTGRES_PASSWORD": "s3cret-Pass"}).json()["result"]
    fields = ["summary", "dry_run", "values", "values_by_name", "actions", "checks", "notes"]
    assert list(result) == [*fields, "env_diff", "data"]
    assert result["values_by_name"]["POSTGRES_PASSWORD"]["value"] == "********"
    assert result["data"] == {} and result["env_diff"] is None
    dry = cli(*BASE, "--json", "--dry-run", "--postgres-port", "6543").json()["result"]
    assert "+POSTGRES_PORT=6543" in dry["env_diff"]


def test_keys_are_written_in_the_order_of_env_example(cli: Cli, project: Path) -> None:
    assert cli(*BASE).code == 0
    written = list(env_of(project))
    example = list(dotenv_values(REPO / ".env.example"))
    assert written == example == list(ENV_ORDER)


@pytest.mark.parametrize(
    ("flag", "env", "dotenv", "expected", "source"),
    [
        ("8000", "6000", "7000", "8000", "flag --postgres-port"),
        (None, "6000", "7000", "6000", "environment POSTGRES_PORT"),
        (None, None, "7000", "7000", ".env"),
        (None, None, None, "5432", "default"),
    ],
)
def test_precedence_flag_env_dotenv_default(
    cli: Cli,
    project: Path,
    flag: str | None,
    env: str | None,
    dotenv: str | None,
    expected: str,
    source: str,
) -> None:
    if dotenv:
        (project / ".env").write_text(f"POSTGRES_PORT={dotenv}\n")
    args = [*BASE, "--json"] + (["--postgres-port", flag] if flag else [])
    run = cli(*args, env={"POSTGRES_PORT": env} if env else None)
    assert run.code == 0, run.err
    assert env_of(project)["POSTGRES_PORT"] == expected
    assert values_by_name(run.json())["POSTGRES_PORT"]["source"] == source


def test_database_url_from_environment_is_a_source(cli: Cli, project: Path) -> None:
    url = "postgresql://url_user:p%40ss%3Aw0rd@db.example:6000/url_db"
    run = cli(*BASE, "--json", env={"DATABASE_URL": url, "POSTGRES_DB": "specific_db"})
    assert run.code == 0, run.err
    env = env_of(project)
    assert env["POSTGRES_USER"] == "url_user" and env["POSTGRES_PASSWORD"] == "p@ss:w0rd"
    assert env["POSTGRES_HOST"] == "db.example" and env["POSTGRES_PORT"] == "6000"
    assert env["POSTGRES_DB"] == "specific_db"  # the specific variable beats the URL
    assert values_by_name(run.json())["POSTGRES_USER"]["source"] == "environment DATABASE_URL"
    assert "p@ss:w0rd" not in run.all


def test_database_url_flag_without_password_is_a_source(cli: Cli, project: Path) -> None:
    run = cli(*BASE, "--database-url", "postgresql://flag_user@127.0.0.1:5555/flag_db")
    assert run.code == 0, run.err
    env = env_of(project)
    assert (env["POSTGRES_USER"], env["POSTGRES_PORT"], env["POSTGRES_DB"]) == (
        "flag_user",
        "5555",
        "flag_db",
    )


def test_password_in_a_flag_url_is_refused(cli: Cli, project: Path) -> None:
    run = cli(*BASE, "--database-url", "postgresql://u:topsecret@localhost/db")
    assert run.code == 2
    assert "DATABASE_URL" in run.err and "topsecret" not in run.all
    assert list(project.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--postgres-port", "abc"], {}, "--postgres-port"),
        (["--postgres-port", "0"], {}, "--postgres-port"),
        (["--postgres-port", "70000"], {}, "--postgres-port"),
        (["--host", "a b"], {}, "--host"),
        (["--postgres-user", "rec;drop"], {}, "--postgres-user"),
        (["--postgres-db", "x" * 64], {}, "--postgres-db"),
        ([], {"AUTH_ENABLED": "maybe"}, "AUTH_ENABLED"),
        ([], {"DATABASE_TYPE": "mysql"}, "DATABASE_TYPE"),
        ([], {"POSTGRES_PORT": "-1"}, "POSTGRES_PORT"),
        ([], {"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL"),
        (["--db-timeout", "0"], {}, "--db-timeout"),
        (["--postgres-password-file", "/nonexistent/pw"], {}, "--postgres-password-file"),
    ],
)
def test_bad_values_exit_2_naming_the_source_and_write_nothing(
    cli: Cli, project: Path, args: list[str], env: dict[str, str], named: str
) -> None:
    run = cli(*BASE, *args, env=env)
    assert run.code == 2, run.all
    assert named in run.err and "hint:" in run.err
    assert "Traceback" not in run.all
    assert list(project.iterdir()) == []


def test_env_value_with_dollar_brace_is_refused_before_writing(cli: Cli, project: Path) -> None:
    run = cli(*BASE, env={"POSTGRES_PASSWORD": "abc${HOME}"})
    assert run.code == 2 and "${" in run.err
    assert list(project.iterdir()) == []


def test_no_password_uses_documented_default_with_warning(cli: Cli, project: Path) -> None:
    run = cli(*BASE)
    assert run.code == 0, run.err
    assert env_of(project)["POSTGRES_PASSWORD"] == "rec_io_password"
    assert "warning" in run.err and "POSTGRES_PASSWORD" in run.err


def test_password_file_and_stdin(cli: Cli, project: Path, tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text("from file 'quoted' #1\nsecond line ignored\n")
    assert cli(*BASE, "--postgres-password-file", str(secret_file)).code == 0
    assert env_of(project)["POSTGRES_PASSWORD"] == "from file 'quoted' #1"
    run = cli(*BASE, "--postgres-password-file", "-", input="from-stdin\n")
    assert run.code == 0, run.err
    assert env_of(project)["POSTGRES_PASSWORD"] == "from-stdin"
    assert "from-stdin" not in run.all


def test_existing_password_is_kept(cli: Cli, project: Path) -> None:
    (project / ".env").write_text("POSTGRES_PASSWORD=kept-one\n")
    assert cli(*BASE).code == 0
    assert env_of(project)["POSTGRES_PASSWORD"] == "kept-one"


def test_rerun_changes_only_the_lines_it_must(cli: Cli, project: Path) -> None:
    original = (
        "# my notes\nFOREIGN_KEY='keep me'  # trailing comment\n\n"
        "POSTGRES_PORT=5432\nexport OTHER=1\nPOSTGRES_PASSWORD=pw-here\n"
    )
    (project / ".env").write_text(original)
    run = cli(*BASE, "--postgres-port", "6000", "--host", "127.0.0.1")
    assert run.code == 0, run.err
    text = (project / ".env").read_text()
    assert text.startswith(original.replace("POSTGRES_PORT=5432", "POSTGRES_PORT=6000"))
    added = text[len(original) :].splitlines()
    assert [line.split("=")[0] for line in added] == [
        "TRADING_SYSTEM_HOST",
        "AUTH_ENABLED",
        "DATABASE_TYPE",
        "POSTGRES_HOST",
        "POSTGRES_DB",
        "POSTGRES_USER",
    ]
    archives = list((project / "backend/data/archives").glob("*-init/files/.env"))
    assert len(archives) == 1 and archives[0].read_text() == original
    assert stat.S_IMODE(archives[0].stat().st_mode) == 0o600


def test_second_run_plans_nothing(cli: Cli, project: Path) -> None:
    assert cli(*BASE).code == 0
    before = tree_snapshot(project)
    run = cli(*BASE, "--json")
    assert run.code == 0
    assert [a for a in run.json()["result"]["actions"] if a["state"] == "done"] == []
    assert tree_snapshot(project) == before


def test_dry_run_writes_nothing_and_masks_the_diff(cli: Cli, project: Path) -> None:
    (project / ".env").write_text("POSTGRES_PASSWORD=old-secret-1\n")
    before = tree_snapshot(project)
    run = cli(*BASE, "--dry-run", env={"POSTGRES_PASSWORD": "new-secret-2"})
    assert run.code == 0, run.err
    assert tree_snapshot(project) == before
    assert "+TRADING_SYSTEM_HOST=" in run.out and "(changed)" in run.out
    assert "secret-1" not in run.all and "secret-2" not in run.all
    assert "create folder" in run.out


def test_no_terminal_means_no_prompt(cli: Cli, project: Path) -> None:
    run = cli("--skip-db-check", input="")  # no --non-interactive, but stdin is not a terminal
    assert run.code == 0, run.err
    assert (project / ".env").exists()


def test_symlinked_env_inside_project_is_written_through(cli: Cli, project: Path) -> None:
    (project / "config").mkdir()
    (project / "config" / "real.env").write_text("KEEP=1\n")
    (project / ".env").symlink_to("config/real.env")
    assert cli(*BASE).code == 0
    assert (project / ".env").is_symlink()
    assert dotenv_values(project / "config/real.env")["KEEP"] == "1"
    assert dotenv_values(project / "config/real.env")["DATABASE_TYPE"] == "postgresql"


def test_symlinked_env_outside_project_is_refused(cli: Cli, project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.env"
    outside.write_text("MINE=1\n")
    outside.chmod(0o644)
    (project / ".env").symlink_to(outside)
    run = cli(*BASE)
    assert run.code == 1
    assert "outside the project" in run.err
    assert outside.read_text() == "MINE=1\n" and stat.S_IMODE(outside.stat().st_mode) == 0o644
    assert sorted(os.listdir(project)) == [".env"]


def test_corrupt_env_with_nul_byte_is_bad_input(cli: Cli, project: Path) -> None:
    (project / ".env").write_bytes(b"A=1\n\x00\x01garbage\n")
    run = cli(*BASE)
    assert run.code == 2 and "NUL" in run.err and "reset" in run.err
    assert (project / ".env").read_bytes() == b"A=1\n\x00\x01garbage\n"


def test_env_example_lists_every_variable_with_a_comment() -> None:
    text = (REPO / ".env.example").read_text()
    keys = list(dotenv_values(stream=io.StringIO(text)))
    assert keys == list(ENV_ORDER)
    lines = text.splitlines()
    for key in keys:
        index = next(i for i, line in enumerate(lines) if line.startswith(f"{key}="))
        assert lines[index - 1].startswith("#"), f"{key} has no comment above it"


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--database-url", "postgresql://u:pa/ssSECRET1@h/db"),
        ("--database-url", "host=h password=KVSECRET4"),
        ("--admin-url", "host=127.0.0.1 user=postgres password=KVSECRET1"),
        ("--admin-url", "postgresql://postgres:p@ssSECRET3@127.0.0.1/postgres"),
    ],
)
def test_a_password_in_any_flag_url_form_is_refused_unshown(
    cli: Cli, project: Path, flag: str, value: str
) -> None:
    run = cli(*BASE, "--create-db", flag, value)
    assert run.code == 2
    assert "SECRET" not in run.all
    assert list(project.iterdir()) == []


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pa/ssSECRET1@h/db",
        "postgresql://u:p@ssSECRET3@h:5432/db?foo=1",
        "host=h password=KVSECRET5 dbname=x",
    ],
)
def test_a_bad_database_url_never_shows_its_password(cli: Cli, project: Path, url: str) -> None:
    run = cli(*BASE, "--json", env={"DATABASE_URL": url})
    assert run.code == 2
    assert "SECRET" not in run.all
    assert list(project.iterdir()) == []


def test_admin_inputs_are_checked_before_anything_is_written(cli: Cli, project: Path) -> None:
    missing = cli(*BASE, "--create-db", "--admin-password-file", "/nonexistent/pw")
    assert missing.code == 2 and "--admin-password-file" in missing.err
    bad_url = cli(
        *BASE,
        "--create-db",
        env={"POSTGRES_ADMIN_URL": "postgresql://postgres:AD%zzMIN@127.0.0.1:1/x"},
    )
    assert bad_url.code == 2 and "POSTGRES_ADMIN_URL" in bad_url.err
    assert "AD%zzMIN" not in bad_url.all
    assert list(project.iterdir()) == []


def test_env_linked_into_a_managed_file_is_refused(cli: Cli, project: Path) -> None:
    assert cli(*BASE).code == 0
    token = project / "backend/data/users/user_0001/auth_tokens.json"
    token.write_text('{"session": "TOKEN"}')
    (project / ".env").unlink()
    (project / ".env").symlink_to("backend/data/users/user_0001/auth_tokens.json")
    run = cli(*BASE)
    assert run.code == 1 and "manages" in run.err
    assert token.read_text() == '{"session": "TOKEN"}'


def sslmode_of(run_json: dict[str, object]) -> tuple[object, object]:
    value = values_by_name(run_json)["POSTGRES_SSLMODE"]
    return value["value"], value["source"]


def test_sslmode_is_reported_with_its_source_but_never_written(cli: Cli, project: Path) -> None:
    first = cli(*BASE, "--json")
    assert first.code == 0, first.err
    assert sslmode_of(first.json()) == ("prefer", "default")
    url = "postgresql://u@db.example/d?sslmode=verify-full"
    second = cli(*BASE, "--json", env={"DATABASE_URL": url})
    assert second.code == 0, second.err
    assert sslmode_of(second.json()) == ("verify-full", "environment DATABASE_URL")
    assert "POSTGRES_SSLMODE" in second.out  # the text summary lists it too
    assert "SSLMODE" not in (project / ".env").read_text()
    text = cli(*BASE, env={"DATABASE_URL": url})
    assert text.code == 0 and "POSTGRES_SSLMODE" in text.out and "verify-full" in text.out


SECRET_URL = "postgresql://u:SECRET1@h/d?"


@pytest.mark.parametrize(
    ("args", "env", "named", "shown"),
    [
        ([], {"DATABASE_URL": SECRET_URL + "sslmode=sometimes"}, "DATABASE_URL", "'sometimes'"),
        ([], {"DATABASE_URL": SECRET_URL + "sslmode=Require"}, "DATABASE_URL", "'Require'"),
        ([], {"DATABASE_URL": SECRET_URL + "sslmode="}, "DATABASE_URL", "''"),
        (
            [],
            {"DATABASE_URL": SECRET_URL + "sslmode=require&sslmode=disable"},
            "DATABASE_URL",
            "more than once",
        ),
        (["--database-url", "postgresql://u@h/d?sslmode=on"], {}, "--database-url", "'on'"),
        ([], {"POSTGRES_SSLMODE": "on"}, "POSTGRES_SSLMODE in the environment", "'on'"),
    ],
)
def test_a_bad_sslmode_is_a_usage_error_and_nothing_is_written(
    cli: Cli, project: Path, args: list[str], env: dict[str, str], named: str, shown: str
) -> None:
    run = cli(*BASE, *args, env=env)
    assert run.code == 2, run.all
    assert named in run.err and shown in run.err
    assert "hint:" in run.err
    assert "verify-full" in run.err or "single ?sslmode" in run.err
    assert "SECRET1" not in run.all and "Traceback" not in run.all
    assert list(project.iterdir()) == []
    if not args:
        # check's connection test takes the same environment: the same refusal.
        check = cli("check", env=env)
        assert check.code == 2 and named in check.err and "SECRET1" not in check.all


def test_a_password_file_without_a_line_end_is_read_only_to_its_limit(
    cli: Cli, project: Path
) -> None:
    run = cli(*BASE, "--postgres-password-file", "/dev/zero", timeout=20)
    assert run.code == 2, run.all
    assert "longer than 4096 characters" in run.err and "Traceback" not in run.all
    assert list(project.iterdir()) == []
