"""The command line as a user meets it: help, version, bad input, the JSON envelope."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from tests.conftest import Cli


def test_version(cli: Cli) -> None:
    run = cli("--version")
    assert run.code == 0
    assert run.out.strip().startswith("recio-setup ")


def test_help_lists_every_command_and_exit_codes(cli: Cli) -> None:
    run = cli("--help")
    assert run.code == 0
    for command in ("init", "check", "reset", "ports", "credentials"):
        assert command in run.out
    assert "130" in run.out


def test_bad_user_exits_2_and_writes_nothing(cli: Cli, project: Path) -> None:
    run = cli("--user", "bob; rm -rf /")
    assert run.code == 2
    assert "user_" in run.err and "Traceback" not in run.all
    assert list(project.iterdir()) == []


def test_unknown_flag_exits_2_with_hint(cli: Cli, project: Path) -> None:
    run = cli("check", "--frobnicate")
    assert run.code == 2
    assert "--frobnicate" in run.err and "--help" in run.err
    assert list(project.iterdir()) == []


def test_json_error_envelope_is_the_only_stdout(cli: Cli) -> None:
    run = cli("--json", "--user", "nope")
    assert run.code == 2
    envelope = run.json()
    assert envelope["schema_version"] == 1
    assert envelope["ok"] is False and envelope["exit_code"] == 2
    assert "user_" in envelope["error"]["hint"]


def test_common_flags_may_come_before_the_command(cli: Cli) -> None:
    run = cli("--user", "user_0002", "check", "--help")
    assert run.code == 0
    assert "usage: python3 bootstrap.py check" in run.out  # as the user launched it


def test_missing_root_is_a_clear_error(cli: Cli, tmp_path: Path) -> None:
    run = cli("check", "--root", str(tmp_path / "nowhere"))
    assert run.code == 2
    assert "nowhere" in run.err and "Traceback" not in run.all


def plant_bug(monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    """A bug cannot be produced on purpose, so one is planted in a command."""
    from recio_setup.cli import app as cli

    def broken(ctx: object) -> None:
        raise RuntimeError("planted bug")

    monkeypatch.setattr(cli.command_module(command), "run", broken)


def assert_private_log(path: Path, err: str) -> None:
    assert str(path) in err
    assert "Traceback" in path.read_text() and "planted bug" in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600


def test_unexpected_error_gives_one_line_and_a_private_log(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from recio_setup.cli import app as cli

    plant_bug(monkeypatch, "init")
    code = cli.main(["--non-interactive", "--root", str(project)])
    err = capsys.readouterr().err
    assert code == 3
    assert "unexpected error: RuntimeError: planted bug" in err and "Traceback" not in err
    [log] = list((project / "logs").glob("recio-setup-crash-*.log"))
    assert_private_log(log, err)


@pytest.mark.parametrize(
    "argv", [["check"], ["ports"], ["init", "--dry-run"], ["reset", "--dry-run"]]
)
def test_a_read_only_run_writes_its_crash_log_outside_the_project(
    argv: list[str],
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from recio_setup.cli import app as cli

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    plant_bug(monkeypatch, argv[0])
    assert cli.main([*argv, "--root", str(project)]) == 3
    err = capsys.readouterr().err
    assert list(project.iterdir()) == []  # not even logs/
    [log] = list(temp.glob("recio-setup-crash-*.log"))
    assert_private_log(log, err)


def test_ctrl_c_exits_130(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from recio_setup.cli import app as cli
    from recio_setup.cli.commands import ports

    def interrupted(ctx: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ports, "run", interrupted)
    assert cli.main(["ports", "--root", str(project)]) == 130


def test_typos_get_a_suggestion(cli: Cli, project: Path) -> None:
    option = cli("--hots", "1.2.3.4")
    assert option.code == 2 and "did you mean --host?" in option.err
    command = cli("chek")
    assert command.code == 2 and "did you mean `check`?" in command.err
    assert list(project.iterdir()) == []


def test_hints_name_commands_as_the_user_launched_them(cli: Cli) -> None:
    run = cli("check", "--skip-db-check")  # the runner launches like bootstrap.py does
    assert run.code == 1
    assert "`python3 bootstrap.py init`" in run.out and "`recio-setup" not in run.out


def test_an_empty_root_is_bad_input(cli: Cli, project: Path) -> None:
    run = cli("--root", "", "--non-interactive", "--skip-db-check")
    assert run.code == 2, run.all
    assert "--root is empty" in run.err and "Traceback" not in run.all
    assert list(project.iterdir()) == []


def test_an_overlong_user_is_bad_input_before_anything_is_written(cli: Cli, project: Path) -> None:
    run = cli("--user", "user_" + "1" * 300, "--non-interactive", "--skip-db-check")
    assert run.code == 2, run.all
    assert "1 to 32 digits" in run.err and "1" * 100 not in run.all
    assert list(project.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("--version",),
        ("check", "--skip-db-check"),
        ("check", "--skip-db-check", "--json"),
        ("--user", "bob", "--json"),
        ("--non-interactive", "--skip-db-check", "--host", "127.0.0.1", "--dry-run"),
        ("--non-interactive", "--skip-db-check", "--postgres-password-file", "-", "--dry-run"),
    ],
)
def test_a_run_in_process_is_the_run_of_a_real_process(cli: Cli, args: tuple[str, ...]) -> None:
    # Most tests call the CLI in pytest's process (tests/conftest.py, Cli); this is what makes
    # that stand for `python -m recio_setup`: the same code, stdout and stderr.
    assert cli(*args, input="pw-from-stdin\r\n") == cli.process(*args, input="pw-from-stdin\r\n")


def test_a_bug_under_json_says_exit_code_3_as_the_process_does(
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from recio_setup.cli import app as cli

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where check's crash log goes
    plant_bug(monkeypatch, "check")
    code = cli.main(["check", "--json", "--root", str(project)])
    envelope = json.loads(capsys.readouterr().out)
    assert code == envelope["exit_code"] == 3
    assert envelope["error"]["cause"] == "bug"
