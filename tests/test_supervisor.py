"""backend/supervisord.conf: generated from the manifest, portable, without secrets, kept in
step by `supervisor` and `init`, its drift reported by `check`, and run by a real supervisord."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SCRUBBED, Cli

CONF = "backend/supervisord.conf"
MANIFEST = "backend/core/config/MASTER_PORT_MANIFEST.json"
BIN = Path(sys.executable).parent
# A stub service: finds its port through the runtime library, as a REC.IO service does, and
# listens there on loopback until stopped. It prints its arguments so a test sees them arrive.
STUB = """\
import socket, sys
from recio_setup import get_port
port = get_port({name!r})
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen()
print("listening", port, sys.argv[1:], flush=True)
while True:
    server.accept()[0].close()
"""


def init(cli: Cli) -> None:
    run = cli("init", "--non-interactive", "--skip-db-check", "--host", "127.0.0.1")
    assert run.code == 0, run.all


def manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / MANIFEST).read_text())


def save_manifest(root: Path, document: dict[str, Any]) -> None:
    (root / MANIFEST).write_text(json.dumps(document, indent=2))


def services(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {**document["core_services"], **document["watchdog_services"]}


def test_init_writes_a_conf_with_one_program_per_service(cli: Cli, project: Path) -> None:
    init(cli)
    conf = project / CONF
    assert conf.stat().st_mode & 0o777 == 0o644
    text = conf.read_text()
    programs = re.findall(r"^\[program:(\w+)\]$", text, re.M)
    assert programs == list(services(manifest(project)))
    assert 'command="%(here)s/../venv/bin/python" -u backend/symbol_price_watchdog.py BTC' in text
    assert "file=%(here)s/supervisord.sock\nchmod=0700" in text
    assert "stdout_logfile=%(here)s/../logs/main_app.out.log" in text
    assert "stdout_logfile_maxbytes=10MB" in text
    # A second init plans nothing; check is happy.
    assert (
        "ready: everything was already in place"
        in cli("init", "--non-interactive", "--skip-db-check", "--host", "127.0.0.1").out
    )
    check = cli("check", "--skip-db-check")
    assert check.code == 0 and "backend/supervisord.conf is in step" in check.out


def test_conf_holds_no_secret_no_absolute_path_no_address(cli: Cli, project: Path) -> None:
    password = "s3cret-Pass-word"
    run = cli(
        "init",
        "--non-interactive",
        "--skip-db-check",
        "--host",
        "10.1.2.3",
        env={"POSTGRES_PASSWORD": password},
    )
    assert run.code == 0, run.all
    text = (project / CONF).read_text()
    for needle in (password, "10.1.2.3", str(project), "/tmp", "postgres", "password", "pass="):
        assert needle.lower() not in text.lower(), needle
    assert not re.search(r"\bDB_|_DB_|DATABASE", text)  # DB_PASSWORD, REC_DB_PASS, ...
    settings = [line for line in text.splitlines() if "=" in line and not line.startswith(";")]
    # Every path is relative to the file itself: no value starts at the file-system root.
    assert not [line for line in settings if re.search(r"=\s*\"?/", line)]
    environment = {line for line in settings if line.startswith("environment=")}
    assert environment == {'environment=REC_PROJECT_ROOT="%(here)s/..",PYTHONPATH="%(here)s/.."'}
    assert not re.search(r"\d+\.\d+\.\d+\.\d+", text)


def test_manifest_edit_is_drift_until_supervisor_regenerates(cli: Cli, project: Path) -> None:
    init(cli)
    document = manifest(project)
    document["watchdog_services"]["eth_price_watchdog"] = {
        "port": 8020,
        "command": ["backend/symbol_price_watchdog.py", "ETH"],
    }
    del document["watchdog_services"]["db_poller"]
    document["core_services"]["main_app"]["command"] = ["backend/main_app.py", "--debug"]
    save_manifest(project, document)

    check = cli("check", "--skip-db-check")
    assert check.code == 1
    assert "no program for eth_price_watchdog" in check.out
    assert "programs not in the manifest: db_poller" in check.out
    assert "another command for main_app" in check.out
    assert "backend/supervisord.conf is out of step" in check.out
    assert "bootstrap.py supervisor`" in check.out  # the fix, as this project launches it

    dry = cli("supervisor", "--dry-run")
    assert dry.code == 0, dry.all
    assert "+[program:eth_price_watchdog]" in dry.out and "-[program:db_poller]" in dry.out
    assert "[program:db_poller]" in (project / CONF).read_text()  # nothing written

    run = cli("supervisor")
    assert run.code == 0, run.all
    assert "edited by hand" not in run.all
    text = (project / CONF).read_text()
    assert "[program:eth_price_watchdog]" in text and "[program:db_poller]" not in text
    assert "-u backend/main_app.py --debug" in text
    archived = list((project / "backend/data/archives").glob("*-supervisor/files/" + CONF))
    assert len(archived) == 1 and "[program:db_poller]" in archived[0].read_text()
    assert cli("check", "--skip-db-check").code == 0
    assert "already in step" in cli("supervisor").out


def test_a_hand_edited_conf_is_archived_and_the_output_says_so(cli: Cli, project: Path) -> None:
    init(cli)
    conf = project / CONF
    edited = conf.read_text().replace("autorestart=true", "autorestart=false", 1)
    conf.write_text(edited)
    check = cli("check", "--skip-db-check")
    assert check.code == 1 and "edited by hand" in check.out

    run = cli("supervisor")
    assert run.code == 0, run.all
    assert "edited by hand" in run.out and "kept in backend/data/archives/" in run.out
    assert "autorestart=false" not in conf.read_text()
    kept = list((project / "backend/data/archives").glob("*-supervisor/files/" + CONF))
    assert [path.read_text() for path in kept] == [edited]


def test_a_symlink_in_its_place_is_archived_never_written_through(
    cli: Cli, project: Path, tmp_path: Path
) -> None:
    init(cli)
    outside = tmp_path / "outside.conf"
    outside.write_text("[supervisord]\n")
    conf = project / CONF
    conf.unlink()
    conf.symlink_to(outside)
    assert "is a symlink" in cli("check", "--skip-db-check").out
    run = cli("supervisor")
    assert run.code == 0, run.all
    assert outside.read_text() == "[supervisord]\n"
    assert not conf.is_symlink() and "[program:main_app]" in conf.read_text()


def test_a_bad_command_in_the_manifest_is_named_with_a_fix(cli: Cli, project: Path) -> None:
    init(cli)
    document = manifest(project)
    document["core_services"]["main_app"]["command"] = ["../elsewhere/main.py"]
    document["core_services"]["trade_manager"]["command"] = ["/opt/rec_io/trade_manager.py"]
    document["watchdog_services"]["db_poller"]["command"] = "backend/db_poller.py"
    save_manifest(project, document)
    before = (project / CONF).read_bytes()
    run = cli("supervisor")
    assert run.code == 1
    assert "core_services.main_app.command" in run.err and "`..`" in run.err
    assert "trade_manager.command" in run.err and "absolute path" in run.err
    assert "db_poller.command" in run.err and "list of strings" in run.err
    assert (project / CONF).read_bytes() == before


def test_a_long_project_path_gets_a_short_socket_and_says_so(cli: Cli, tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    long_cli = Cli(deep)
    init(long_cli)
    text = (deep / CONF).read_text()
    match = re.search(r"^file=(/tmp/recio-supervisord-[0-9a-f]{16}\.sock)$", text, re.M)
    assert match and f"serverurl=unix://{match[1]}" in text
    assert len(match[1]) < 60
    assert "over the unix limit" in long_cli("supervisor").out


# The real supervisord.


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def stub_project(cli: Cli) -> dict[str, int]:
    """An initialised project whose ten services are stubs on free loopback ports."""
    root = cli.root
    init(cli)
    document = manifest(root)
    ports = free_ports(10)
    span = {"start": min(ports), "end": max(ports)}
    document["port_ranges"] = {"core": span, "safe": span}
    document["watchdog_services"]["btc_price_watchdog"]["command"] = [
        "backend/symbol_price_watchdog.py",
        "BTC",
        "two words",
        "50%",
    ]
    for (name, spec), port in zip(services(document).items(), ports, strict=True):
        spec["port"] = port
        script = root / spec["command"][0]
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(STUB.format(name=name))
    save_manifest(root, document)
    # The venv's python, as bootstrap.py makes it: here this test run's own interpreter.
    python = root / "venv/bin/python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    run = cli("supervisor")
    assert run.code == 0, run.all
    return {name: spec["port"] for name, spec in services(document).items()}


def supervisor_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SCRUBBED}


def ctl(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "supervisorctl"), "-c", CONF, *args],
        cwd=root,
        env=supervisor_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )


@contextmanager
def supervisord(root: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The real supervisord in the foreground on the project's conf; always stopped after."""
    console = root.parent / "supervisord.console"
    with console.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "supervisord"), "-n", "-c", CONF],
            cwd=root,
            env=supervisor_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)  # supervisord stops every program, then itself
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_running(root: Path, names: list[str], process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 20
    status = ""
    while time.monotonic() < deadline:
        assert process.poll() is None, (root.parent / "supervisord.console").read_text()
        status = ctl(root, "status").stdout
        states = dict(re.findall(r"^(\w+)\s+(\w+)", status, re.M))
        if all(states.get(name) == "RUNNING" for name in names):
            return status
        time.sleep(0.2)
    raise AssertionError(f"not all RUNNING after 20 s:\n{status}")


def listening(cli: Cli) -> dict[str, bool]:
    run = cli("ports", "--json")
    assert run.code == 0, run.all
    rows = run.json()["result"]["data"]["services"]
    return {row["service"]: row["listening"] for row in rows}


def run_all_and_stop(cli: Cli, ports: dict[str, int]) -> None:
    root = cli.root
    with supervisord(root) as process:
        wait_running(root, list(ports), process)
        assert listening(cli) == dict.fromkeys(ports, True)
        socket_file = root / "backend/supervisord.sock"
        assert socket_file.stat().st_mode & 0o777 == 0o700
        log = (root / "logs/btc_price_watchdog.out.log").read_text()
        assert "['BTC', 'two words', '50%']" in log
    assert process.returncode is not None
    assert listening(cli) == dict.fromkeys(ports, False)


@pytest.mark.slow
def test_real_supervisord_runs_every_service_on_its_port(cli: Cli, project: Path) -> None:
    ports = stub_project(cli)
    run_all_and_stop(cli, ports)


@pytest.mark.slow
def test_the_conf_works_in_another_checkout_path(cli: Cli, project: Path, tmp_path: Path) -> None:
    ports = stub_project(cli)
    # Another checkout, at a path with a space: every path in the file follows it.
    moved = tmp_path / "co py"
    shutil.copytree(project, moved, symlinks=True)
    shutil.rmtree(project)
    other = Cli(moved)
    check = other("check", "--skip-db-check")
    assert "supervisord.conf is in step" in check.out, check.out
    run_all_and_stop(other, ports)


def test_reset_writes_the_conf_from_the_manifest_it_installs(cli: Cli, project: Path) -> None:
    init(cli)
    (project / CONF).unlink()
    (project / MANIFEST).write_text("{broken")
    run = cli("reset", env={"POSTGRES_PASSWORD": "pw"})
    assert run.code == 0, run.all
    assert "[program:main_app]" in (project / CONF).read_text()
    assert cli("check", "--skip-db-check").code == 0


def test_a_wrong_mode_is_reported_and_put_right_by_init(cli: Cli, project: Path) -> None:
    init(cli)
    conf = project / CONF
    conf.chmod(0o666)
    check = cli("check", "--skip-db-check")
    assert check.code == 1 and "supervisord.conf's mode 0666" in check.out
    init(cli)
    assert conf.stat().st_mode & 0o777 == 0o644
    assert not (project / "backend/data/archives").exists() or not list(
        (project / "backend/data/archives").glob("*/files/" + CONF)
    )


# The kind of file REC.IO committed by hand: one server's paths, its password in plain text.
HAND_WRITTEN = """\
[unix_http_server]
file=/tmp/supervisor.sock

[program:main_app]
command=/opt/rec_io_server/venv/bin/python /opt/rec_io_server/backend/main.py
environment=DB_PASSWORD="hunter2-plain",POSTGRES_PASSWORD="hunter2-plain",PATH="/usr/bin"
"""


def test_the_hand_written_reference_conf_is_archived_and_its_password_never_shown(
    cli: Cli, project: Path
) -> None:
    init(cli)
    conf = project / CONF
    conf.write_text(HAND_WRITTEN)
    check = cli("check", "--skip-db-check")
    assert check.code == 1 and "edited by hand" in check.out
    assert "programs not in the manifest" not in check.out  # main_app is one of them
    dry = cli("supervisor", "--dry-run")
    dry_json = cli("supervisor", "--dry-run", "--json")
    # Its lines are counted, not shown: a hand-written file may spell a password any way.
    assert "- (6 lines of the current file, not shown" in dry.out
    assert "/opt/rec_io_server" not in dry.out
    for run in (check, dry, dry_json):
        assert "hunter2" not in run.all
    assert conf.read_text() == HAND_WRITTEN
    run = cli("supervisor", "-q")  # said even with -q: the user's file was replaced
    assert run.code == 0 and "edited by hand" in run.err and "hunter2" not in run.all
    (kept,) = (project / "backend/data/archives").glob("*-supervisor/files/" + CONF)
    assert kept.read_text() == HAND_WRITTEN


def test_an_edit_above_the_checksum_line_is_a_hand_edit(cli: Cli, project: Path) -> None:
    init(cli)
    conf = project / CONF
    conf.write_text("; my note\n" + conf.read_text())
    check = cli("check", "--skip-db-check")
    assert check.code == 1 and "edited by hand" in check.out


@pytest.mark.parametrize("command", [["-c", "import os"], ["-m", "http.server"], ["."]])
def test_a_command_must_start_with_a_script_of_the_project(
    cli: Cli, project: Path, command: list[str]
) -> None:
    init(cli)
    manifest = json.loads((project / MANIFEST).read_text())
    manifest["core_services"]["main_app"]["command"] = command
    (project / MANIFEST).write_text(json.dumps(manifest))
    run = cli("supervisor")
    assert run.code == 1 and "must be a .py file of the project" in run.all


def test_a_checkout_whose_path_holds_a_percent_sign_is_told(cli: Cli, tmp_path: Path) -> None:
    odd = tmp_path / "rs50%x"
    odd.mkdir()
    run = Cli(odd)("--non-interactive", "--skip-db-check", "--host", "127.0.0.1")
    assert run.code == 1 and "which supervisord's config cannot carry" in run.all
    assert "move the checkout to a path without %" in run.all


def test_supervisor_creates_the_logs_folder_it_needs(cli: Cli, project: Path) -> None:
    init(cli)
    (project / "logs").rmdir()
    assert cli("supervisor").code == 0
    assert (project / "logs").is_dir()
