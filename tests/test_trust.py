"""Output a user can trust (issue 13): what -q shows, --json with a terminal, Ctrl-C's exit code
in the envelope, a lock wait said at once, which reset an undo undid, and hints for options."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import recio_setup
from tests.conftest import Cli

ENV = {"POSTGRES_PASSWORD": "x-pw-1"}
INIT = ("--non-interactive", "--skip-db-check", "--host", "127.0.0.1")
LOCK = "backend/data/locks/bootstrap.lock"
MANIFEST = "backend/core/config/MASTER_PORT_MANIFEST.json"


def test_quiet_check_prints_each_failed_check_and_its_fix(cli: Cli, project: Path) -> None:
    assert cli(*INIT, env=ENV).code == 0
    (project / MANIFEST).write_text("{ not json")
    run = cli("check", "--skip-db-check", "-q")
    assert run.code == 1 and run.out == ""
    assert "[fail] port manifest:" in run.err and "fix: run `python3 bootstrap.py reset`" in run.err
    assert "[ok]" not in run.err  # only errors


def test_json_with_a_terminal_on_stdin_never_prompts(cli: Cli, project: Path) -> None:
    """`recio-setup --json | jq` from a terminal: stdin is a tty, stdout the pipe to jq."""
    main_side, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "recio_setup", "--json", "--skip-db-check"],
            stdin=terminal,
            capture_output=True,
            text=True,
            env=cli.env(ENV),
            cwd=project,
            timeout=60,
        )
    finally:
        os.close(terminal)
        os.close(main_side)
    envelope = json.loads(done.stdout)  # the one JSON document, no prompt text in it
    assert done.returncode == envelope["exit_code"] == 0, done.stderr
    assert (project / ".env").is_file()


def hold_lock(project: Path) -> int:
    (project / LOCK).parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(project / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(handle, fcntl.LOCK_EX)
    os.write(handle, f"{os.getpid()} reset\n".encode())
    return handle


def read_until(stream: int, text: str, timeout: float) -> str:
    seen = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in seen and time.monotonic() < deadline:
        if select.select([stream], [], [], 0.1)[0]:
            seen += os.read(stream, 4096)
    return seen.decode()


def test_a_lock_wait_is_said_at_once_and_ctrl_c_exits_130_in_the_envelope_too(
    cli: Cli, project: Path
) -> None:
    handle = hold_lock(project)
    try:
        waiting = subprocess.Popen(
            [sys.executable, "-m", "recio_setup", *INIT, "--json", "--lock-timeout", "60"],
            env=cli.env(ENV),
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert waiting.stderr is not None
        said = read_until(waiting.stderr.fileno(), "up to 60 s", timeout=30)
        assert f"waiting for PID {os.getpid()} (reset) to finish, up to 60 s" in said
        waiting.send_signal(signal.SIGINT)
        out, _err = waiting.communicate(timeout=30)
    finally:
        os.close(handle)
    envelope = json.loads(out)
    assert waiting.returncode == envelope["exit_code"] == 130
    assert envelope["error"]["cause"] == "interrupted"


def test_undo_says_which_reset_it_undid_and_what_is_left(cli: Cli, project: Path) -> None:
    assert cli(*INIT, env=ENV).code == 0
    for broken in (MANIFEST, "backend/core/config/config.json"):  # two resets, two files
        (project / broken).write_text("{ not json")
        assert cli("reset", "--json").code == 0
    first = cli("reset", "--undo", "--yes", "--json").json()["result"]["notes"]
    assert any("undid the reset of " in n and "1 older reset(s) can still" in n for n in first)
    second = cli("reset", "--undo", "--yes", "--json").json()["result"]["notes"]
    assert any("no older reset is left to undo" in note for note in second)


def test_an_option_of_another_command_names_that_command(cli: Cli) -> None:
    run = cli("check", "--create-db")
    assert run.code == 2
    hint = "--create-db is an option of `init`, e.g. `python3 bootstrap.py init --create-db`"
    assert hint in run.err


def test_did_you_mean_only_for_a_close_option(cli: Cli) -> None:
    far = cli("check", "--bogus")
    assert far.code == 2 and "did you mean" not in far.err
    assert "see `python3 bootstrap.py check --help`" in far.err
    close = cli("--hots", "127.0.0.1")
    assert close.code == 2 and "did you mean --host?" in close.err


def test_an_endpoint_without_a_leading_slash_gets_one(cli: Cli, project: Path) -> None:
    assert cli(*INIT, env=ENV).code == 0
    url = recio_setup.get_service_url("main_app", "api/health", root=project)
    assert url == "http://127.0.0.1:3000/api/health"
    assert recio_setup.get_service_url("main_app", "/x", root=project).endswith(":3000/x")


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_status_is_coloured_on_request_and_plain_in_a_pipe(cli: Cli) -> None:
    assert cli(*INIT, env=ENV).code == 0
    coloured = cli("check", "--skip-db-check", "--color", "always")
    assert "\x1b[32mok\x1b[0m" in coloured.out and "\x1b[36minfo\x1b[0m" in coloured.out
    plain = cli("check", "--skip-db-check")
    assert "\x1b[" not in plain.all and "[ok] .env:" in plain.out


def test_a_table_at_100_columns_cuts_no_path_in_two(cli: Cli, project: Path) -> None:
    assert cli(*INIT, env=ENV).code == 0
    (project / MANIFEST).write_text("{ not json")
    run = cli("check", "--skip-db-check", "--color", "always", env={"COLUMNS": "100"})
    text = ANSI.sub("", run.out)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "backend/core/config/MASTER_PORT_MANIFEST.json" in text


def test_hints_keep_the_user_and_root_given(cli: Cli, project: Path) -> None:
    other = cli("check", "--skip-db-check", "--user", "user_0002")
    assert "run `python3 bootstrap.py --user user_0002 init`" in other.out
    rooted = cli("check", "--skip-db-check", "--root", str(project))
    assert f"run `python3 bootstrap.py --root {project} init`" in rooted.out
    # The spelled command works: common options may come before the command.
    assert cli("--user", "user_0002", "init", *INIT, env=ENV).code == 0
    assert (project / "backend/data/users/user_0002").is_dir()


def test_check_prints_no_values_table_for_its_one_value(cli: Cli) -> None:
    assert cli(*INIT, env=ENV).code == 0
    run = cli("check", "--json", env={"POSTGRES_PORT": "1"})
    assert [v["name"] for v in run.json()["result"]["values"]] == ["POSTGRES_SSLMODE"]
    text = cli("check", env={"POSTGRES_PORT": "1"})
    assert "Values:" not in text.out and "Checks:" in text.out


def up_addresses() -> list[str]:
    from recio_setup.runtime.host import read_interfaces

    return [i.address for i in read_interfaces() if i.up and not i.loopback]


def test_a_host_that_is_no_address_of_this_machine_is_a_warning(cli: Cli, project: Path) -> None:
    assert cli(*INIT, env=ENV).code == 0
    env_file = project / ".env"
    env_file.write_text(env_file.read_text().replace("=127.0.0.1", "=198.51.100.7"))
    run = cli("check", "--skip-db-check", "--json")
    assert run.code == 0  # a warning, not a failure
    found = [c for c in run.json()["result"]["checks"] if c["id"] == "env.host"]
    assert found and found[0]["status"] == "warn"
    assert "198.51.100.7 is not an address of this machine" in found[0]["detail"]
    assert all(address in found[0]["detail"] for address in up_addresses())
    assert "init --reconfigure" in found[0]["fix"]
    for mine in ("127.0.0.1", *up_addresses()[:1]):
        env_file.write_text(env_file.read_text().replace("=198.51.100.7", f"={mine}"))
        quiet = cli("check", "--skip-db-check", "--json").json()["result"]["checks"]
        assert not [c for c in quiet if c["id"] == "env.host"], mine
        env_file.write_text(env_file.read_text().replace(f"={mine}", "=198.51.100.7"))


def test_ports_keeps_a_service_whose_port_entry_is_bad_as_a_row(cli: Cli, project: Path) -> None:
    assert cli(*INIT, env=ENV).code == 0
    manifest = json.loads((project / MANIFEST).read_text())
    manifest["core_services"]["main_app"]["port"] = "3000"
    manifest["core_services"]["trade_manager"]["port"] = True
    (project / MANIFEST).write_text(json.dumps(manifest))
    run = cli("ports", "--json")
    assert run.code == 1
    rows = {row["service"]: row for row in run.json()["result"]["data"]["services"]}
    assert len(rows) == sum(len(manifest[g]) for g in ("core_services", "watchdog_services"))
    for name in ("main_app", "trade_manager"):
        assert rows[name]["port"] is None and rows[name]["problems"], rows[name]
    text = cli("ports")
    main_app = next(line for line in text.out.splitlines() if line.split()[:1] == ["main_app"])
    assert main_app.split()[1:3] == ["core_services", "-"]


def listen_in_core_range(used: set[int]) -> socket.socket:
    for port in range(3990, 3900, -1):
        if port in used:
            continue
        server = socket.socket()
        try:
            server.bind(("127.0.0.1", port))
        except OSError:
            server.close()
            continue
        server.listen()
        return server
    raise AssertionError("no free port in 3901-3990")


def test_ports_names_the_process_listening_on_a_port(cli: Cli, project: Path) -> None:
    assert cli(*INIT, env=ENV).code == 0
    manifest = json.loads((project / MANIFEST).read_text())
    used = {s["port"] for g in ("core_services", "watchdog_services") for s in manifest[g].values()}
    with listen_in_core_range(used) as server:
        manifest["core_services"]["main_app"]["port"] = server.getsockname()[1]
        (project / MANIFEST).write_text(json.dumps(manifest))
        run = cli("ports", "--json")
        text = cli("ports")
    rows = {row["service"]: row for row in run.json()["result"]["data"]["services"]}
    assert rows["main_app"]["listening"] is True
    assert rows["main_app"]["owner"]["pid"] == os.getpid()  # this test listens, in-process
    assert "python" in rows["main_app"]["owner"]["command"]
    assert rows["trade_manager"]["owner"] is None or rows["trade_manager"]["listening"]
    assert f"yes (PID {os.getpid()}: " in text.out


def test_a_config_out_of_step_is_one_finding_not_ok_and_warn(cli: Cli, project: Path) -> None:
    assert cli(*INIT, env=ENV).code == 0
    env_file = project / ".env"
    env_file.write_text(env_file.read_text().replace("=127.0.0.1", "=localhost"))
    checks = cli("check", "--skip-db-check", "--json").json()["result"]["checks"]
    about_config = [(c["id"], c["status"]) for c in checks if c["name"] == "config.json"]
    assert about_config == [("config.host", "warn")]
    init = cli(*INIT[:2], "--json", env=ENV).json()["result"]
    assert [a["path"] for a in init["actions"]] == ["backend/core/config/config.json"]
    assert not [c for c in init["checks"] if c["name"] == "config.json"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (Linux)")
def test_a_file_system_that_refuses_folders_is_a_clear_failure(cli: Cli) -> None:
    run = cli("--root", "/proc", *INIT, env=ENV)
    assert run.code == 1 and "the file system holding the project refuses it" in run.err
    assert "unexpected error" not in run.err


def test_an_abbreviated_option_is_not_taken_for_the_whole(cli: Cli) -> None:
    run = cli("reset", "--a", "--dry-run")  # argparse would read --all
    assert run.code == 2 and "unrecognized arguments: --a" in run.err


def test_a_word_far_from_any_command_is_named_as_no_command(cli: Cli) -> None:
    run = cli("bogus")
    assert run.code == 2 and "`bogus` is not a command; the commands: init, check" in run.err


def test_manifest_problems_speak_json(cli: Cli, project: Path) -> None:
    assert cli(*INIT, env=ENV).code == 0
    manifest = json.loads((project / MANIFEST).read_text())
    manifest["core_services"]["main_app"]["port"] = None
    manifest["core_services"]["trade_manager"]["port"] = []
    (project / MANIFEST).write_text(json.dumps(manifest))
    run = cli("ports")
    assert "not null" in run.all and "not an array" in run.all
    assert "NoneType" not in run.all and "not list" not in run.all
