"""The wizard's database step in a real pseudo-terminal, against the throwaway server: it tests
the values entered and offers only what can help (nothing, a local server, another test,
creating the role and database, or setting the role's password)."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest
from dotenv import dotenv_values

from tests.pgserver import create_role, free_port
from tests.test_wizard import DOWN, ENTER, answer_text, no_kalshi, spawn

pytestmark = pytest.mark.db
# Names of roles and databases are this module's own: the server lives for the whole session.


def flags(pg: Any, db: str, user: str, port: int | None = None) -> list[str]:
    """Every value but the password, so the wizard asks only for it and the database step."""
    return [
        "--host", "127.0.0.1", "--no-auth-enabled", "--postgres-host", "127.0.0.1",
        "--postgres-port", str(port or pg.port), "--postgres-db", db, "--postgres-user", user,
    ]  # fmt: skip


def finish(child: Any, *, write: bool = True) -> str:
    child.expect("Write these settings")
    child.send(("y" if write else "n") + ENTER)
    child.expect(pexpect.EOF, timeout=60)
    child.close()
    return str(child.before or "")


def test_the_create_database_path_works_by_answering_its_questions(project: Path, pg: Any) -> None:
    """No flag, no environment variable: a `postgres` superuser with a password on localhost."""
    child = spawn(project)
    child.logfile_read = seen = io.StringIO()
    child.expect("Host address")
    child.send(ENTER)
    child.expect("Enable authentication")
    child.send(ENTER)
    child.expect("PostgreSQL host")
    child.send(ENTER)  # localhost, the default
    answer_text(child, "PostgreSQL port", str(pg.port))
    answer_text(child, "Database name", "wizdb_created")
    answer_text(child, "Database user", "wizuser_created")
    child.expect("Database password")
    child.send(ENTER)  # generate
    child.expect("Authentication failed for user 'wizuser_created'")
    child.expect("Create the role and database now")
    child.send(ENTER)  # yes, the default
    child.expect("PostgreSQL admin user")
    child.send(ENTER)  # postgres, the default
    child.expect("PostgreSQL admin password")
    child.send("not-the-admin-pw" + ENTER)
    child.expect("Authentication failed for user 'postgres'")
    child.expect("What now")
    child.send(ENTER)  # type it again
    child.expect("PostgreSQL admin password")
    child.send(pg.password + ENTER)
    no_kalshi(child)
    child.expect("role 'wizuser_created' +│ to create")
    child.expect("database 'wizdb_created' +│ to create, owned by 'wizuser_created'")
    child.expect("PostgreSQL admin +│ 'postgres': login checked")
    transcript = finish(child)
    assert child.exitstatus == 0, transcript
    assert "Connected to 'wizdb_created'" in seen.getvalue()
    assert pg.password not in seen.getvalue() and "not-the-admin-pw" not in seen.getvalue()
    env = dotenv_values(project / ".env")
    assert pg.password not in (project / ".env").read_text()
    owner = "select pg_get_userbyid(datdba) from pg_database where datname = 'wizdb_created'"
    assert pg.execute(owner) == [("wizuser_created",)]
    assert env["POSTGRES_USER"] == "wizuser_created" and env["POSTGRES_HOST"] == "localhost"


def test_a_database_that_works_gets_no_offer(project: Path, pg: Any, tmp_path: Path) -> None:
    create_role(pg, "wizuser_works", "works-pw-1")
    pg.execute('create database "wizdb_works" owner "wizuser_works"')
    secret = tmp_path / "pw"
    secret.write_text("works-pw-1\n")
    child = spawn(
        project, *flags(pg, "wizdb_works", "wizuser_works"), "--postgres-password-file", str(secret)
    )
    no_kalshi(child)
    child.expect("works: connected and tested")
    transcript = finish(child)
    assert child.exitstatus == 0, transcript
    assert "Create the role" not in transcript and "admin" not in transcript


def test_a_role_with_another_password_is_offered_the_one_in_env(
    project: Path, pg: Any, tmp_path: Path
) -> None:
    create_role(pg, "wizuser_otherpw", "its-own-pw-1")
    pg.execute('create database "wizdb_otherpw" owner "wizuser_otherpw"')
    secret = tmp_path / "pw"
    secret.write_text("the-new-pw-2\n")
    child = spawn(
        project,
        *flags(pg, "wizdb_otherpw", "wizuser_otherpw"),
        "--postgres-password-file",
        str(secret),
    )
    child.expect("Create the role and database now")
    child.send(ENTER)
    child.expect("PostgreSQL admin user")
    child.send(ENTER)
    child.expect("PostgreSQL admin password")
    child.send(pg.password + ENTER)
    child.expect("The role 'wizuser_otherpw' exists with another password")
    child.send("y" + ENTER)  # yes (not the default: it locks out whatever else uses the role)
    no_kalshi(child)
    child.expect("role 'wizuser_otherpw' +│ already there; password")
    child.expect("to be set to")
    child.expect("database 'wizdb_otherpw' +│ already there")
    transcript = finish(child)
    assert child.exitstatus == 0, transcript
    with pytest.raises(Exception, match="authentication failed"):
        pg_connect(pg, "wizuser_otherpw", "its-own-pw-1", "wizdb_otherpw")
    pg_connect(pg, "wizuser_otherpw", "the-new-pw-2", "wizdb_otherpw")


def pg_connect(pg: Any, user: str, password: str, db: str) -> None:
    import psycopg

    psycopg.connect(pg.url(user, password, db), connect_timeout=5).close()


@contextlib.contextmanager
def forwarder(port: int, to: int) -> Iterator[None]:
    """A server appearing at `port` (the user started theirs): TCP forwarded to `to`."""
    listener = socket.create_server(("127.0.0.1", port))
    stop = threading.Event()

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                client, _ = listener.accept()
                upstream = socket.create_connection(("127.0.0.1", to))
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pump, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield
    finally:
        stop.set()
        listener.close()


def test_when_nothing_answers_test_again_finds_the_server_started_meanwhile(
    project: Path, pg: Any
) -> None:
    port = free_port()
    child = spawn(project, *flags(pg, "wizdb_later", "wizuser_later", port))
    child.expect("Database password")
    child.send(ENTER)

    def the_choice() -> None:
        child.expect(f"Nothing accepts connections at 127.0.0.1:{port}")
        child.expect(f"No PostgreSQL answers at 127.0.0.1:{port}")
        child.expect("project-local PostgreSQL \\(recommended\\)")

    the_choice()
    child.send(DOWN + ENTER)  # I will start my own: test again
    the_choice()  # not started yet: asked again
    with forwarder(port, pg.port):
        child.send(DOWN + ENTER)  # started now: test again
        child.expect("Authentication failed for user 'wizuser_later'")
        child.expect("Create the role and database now")
        child.send("n" + ENTER)
        no_kalshi(child)
    child.expect("not working yet: tested again at the end")
    transcript = finish(child, write=False)
    assert child.exitstatus == 1, transcript
    assert not (project / ".env").exists()


def test_when_nothing_answers_skip_sets_up_the_rest(project: Path, pg: Any) -> None:
    child = spawn(project, *flags(pg, "wizdb_skip", "wizuser_skip", free_port()))
    child.expect("Database password")
    child.send(ENTER)
    child.expect("No PostgreSQL answers")
    child.send(DOWN + DOWN + ENTER)  # skip the database
    no_kalshi(child)
    child.expect("skipped: neither set up nor tested")
    transcript = finish(child)
    assert child.exitstatus == 0, transcript
    assert "the database was not tested" in transcript
    assert "skipped (in the wizard)" in transcript  # not a flag the user never gave
    assert (project / ".env").is_file()


def test_when_nothing_answers_a_local_server_is_the_first_choice(project: Path, pg: Any) -> None:
    child = spawn(project, *flags(pg, "wizdb_local", "wizuser_local", free_port()))
    child.expect("Database password")
    child.send(ENTER)
    child.expect("No PostgreSQL answers")
    child.send(ENTER)  # the default: a project-local PostgreSQL
    no_kalshi(child)
    child.expect("a project-local PostgreSQL, set up by init")
    transcript = finish(child, write=False)
    assert child.exitstatus == 1, transcript
    assert not (project / ".env").exists()


def test_a_failed_admin_login_can_be_given_up(project: Path, pg: Any) -> None:
    child = spawn(project, *flags(pg, "wizdb_givenup", "wizuser_givenup"))
    child.expect("Database password")
    child.send(ENTER)
    child.expect("Create the role and database now")
    child.send(ENTER)
    child.expect("PostgreSQL admin user")
    child.send(ENTER)
    child.expect("PostgreSQL admin password")
    child.send("not-the-admin-pw" + ENTER)
    child.expect("What now")
    child.send(DOWN + DOWN + ENTER)  # do not create them now
    no_kalshi(child)
    child.expect("not working yet: tested again at the end")
    transcript = finish(child, write=False)
    assert child.exitstatus == 1, transcript
    assert pg.execute("select 1 from pg_roles where rolname = 'wizuser_givenup'") == []
