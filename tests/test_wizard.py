"""The wizard in a real pseudo-terminal (pexpect), the way a new developer meets it."""

from __future__ import annotations

import io
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest
from dotenv import dotenv_values

from tests.conftest import REPO, SCRUBBED

UP, DOWN, ENTER, CTRL_C, CTRL_U = "\x1b[A", "\x1b[B", "\r", "\x03", "\x15"


def spawn(project: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    child_env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    child_env.update(
        {
            "PROMPT_TOOLKIT_NO_CPR": "1",
            "TERM": "xterm",
            "COLUMNS": "120",
            "LINES": "40",
            **(env or {}),
        }
    )
    return pexpect.spawn(
        sys.executable,
        [str(REPO / "bootstrap.py"), "--no-venv", "--root", str(project), *args],
        env=child_env,
        cwd=str(project),
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 120),
    )


def no_kalshi(child: Any) -> None:
    """The Kalshi credentials step, after the database step: Enter keeps its default, neither."""
    child.expect("Add Kalshi API credentials now")
    child.send(ENTER)


def answer_text(child: Any, prompt: str, value: str) -> None:
    child.expect(prompt)
    child.send(CTRL_U + value + ENTER)


@pytest.mark.db
def test_whole_wizard_against_the_real_server(project: Path, pg: Any) -> None:
    password = "Typed pw 'with' #stuff"
    child = spawn(project, "--create-db", env={"POSTGRES_ADMIN_URL": pg.admin_url})
    child.expect("Host address")
    child.send(UP)  # the list wraps: one up from the top is "other..."
    child.send(ENTER)
    answer_text(child, "Host \\(IP address or name\\)", "127.0.0.1")
    child.expect("Enable authentication")
    child.send("n" + ENTER)
    answer_text(child, "PostgreSQL host", "127.0.0.1")
    answer_text(child, "PostgreSQL port", str(pg.port))
    answer_text(child, "Database name", "wizard_db")
    answer_text(child, "Database user", "wizard_user")
    child.expect("Database password")
    child.send(DOWN + ENTER)  # "Type a password"
    child.expect("Password \\(hidden\\)")
    child.send(password + ENTER)
    child.expect("Repeat it")
    child.send("a typo" + ENTER)  # a mismatch asks again
    child.expect("differ")
    child.expect("Password \\(hidden\\)")
    child.send(password + ENTER)
    child.expect("Repeat it")
    child.send(password + ENTER)
    no_kalshi(child)
    # The summary shows the sslmode the database steps will use, and where it came from.
    child.expect("POSTGRES_SSLMODE")
    child.expect("prefer")
    child.expect("default")
    child.expect("Write these settings")
    child.send("y" + ENTER)
    child.expect(pexpect.EOF, timeout=60)
    child.close()
    transcript = child.before or ""
    assert child.exitstatus == 0, transcript
    assert password not in transcript
    env = dotenv_values(project / ".env")
    assert "POSTGRES_SSLMODE" not in env
    assert env["TRADING_SYSTEM_HOST"] == "127.0.0.1" and env["AUTH_ENABLED"] == "false"
    assert env["POSTGRES_DB"] == "wizard_db" and env["POSTGRES_USER"] == "wizard_user"
    assert env["POSTGRES_PORT"] == str(pg.port) and env["POSTGRES_PASSWORD"] == password
    assert (project / "backend/core/config/MASTER_PORT_MANIFEST.json").is_file()
    assert (project / "backend/data/users/user_0001/credentials").is_dir()
    assert pg.execute("select 1 from pg_database where datname = 'wizard_db'") == [(1,)]


def test_ctrl_c_mid_wizard_exits_130_and_writes_nothing(project: Path) -> None:
    child = spawn(project, "--skip-db-check")
    child.expect("Host address")
    child.send(UP + ENTER)
    child.expect("Host \\(IP address or name\\)")
    child.send(CTRL_C)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130, child.before
    assert list(project.iterdir()) == []


def test_declining_the_summary_writes_nothing(project: Path) -> None:
    child = spawn(
        project,
        "--skip-db-check",
        "--host",
        "127.0.0.1",
        "--no-auth-enabled",
        "--postgres-host",
        "localhost",
        "--postgres-port",
        "5432",
        "--postgres-db",
        "a_db",
        "--postgres-user",
        "a_user",
    )
    child.expect("Database password")
    child.send(ENTER)  # generate
    no_kalshi(child)
    child.expect("Write these settings")
    child.send("n" + ENTER)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert "nothing was written" in (child.before or "")
    assert list(project.iterdir()) == []


