"""get_db_settings / get_database_url: what services connect with, environment over .env."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

import recio_setup
from recio_setup.runtime.database import DatabaseSettingsError
from tests.conftest import Cli
from tests.pgserver import create_role

TRICKY = "p@ss:/?#w%rd"  # every character a URL treats specially


def setup(cli: Cli, *args: str, password: str = TRICKY) -> None:
    run = cli(
        "--non-interactive", "--skip-db-check", "--host", "127.0.0.1", *args,
        env={"POSTGRES_PASSWORD": password},
    )  # fmt: skip
    assert run.code == 0, run.all


def test_settings_come_from_env_and_the_url_round_trips(cli: Cli, project: Path) -> None:
    setup(cli)
    settings = recio_setup.get_db_settings(root=project)
    assert settings == {
        "host": "localhost",
        "port": 5432,
        "dbname": "rec_io_db",
        "user": "rec_io_user",
        "password": TRICKY,
        "sslmode": "prefer",
    }
    parsed = psycopg.conninfo.conninfo_to_dict(recio_setup.get_database_url(root=project))
    assert {k: str(v) for k, v in parsed.items()} == {k: str(v) for k, v in settings.items()}


def test_the_environment_wins_and_an_edit_is_seen_by_the_next_call(
    cli: Cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(cli)
    monkeypatch.setenv("POSTGRES_PORT", "6543")
    monkeypatch.setenv("POSTGRES_SSLMODE", "require")
    settings = recio_setup.get_db_settings(root=project)
    assert (settings["port"], settings["sslmode"]) == (6543, "require")
    monkeypatch.delenv("POSTGRES_PORT")
    env_file = project / ".env"
    env_file.write_text(env_file.read_text().replace("POSTGRES_DB=rec_io_db", "POSTGRES_DB=other"))
    settings = recio_setup.get_db_settings(root=project)
    assert (settings["port"], settings["dbname"]) == (5432, "other")


def test_missing_or_bad_settings_name_the_fix(
    cli: Cli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(cli)
    env_file = project / ".env"
    env_file.write_text(env_file.read_text().replace("POSTGRES_PORT=5432", "POSTGRES_PORT=abc"))
    with pytest.raises(DatabaseSettingsError, match="not a port number"):
        recio_setup.get_db_settings(root=project)
    env_file.write_text("TRADING_SYSTEM_HOST=127.0.0.1\n")
    monkeypatch.delenv("POSTGRES_PASSWORD", raising=False)
    with pytest.raises(DatabaseSettingsError, match="init` to write them"):
        recio_setup.get_database_url(root=project)


@pytest.mark.db
def test_a_service_connects_with_the_url(cli: Cli, project: Path, pg: Any) -> None:
    # No % here: the test helper sends the password inside SQL text.
    user, db, password = f"u_{uuid.uuid4().hex[:8]}", f"d_{uuid.uuid4().hex[:8]}", "p@ss:/?#word"
    create_role(pg, user, password, "CREATEDB")
    pg.execute(f'create database "{db}" owner "{user}"')
    setup(
        cli, "--postgres-host", "127.0.0.1", "--postgres-port", str(pg.port),
        "--postgres-user", user, "--postgres-db", db, password=password,
    )  # fmt: skip
    with psycopg.connect(recio_setup.get_database_url(root=project)) as conn:
        assert conn.execute("select current_user, current_database()").fetchone() == (user, db)
