"""psycopg and questionary cost ~100 ms each at start-up, rich ~40 ms, cryptography tens of ms:
only paths that need them load them (cryptography: a Kalshi key to check). Off a terminal, output
is plain lines and needs no rich."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli


def imported_modules(cli: Cli, *args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "recio_setup", *args],
        capture_output=True,
        text=True,
        env=cli.env({"POSTGRES_PASSWORD": "x-pw-1"}),
        cwd=cli.root,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return {
        line.rsplit("|", 1)[-1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }


@pytest.mark.parametrize(
    "args",
    [
        ("--non-interactive", "--skip-db-check", "--host", "127.0.0.1"),
        ("check", "--skip-db-check"),
        ("ports",),
        ("--version",),
    ],
    ids=["init", "check", "ports", "version"],
)
def test_heavy_modules_stay_unloaded(cli: Cli, project: Path, args: tuple[str, ...]) -> None:
    cli(
        "--non-interactive",
        "--skip-db-check",
        "--host",
        "127.0.0.1",
        env={"POSTGRES_PASSWORD": "x-pw-1"},
    )
    modules = imported_modules(cli, *args)
    assert "recio_setup" in modules or args == ("--version",)
    heavy = ("psycopg", "questionary", "prompt_toolkit", "rich", "psutil", "cryptography")
    loaded = {m for m in modules if m.split(".")[0] in heavy}
    assert not loaded, f"{args} imported {sorted(loaded)[:5]}"


LOADED_AFTER_MAIN = """
import sys
from recio_setup.cli.app import main
code = main(sys.argv[1:])
print("\\n".join(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("command", ["init", "check", "ports"])
def test_a_command_builds_and_imports_only_its_own_parser(
    cli: Cli, project: Path, command: str
) -> None:
    """Each command module imports what its run needs: building every parser would import all.
    (sys.modules, not -X importtime: importlib.import_module's imports are not in its log.)"""
    cli("--non-interactive", "--skip-db-check", "--host", "127.0.0.1", "-q")
    args = [command, "--skip-db-check"] if command != "ports" else [command]
    done = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER_MAIN, *args],
        capture_output=True,
        text=True,
        env=cli.env({"POSTGRES_PASSWORD": "x-pw-1"}),
        cwd=cli.root,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    prefix = "recio_setup.cli.commands."
    commands = {m.removeprefix(prefix) for m in done.stderr.split() if m.startswith(prefix)}
    assert commands - {"dbflags"} == {command}