@pytest.mark.db
def test_admin_password_is_asked_masked_when_the_server_needs_it(project: Path, pg: Any) -> None:
    admin_url = f"postgresql://{pg.superuser}@{pg.host}:{pg.port}/postgres"  # no password in it
    child = spawn(
        project,
        "--create-db",
        "--admin-url",
        admin_url,
        "--host",
        "127.0.0.1",
        "--no-auth-enabled",
        "--postgres-host",
        "127.0.0.1",
        "--postgres-port",
        str(pg.port),
        "--postgres-db",
        "asked_db",
        "--postgres-user",
        "asked_user",
    )
    child.expect("Database password")
    child.send(ENTER)  # generate
    no_kalshi(child)
    child.expect("Write these settings")
    child.send("y" + ENTER)
    child.expect("PostgreSQL admin password")
    child.send(pg.password + ENTER)
    child.expect(pexpect.EOF, timeout=60)
    child.close()
    transcript = child.before or ""
    assert child.exitstatus == 0, transcript
    assert pg.password not in transcript
    assert pg.execute("select 1 from pg_roles where rolname = 'asked_user'") == [(1,)]


def test_a_word_typed_at_a_yes_no_question_does_not_leak_into_the_next(
    project: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("leak-test-pw\n")
    child = spawn(
        project,
        "--skip-db-check",
        "--host",
        "127.0.0.1",
        "--postgres-port",
        "5432",
        "--postgres-db",
        "a_db",
        "--postgres-user",
        "a_user",
        "--postgres-password-file",
        str(secret),
    )
    child.expect("Enable authentication")
    child.send("yes" + ENTER)
    child.expect("PostgreSQL host")
    child.send(ENTER)  # accept the default as shown
    no_kalshi(child)
    child.expect("Write these settings")
    child.send("y" + ENTER)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    env = dotenv_values(project / ".env")
    assert env["AUTH_ENABLED"] == "true" and env["POSTGRES_HOST"] == "localhost"


@pytest.mark.db
def test_the_wizard_offers_to_create_the_database(project: Path, pg: Any) -> None:
    child = spawn(
        project,
        "--host",
        "127.0.0.1",
        "--no-auth-enabled",
        "--postgres-host",
        "127.0.0.1",
        "--postgres-port",
        str(pg.port),
        "--postgres-db",
        "offered_db",
        "--postgres-user",
        "offered_user",
        env={"POSTGRES_ADMIN_URL": pg.admin_url},
    )
    child.expect("recio-setup will write .env")
    child.expect("Database password")
    child.send(ENTER)  # generate
    child.expect("Create the role and database now")
    child.send("y" + ENTER)  # the admin URL names the admin: no admin question
    no_kalshi(child)
    child.expect("role 'offered_user' +│ to create")
    child.expect("Write these settings")
    child.send("y" + ENTER)
    child.expect(pexpect.EOF, timeout=60)
    child.close()
    assert child.exitstatus == 0, child.before
    assert pg.execute("select 1 from pg_database where datname = 'offered_db'") == [(1,)]


def rerun_all_defaults(project: Path) -> Any:
    """--reconfigure on a project set up before: Enter at every question keeps every value."""
    child = spawn(project, "--skip-db-check", "--reconfigure")
    child.expect("Host address")
    child.send(ENTER)
    child.expect("Enable authentication")
    child.send(ENTER)
    for prompt in ("PostgreSQL host", "PostgreSQL port", "Database name", "Database user"):
        child.expect(prompt)
        child.send(ENTER)
    child.expect("Database password")
    child.send(ENTER)  # keep the existing one
    no_kalshi(child)
    return child


def test_a_rerun_that_changes_nothing_asks_no_confirmation(project: Path, cli: Any) -> None:
    first = cli("--non-interactive", "--skip-db-check", "--host", "127.0.0.1")
    assert first.code == 0, first.all
    before = (project / ".env").read_bytes(), (project / ".env").stat().st_mtime_ns
    child = rerun_all_defaults(project)
    index = child.expect(["Nothing to write", "Write these settings", "Apply"])
    child.expect(pexpect.EOF)
    child.close()
    assert index == 0, child.before
    assert child.exitstatus == 0
    assert ((project / ".env").read_bytes(), (project / ".env").stat().st_mtime_ns) == before


def test_a_rerun_with_a_tree_to_repair_says_the_settings_are_unchanged(
    project: Path, cli: Any
) -> None:
    first = cli("--non-interactive", "--skip-db-check", "--host", "127.0.0.1")
    assert first.code == 0, first.all
    (project / "backend" / "data" / "historical_data").rmdir()
    child = rerun_all_defaults(project)
    child.expect(r"The settings are unchanged\. Apply 1 change\(s\) to the tree\?")
    child.send("n" + ENTER)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert not (project / "backend" / "data" / "historical_data").exists()


def test_a_rerun_on_a_finished_setup_asks_nothing(project: Path, cli: Any) -> None:
    first = cli("--non-interactive", "--skip-db-check", "--host", "127.0.0.1")
    assert first.code == 0, first.all
    before = (project / ".env").read_bytes()
    child = spawn(project, "--skip-db-check")
    child.expect("Nothing to ask: every value is given")
    child.expect("--reconfigure")
    child.expect("TRADING_SYSTEM_HOST")  # the values table, since no summary showed them
    child.expect(pexpect.EOF)
    child.close()
    transcript = child.before or ""
    assert child.exitstatus == 0, transcript
    assert "Host address" not in transcript and "Write these settings" not in transcript
    assert (project / ".env").read_bytes() == before


def test_a_bad_value_in_env_is_said_and_only_it_is_asked_again(project: Path, cli: Any) -> None:
    first = cli("--non-interactive", "--skip-db-check", "--host", "127.0.0.1")
    assert first.code == 0, first.all
    env_file = project / ".env"
    env_file.write_text(env_file.read_text().replace("POSTGRES_PORT=5432", "POSTGRES_PORT=abc"))
    child = spawn(project, "--skip-db-check")
    child.expect("POSTGRES_PORT in .env")
    child.expect("asking for it again")
    answer_text(child, "PostgreSQL port", "5433")
    child.expect("Write these settings")
    child.send("y" + ENTER)
    child.expect(pexpect.EOF)
    child.close()
    transcript = child.before or ""
    assert child.exitstatus == 0, transcript
    assert "Host address" not in transcript and "Database name" not in transcript
    assert dotenv_values(env_file)["POSTGRES_PORT"] == "5433"


def test_reconfigure_without_a_terminal_is_bad_input(project: Path, cli: Any) -> None:
    run = cli("--reconfigure", "--skip-db-check")
    assert run.code == 2 and "no terminal to ask on" in run.err
    assert not (project / ".env").exists()


@pytest.mark.db
def test_ctrl_c_at_the_admin_password_writes_nothing(project: Path, pg: Any) -> None:
    """The role and database are made before .env is written: a stop there leaves it all."""
    admin_url = f"postgresql://{pg.superuser}@{pg.host}:{pg.port}/postgres"  # no password in it
    child = spawn(
        project,
        "--create-db",
        "--admin-url",
        admin_url,
        "--host",
        "127.0.0.1",
        "--postgres-port",
        str(pg.port),
    )
    child.expect("Enable authentication")
    child.send(ENTER)
    for prompt in ("PostgreSQL host", "Database name", "Database user"):
        child.expect(prompt)
        child.send(ENTER)
    child.expect("Database password")
    child.send(ENTER)  # generate
    no_kalshi(child)
    child.expect("Write these settings")
    child.send("y" + ENTER)
    child.expect("PostgreSQL admin password")
    child.send(CTRL_C)
    child.expect("interrupted")
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.exitstatus == 130, child.before
    assert not (project / ".env").exists() and not (project / "backend").exists()


def test_ctrl_c_at_the_connection_test_says_what_was_written(project: Path) -> None:
    """A server that accepts and never answers: the test waits, and Ctrl-C stops it after .env
    and the tree are written, which the message must say."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = str(silent.getsockname()[1])
        child = spawn(
            project,
            "--non-interactive",
            "--host",
            "127.0.0.1",
            "--postgres-host",
            "127.0.0.1",
            "--postgres-port",
            port,
            "--db-timeout",
            "30",
            env={"POSTGRES_PASSWORD": "x-pw-1"},
        )
        child.expect("testing PostgreSQL")
        child.send(CTRL_C)
        child.expect("interrupted at the database step")
        child.expect("were written")
        child.expect(pexpect.EOF, timeout=30)
        child.close()
    assert child.exitstatus == 130, child.before
    assert (project / ".env").is_file()


def test_the_wizard_adds_kalshi_credentials_checked_before_the_summary(
    project: Path, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    good = tmp_path / "kalshi-demo.pem"
    good.write_bytes(pem)
    public = tmp_path / "public.pem"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    secret = tmp_path / "pw"
    secret.write_text("wizard-pw-1\n")
    child = spawn(
        project, "--skip-db-check", "--host", "127.0.0.1", "--no-auth-enabled",
        "--postgres-host", "localhost", "--postgres-port", "5432", "--postgres-db", "a_db",
        "--postgres-user", "a_user", "--postgres-password-file", str(secret),
    )  # fmt: skip
    child.logfile_read = seen = io.StringIO()  # everything the terminal showed
    child.expect("Add Kalshi API credentials now")
    child.send(UP + UP + ENTER)  # from "neither" up to "demo"
    answer_text(child, "Kalshi demo API key ID", "not-a-uuid")
    child.expect("not a Kalshi API key ID")
    child.send(CTRL_U + "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d" + ENTER)
    answer_text(child, "Path of the private key file", str(public))
    child.expect("holds a public key")
    answer_text(child, "Path of the private key file", str(good))
    child.expect("Kalshi demo credentials")
    child.expect("Write these settings")
    child.send("y" + ENTER)
    child.expect(pexpect.EOF)
    child.close()
    transcript = child.before or ""
    assert child.exitstatus == 0, transcript
    folder = project / "backend/data/users/user_0001/credentials/kalshi-credentials/demo"
    assert (folder / "kalshi.pem").read_bytes() == pem
    assert (folder / "kalshi.pem").stat().st_mode & 0o777 == 0o600
    assert (folder / "kalshi-auth.txt").read_text() == "key:0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d\n"
    body = [line for line in pem.decode().splitlines() if not line.startswith("-----")]
    assert len(body) > 20
    assert not any(line in seen.getvalue() for line in body)
    assert "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d" in seen.getvalue()


def test_replacing_kalshi_credentials_asks_on_a_terminal(project: Path, cli: Any) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = project.parent / "key.pem"
    key.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    args = ("credentials", "add", "--env", "demo", "--private-key-file", str(key), "--key-id")
    assert cli(*args, "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d").code == 0
    pem = project / "backend/data/users/user_0001/credentials/kalshi-credentials/demo/kalshi.pem"
    before = pem.stat().st_ino
    child = spawn(project, *args, "9f8e7d6c-5b4a-3210-fedc-ba9876543210")
    child.expect("Replace the Kalshi demo credentials")
    child.send("n" + ENTER)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1 and "nothing was changed" in (child.before or "")
    assert pem.stat().st_ino == before
    child = spawn(project, *args, "9f8e7d6c-5b4a-3210-fedc-ba9876543210")
    child.expect("Replace the Kalshi demo credentials")
    child.send("y" + ENTER)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    auth = pem.with_name("kalshi-auth.txt").read_text()
    assert auth == "key:9f8e7d6c-5b4a-3210-fedc-ba9876543210\n"


def test_a_validation_message_fits_a_narrow_terminal(project: Path) -> None:
    """prompt_toolkit shows it on one line, cut at the edge: the wizard's version is short."""
    child = spawn(project, "--skip-db-check", "--host", "127.0.0.1", env={"COLUMNS": "60"})
    child.setwinsize(30, 60)
    child.expect("Enable authentication")
    child.send(ENTER)
    for prompt in ("PostgreSQL host", "PostgreSQL port"):
        child.expect(prompt)
        child.send(ENTER)
    child.expect("Database name")
    child.send(CTRL_U + "bad name" + ENTER)
    child.expect("Expected letters, digits, _; no digit first; max 63 bytes")
    child.send(CTRL_C)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert not (project / ".env").exists()
