"""Environment variables that are not UTF-8 text are bad input (issue 11, item 10, first part).

Python hands an undecodable byte of the environment over as a lone surrogate, which fails only
when the value is encoded to be written or sent. A user must get exit 2, a message naming the
variable and never its value, and nothing written: no .env, no tree, no crash log.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli

BASE = ("--non-interactive", "--skip-db-check", "--host", "127.0.0.1")
# "\udcff" is how Python spells the byte 0xff it could not decode (surrogateescape); subprocess
# passes it to the child as that byte again.
BAD_BYTE = "\udcff"
VISIBLE = "Visible9"


@pytest.mark.parametrize(
    ("name", "value", "extra"),
    [
        ("POSTGRES_PASSWORD", f"{VISIBLE}{BAD_BYTE}x", ()),
        ("DATABASE_URL", f"postgresql://u:{VISIBLE}{BAD_BYTE}@h/db", ()),
        ("DATABASE_URL", f"postgresql://u@h/{VISIBLE}{BAD_BYTE}", ()),
        ("POSTGRES_USER", f"{VISIBLE}{BAD_BYTE}", ()),
        ("TRADING_SYSTEM_HOST", f"{VISIBLE}{BAD_BYTE}", ()),
        ("POSTGRES_SSLMODE", f"{VISIBLE}{BAD_BYTE}", ()),
        ("POSTGRES_ADMIN_PASSWORD", f"{VISIBLE}{BAD_BYTE}", ("--create-db",)),
        ("POSTGRES_ADMIN_URL", f"postgresql://a:{VISIBLE}{BAD_BYTE}@h/x", ("--create-db",)),
    ],
)
@pytest.mark.parametrize("json", [False, True], ids=["text", "json"])
def test_a_variable_that_is_not_utf8_is_bad_input(
    cli: Cli, project: Path, name: str, value: str, extra: tuple[str, ...], json: bool
) -> None:
    run = cli(*BASE, *extra, *(["--json"] if json else []), env={name: value})
    assert run.code == 2, run.all
    assert name in run.err and "UTF-8" in run.err
    assert VISIBLE not in run.all
    assert "unexpected" not in run.all
    assert list(project.iterdir()) == []  # no .env, no tree, no logs/
    if json:
        assert run.json()["error"]["message"].startswith(name)


@pytest.mark.parametrize("name", ["POSTGRES_PASSWORD", "DATABASE_URL", "POSTGRES_HOST"])
def test_check_refuses_a_variable_that_is_not_utf8(cli: Cli, project: Path, name: str) -> None:
    assert cli(*BASE, env={"POSTGRES_PASSWORD": "pw-0123"}).code == 0
    before = sorted(p.name for p in project.iterdir())
    run = cli("check", "--skip-db-check", env={name: f"{VISIBLE}{BAD_BYTE}"})
    assert run.code == 2, run.all
    assert name in run.err and VISIBLE not in run.all
    assert sorted(p.name for p in project.iterdir()) == before  # no logs/


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{VISIBLE}%FF@h/db",  # percent-encoded, but not UTF-8 once decoded
        f"postgresql://u:{VISIBLE}%zz@h/db",  # not a percent-escape at all
        f"postgresql://u@h/{VISIBLE}%C3",  # a UTF-8 sequence cut short
    ],
)
def test_database_url_whose_escapes_are_not_utf8_is_bad_input(
    cli: Cli, project: Path, url: str
) -> None:
    run = cli(*BASE, env={"DATABASE_URL": url})
    assert run.code == 2, run.all
    assert "DATABASE_URL" in run.err and VISIBLE not in run.all
    assert list(project.iterdir()) == []


@pytest.mark.parametrize("command", [("ports",), ("reset", "--dry-run")])
def test_a_variable_the_command_does_not_read_stays_out_of_its_way(
    cli: Cli, project: Path, command: tuple[str, ...]
) -> None:
    assert cli(*BASE, env={"POSTGRES_PASSWORD": "pw-0123"}).code == 0
    run = cli(*command, env={"POSTGRES_PASSWORD": f"{VISIBLE}{BAD_BYTE}"})
    assert run.code == 0, run.all
    assert "UTF-8" not in run.all and VISIBLE not in run.all
