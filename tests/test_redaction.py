"""The redactor itself: a secret of this run never reaches any output, whatever carries it.

Each test plants the password of the run (POSTGRES_PASSWORD, a string no pattern would take for
a secret) where a careless code path might print it: an error message, a hint, a note of a
result, a crash's traceback, the JSON envelope, a --dry-run diff. Turning the masking in
Output.redact off makes each of them fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recio_setup.cli import app as cli
from recio_setup.errors import RecioError
from recio_setup.result import Result
from tests.conftest import Cli

SECRET = "plainwords4711"  # nothing in it looks like a secret: only the run's own list masks it


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("POSTGRES_PASSWORD", SECRET)
    return monkeypatch


def run_ports_as(planted: pytest.MonkeyPatch, project: Path, behaviour: object, *flags: str) -> int:
    from recio_setup.cli.commands import ports

    planted.setattr(ports, "run", behaviour)
    return cli.main(["ports", "--root", str(project), *flags])


@pytest.mark.parametrize("flags", [(), ("--json",)])
def test_an_error_message_and_its_hint(
    planted: pytest.MonkeyPatch,
    project: Path,
    capsys: pytest.CaptureFixture[str],
    flags: tuple[str, ...],
) -> None:
    def fails(ctx: object) -> None:
        raise RecioError(f"cannot log in with {SECRET}", hint=f"check that {SECRET} is right")

    assert run_ports_as(planted, project, fails, *flags) == 1
    shown = capsys.readouterr()
    assert "cannot log in with" in shown.err
    assert SECRET not in shown.out + shown.err
    if flags:
        assert json.loads(shown.out)["error"]["hint"].startswith("check that ")


@pytest.mark.parametrize("flags", [(), ("--json",)])
def test_a_note_of_a_result(
    planted: pytest.MonkeyPatch,
    project: Path,
    capsys: pytest.CaptureFixture[str],
    flags: tuple[str, ...],
) -> None:
    def reports(ctx: object) -> Result:
        result = Result("ports")
        result.notes.append(f"connected as rec_io_user/{SECRET}")
        result.summary = f"done with {SECRET}"
        return result

    assert run_ports_as(planted, project, reports, *flags) == 0
    shown = capsys.readouterr()
    assert "connected as rec_io_user/" in shown.out + shown.err
    assert SECRET not in shown.out + shown.err


def test_a_crash_and_its_log(
    planted: pytest.MonkeyPatch, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from recio_setup.cli.commands import init

    def crashes(ctx: object) -> None:
        raise RuntimeError(f"bug while holding {SECRET}")

    planted.setattr(init, "run", crashes)
    assert cli.main(["init", "--root", str(project), "--non-interactive"]) == 3
    shown = capsys.readouterr()
    assert SECRET not in shown.out + shown.err
    (log,) = (project / "logs").glob("recio-setup-crash-*.log")
    text = log.read_text()
    assert "bug while holding" in text and "Traceback" in text
    assert SECRET not in text


def test_a_dry_run_diff(cli: Cli, project: Path) -> None:
    env = project / ".env"
    env.write_text(f"POSTGRES_PORT=5432\nNOTE=kept {SECRET} here\n")
    env.chmod(0o600)
    args = ("--non-interactive", "--skip-db-check", "--host", "127.0.0.1", "--dry-run")
    for extra in ((), ("--json",)):
        run = cli(*args, "--postgres-port", "6000", *extra, env={"POSTGRES_PASSWORD": SECRET})
        assert run.code == 0, run.all
        assert "NOTE=kept" in run.out
        assert SECRET not in run.all
