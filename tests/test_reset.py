"""check and reset on a catalogue of corruptions: repair, then check passes, and no byte is lost."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Cli, tree_snapshot

INIT = ("--non-interactive", "--skip-db-check", "--host", "127.0.0.1")
ENV = {"POSTGRES_PASSWORD": "pw-for-reset-tests"}
USER = "backend/data/users/user_0001"
MANIFEST = "backend/core/config/MASTER_PORT_MANIFEST.json"
CONFIG = "backend/core/config/config.json"


@pytest.fixture
def ready(cli: Cli, project: Path) -> Path:
    run = cli(*INIT, env=ENV)
    assert run.code == 0, run.all
    (project / USER / "trade_history" / "t1.json").write_text('{"trade": 1}')
    (project / USER / "credentials/kalshi-credentials/prod/key.pem").write_text("PRIVATE KEY")
    os.chmod(project / USER / "credentials/kalshi-credentials/prod/key.pem", 0o600)
    return project


def archived_files(project: Path) -> dict[str, list[bytes]]:
    """Archive content by original relative path (from every run's files/ folder)."""
    found: dict[str, list[bytes]] = {}
    for run_dir in (project / "backend/data/archives").glob("*"):
        files = run_dir / "files"
        for path in files.rglob("*") if files.is_dir() else []:
            if path.is_file() and not path.is_symlink():
                found.setdefault(str(path.relative_to(files)), []).append(path.read_bytes())
            elif path.is_symlink():
                found.setdefault(str(path.relative_to(files)), []).append(
                    os.readlink(path).encode()
                )
    return found


def assert_no_byte_lost(
    before: dict[str, tuple[str, int, bytes | str | None]], project: Path
) -> None:
    archive = archived_files(project)
    for rel, (kind, _mode, content) in before.items():
        if kind == "dir" or rel.startswith("backend/data/archives"):
            continue
        path = project / rel
        if (
            kind == "file"
            and path.is_file()
            and not path.is_symlink()
            and path.read_bytes() == content
        ):
            continue
        if kind == "link" and path.is_symlink() and os.readlink(path) == content:
            continue
        wanted = content if isinstance(content, bytes) else str(content).encode()
        assert wanted in archive.get(rel, []), f"{rel} is neither in place nor in the archive"


def corrupt_missing_folders(p: Path) -> None:
    shutil.rmtree(p / "backend/data/live_data/markets")
    shutil.rmtree(p / USER / "accounts")


def corrupt_truncated_token(p: Path) -> None:
    (p / USER / "auth_tokens.json").write_text('{"token": "abc", "exp')


def corrupt_binary_token(p: Path) -> None:
    (p / USER / "device_tokens.json").write_bytes(b"\x00\xff\xfe binary \x01")


def corrupt_empty_manifest(p: Path) -> None:
    (p / MANIFEST).write_text("")


def corrupt_duplicate_port_manifest(p: Path) -> None:
    data = json.loads((p / MANIFEST).read_text())
    data["watchdog_services"]["db_poller"]["port"] = data["watchdog_services"][
        "btc_price_watchdog"
    ]["port"]
    (p / MANIFEST).write_text(json.dumps(data))


def corrupt_manifest_not_json(p: Path) -> None:
    (p / MANIFEST).write_text("<<<<<<< HEAD\nnot json at all\n")


DEEP = "[" * 100_000  # json.loads raises RecursionError on it


def corrupt_manifest_nested_deep(p: Path) -> None:
    (p / MANIFEST).write_text(DEEP)


def corrupt_manifest_port_of_5000_digits(p: Path) -> None:
    text = (p / MANIFEST).read_text().replace('"port": 3000', '"port": ' + "9" * 5000, 1)
    assert "9" * 5000 in text
    (p / MANIFEST).write_text(text)


def corrupt_config_agents_a_list(p: Path) -> None:
    (p / CONFIG).write_text('{"agents": []}')


def corrupt_config_nested_deep(p: Path) -> None:
    (p / CONFIG).write_text(DEEP)


def corrupt_token_nested_deep(p: Path) -> None:
    (p / USER / "auth_tokens.json").write_text(DEEP)


CRASHED_BEFORE = (
    "manifest_nested_deep",
    "manifest_port_of_5000_digits",
    "config_agents_a_list",
    "config_nested_deep",
    "token_nested_deep",
)


def corrupt_env_garbage_lines(p: Path) -> None:
    with (p / ".env").open("a") as env:
        env.write("this is not a binding\n'unterminated\n")


def corrupt_env_nul(p: Path) -> None:
    with (p / ".env").open("ab") as env:
        env.write(b"BROKEN=\x00\x00\n")


def corrupt_file_where_folder_belongs(p: Path) -> None:
    shutil.rmtree(p / USER / "active_trades")
    (p / USER / "active_trades").write_text("I am a file")


def corrupt_symlinked_credentials(p: Path) -> None:
    outside = p.parent / "outside-creds"
    outside.mkdir()
    (outside / "other.pem").write_text("NOT OURS")
    os.chmod(outside / "other.pem", 0o644)
    os.chmod(outside, 0o755)
    shutil.move(str(p / USER / "credentials"), str(p.parent / "moved-creds"))
    (p / USER / "credentials").symlink_to(outside)


def corrupt_modes_0777(p: Path) -> None:
    os.chmod(p / USER / "credentials", 0o777)
    os.chmod(p / USER / "credentials/kalshi-credentials/prod/key.pem", 0o777)
    os.chmod(p / USER / "auth_tokens.json", 0o777)
    os.chmod(p / ".env", 0o777)


CATALOGUE: dict[str, Callable[[Path], None]] = {
    name.removeprefix("corrupt_"): fn
    for name, fn in list(globals().items())
    if name.startswith("corrupt_") and callable(fn)
}


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_corruption_is_found_repaired_and_nothing_is_lost(name: str, ready: Path, cli: Cli) -> None:
    CATALOGUE[name](ready)
    before = tree_snapshot(ready)
    found = cli("check", "--skip-db-check", "--json")
    assert found.code == 1, f"check did not notice {name}:\n{found.out}"
    assert found.json()["result"]["checks"]
    repaired = cli("reset", "--json")
    assert repaired.code == 0, repaired.all
    after = cli("check", "--skip-db-check")
    assert after.code == 0, f"after reset of {name}:\n{after.all}"
    assert_no_byte_lost(before, ready)
    outside = ready.parent / "outside-creds"
    if outside.exists():
        assert (outside / "other.pem").read_text() == "NOT OURS"
        assert stat.S_IMODE((outside / "other.pem").stat().st_mode) == 0o644
        assert stat.S_IMODE(outside.stat().st_mode) == 0o755


@pytest.mark.parametrize("name", CRASHED_BEFORE)
def test_a_corrupt_file_is_a_finding_that_writes_nothing(name: str, ready: Path, cli: Cli) -> None:
    CATALOGUE[name](ready)
    before = tree_snapshot(ready)
    for args in (("check", "--skip-db-check"), ("reset", "--dry-run"), ("ports",)):
        run = cli(*args)
        assert run.code in (0, 1), run.all
        assert "unexpected error" not in run.all and "Traceback" not in run.all, run.all
        assert tree_snapshot(ready) == before, f"{args} wrote into the project"
    found = cli("check", "--skip-db-check", "--json").json()["result"]["checks"]
    [failed] = [check for check in found if check["status"] == "fail"]
    assert failed["fix"] and "reset" in failed["fix"]


def test_check_on_a_good_tree_passes_and_writes_nothing(ready: Path, cli: Cli) -> None:
    before = tree_snapshot(ready)
    run = cli("check", "--skip-db-check")
    assert run.code == 0, run.all
    assert "all good" in run.out
    assert tree_snapshot(ready) == before


def test_reset_on_a_good_tree_changes_nothing(ready: Path, cli: Cli) -> None:
    before = tree_snapshot(ready)
    run = cli("reset")
    assert run.code == 0 and "nothing to repair" in run.out
    assert tree_snapshot(ready) == before


def test_env_repair_says_which_lines_were_lost(ready: Path, cli: Cli) -> None:
    corrupt_env_garbage_lines(ready)
    run = cli("reset")
    assert run.code == 0
    assert "unreadable line(s)" in run.out
    assert "pw-for-reset-tests" not in run.all


def test_undo_restores_the_state_before_the_reset(ready: Path, cli: Cli) -> None:
    corrupt_truncated_token(ready)
    corrupt_file_where_folder_belongs(ready)
    corrupt_manifest_not_json(ready)
    before = {k: v for k, v in tree_snapshot(ready).items() if "archives" not in k}
    assert cli("reset").code == 0
    assert cli("reset", "--undo").code == 2  # no terminal: needs --yes
    undo = cli("reset", "--undo", "--yes")
    assert undo.code == 0, undo.all
    after = {k: v for k, v in tree_snapshot(ready).items() if "archives" not in k}
    assert after == before
    again = cli("reset", "--undo", "--yes")
    assert again.code == 1 and "no reset to undo" in again.err


def test_undo_refuses_to_overwrite_later_changes_without_force(ready: Path, cli: Cli) -> None:
    corrupt_truncated_token(ready)
    assert cli("reset").code == 0
    (ready / USER / "auth_tokens.json").write_text('{"new": "login since"}')
    refused = cli("reset", "--undo", "--yes")
    assert refused.code == 1 and "auth_tokens.json" in refused.err and "--force" in refused.err
    assert (ready / USER / "auth_tokens.json").read_text() == '{"new": "login since"}'
    forced = cli("reset", "--undo", "--yes", "--force")
    assert forced.code == 0, forced.all
    assert (ready / USER / "auth_tokens.json").read_text() == '{"token": "abc", "exp'
    assert b'{"new": "login since"}' in archived_files(ready)[f"{USER}/auth_tokens.json"]


def test_reset_all_needs_yes_without_a_terminal(ready: Path, cli: Cli) -> None:
    before = tree_snapshot(ready)
    run = cli("reset", "--all")
    assert run.code == 2 and "--yes" in run.err
    assert tree_snapshot(ready) == before


def test_reset_all_starts_fresh_but_keeps_credentials(ready: Path, cli: Cli) -> None:
    before = tree_snapshot(ready)
    run = cli("reset", "--all", "--yes")
    assert run.code == 0, run.all
    assert not (ready / USER / "trade_history/t1.json").exists()
    assert (
        ready / USER / "credentials/kalshi-credentials/prod/key.pem"
    ).read_text() == "PRIVATE KEY"
    assert cli("check", "--skip-db-check").code == 0
    assert_no_byte_lost(before, ready)


def test_reset_all_include_credentials_archives_them(ready: Path, cli: Cli) -> None:
    run = cli("reset", "--all", "--include-credentials", "--yes")
    assert run.code == 0, run.all
    assert not (ready / USER / "credentials/kalshi-credentials/prod/key.pem").exists()
    archived = archived_files(ready)
    assert archived[f"{USER}/credentials/kalshi-credentials/prod/key.pem"] == [b"PRIVATE KEY"]
    record = next((ready / "backend/data/archives").glob("*-reset/record.json"))
    assert json.loads(record.read_text())["entries"][0]["from"] == USER


def test_dry_run_reset_changes_nothing(ready: Path, cli: Cli) -> None:
    corrupt_modes_0777(ready)
    before = tree_snapshot(ready)
    run = cli("reset", "--all", "--dry-run")
    assert run.code == 0
    assert "archive" in run.out and "set mode" in run.out
    assert tree_snapshot(ready) == before


def test_bad_flag_combinations_exit_2(cli: Cli, ready: Path) -> None:
    for args in (["--include-credentials"], ["--force"], ["--undo", "--all"]):
        run = cli("reset", *args)
        assert run.code == 2, args


def test_reset_admits_what_it_could_not_repair(ready: Path, cli: Cli) -> None:
    env = ready / ".env"
    env.write_text(env.read_text().replace("POSTGRES_PORT=5432", "POSTGRES_PORT=abc"))
    run = cli("reset")
    assert run.code == 1
    assert "POSTGRES_PORT" in run.out and "left 1 problem" in run.out
    assert cli("check", "--skip-db-check").code == 1


def test_plain_output_lists_each_action_on_its_own_line_with_the_reason_below(
    ready: Path, cli: Cli
) -> None:
    # In a CI log a padded table ran to the longest reason; each action reads alone instead.
    (ready / ".env").chmod(0o644)
    (ready / "backend/core/config/config.json").write_text("garbage")
    run = cli("reset")
    assert run.code == 0, run.all
    lines = run.out.splitlines()
    start = lines.index("Actions:")
    assert lines[start + 1] == "  [done] set mode .env"
    assert lines[start + 2].startswith("      why: .env holds secrets; mode 0644 is too open")
    assert lines[start + 3] == "  [done] replace file backend/core/config/config.json"
    assert lines[start + 4].startswith(
        "      why: the config.json is unusable: not valid JSON at line 1, column 1"
    )
