"""Every command's --json output against the published schema (docs/schema/envelope.json), so
the schema cannot drift from the code: successes, findings, dry runs, undo, bad input, a
database that refuses, Ctrl-C."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import REPO, Cli
from tests.pgserver import free_port

SCHEMA = json.loads((REPO / "docs/schema/envelope.json").read_text())
ENV = {"POSTGRES_PASSWORD": "x-pw-1"}
INIT = ("--non-interactive", "--skip-db-check", "--host", "127.0.0.1")
MANIFEST = "backend/core/config/MASTER_PORT_MANIFEST.json"


def valid(output: str) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads(output)
    jsonschema.Draft202012Validator(SCHEMA).validate(envelope)
    return envelope


def test_the_schema_is_a_valid_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_every_command_on_a_healthy_tree(cli: Cli) -> None:
    first = cli(*INIT, "--json", env=ENV)
    assert valid(first.out)["exit_code"] == first.code == 0
    for args in (
        (*INIT, "--json", "--dry-run", "--postgres-port", "6543"),
        (*INIT, "--json"),
        ("check", "--skip-db-check", "--json"),
        ("ports", "--json"),
        ("reset", "--json", "--dry-run"),
        ("reset", "--json"),
    ):
        run = cli(*args, env=ENV)
        envelope = valid(run.out)
        assert envelope["exit_code"] == run.code == 0, (args, run.err)
        assert ("dry_run" in envelope["result"]) == (args[0] != "check" and args[0] != "ports")


def test_findings_repairs_and_undo(cli: Cli, project: Path) -> None:
    assert cli(*INIT, env=ENV).code == 0
    (project / MANIFEST).write_text("{ not json")
    os.chmod(project / ".env", 0o644)
    (project / "backend/data/historical_data").rmdir()
    broken = cli("check", "--skip-db-check", "--json")
    envelope = valid(broken.out)
    assert envelope["exit_code"] == broken.code == 1
    ids = {check["id"] for check in envelope["result"]["checks"]}
    assert {"env.mode", "manifest.file", "tree.entry"} <= ids
    repaired = cli("reset", "--json")
    assert valid(repaired.out)["exit_code"] == repaired.code == 0
    assert stat.S_IMODE((project / ".env").stat().st_mode) == 0o600
    undone = cli("reset", "--undo", "--yes", "--json")
    assert valid(undone.out)["exit_code"] == undone.code == 0


@pytest.mark.parametrize(
    "args",
    [("--bogus",), ("check", "--create-db"), ("--postgres-port", "abc"), ("reset", "--undo")],
    ids=["unknown-option", "other-command", "bad-value", "needs-yes"],
)
def test_bad_input_carries_a_cause(cli: Cli, args: tuple[str, ...]) -> None:
    run = cli(*args, "--json", "--skip-db-check", env=ENV)
    envelope = valid(run.out)
    assert envelope["exit_code"] == run.code == 2
    assert envelope["error"]["cause"] == "bad_input" and envelope["result"] is None


def test_a_database_that_refuses(cli: Cli) -> None:
    assert cli(*INIT, env=ENV).code == 0
    run = cli("check", "--json", env={"POSTGRES_PORT": str(free_port())})
    envelope = valid(run.out)
    assert envelope["exit_code"] == run.code == 1
    database = [c for c in envelope["result"]["checks"] if c["id"] == "db.connect"]
    assert database and database[0]["data"]["cause"] == "connection_refused"


def test_supervisor_and_credentials_envelopes(cli: Cli) -> None:
    assert cli(*INIT, env=ENV).code == 0
    for args in (("supervisor", "--json"), ("supervisor", "--json", "--dry-run")):
        run = cli(*args)
        assert valid(run.out)["exit_code"] == run.code == 0, run.err
    status = cli("credentials", "status", "--json")
    envelope = valid(status.out)
    assert envelope["exit_code"] == status.code
    assert {c["id"] for c in envelope["result"]["checks"]} == {"credentials.kalshi"}
