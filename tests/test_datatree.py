"""The data tree: exact modes under any umask, idempotence, tightening, repairs that lose nothing.

Every test plans and applies on a real temporary tree through recio_setup.tree.fsops.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from recio_setup.result import ActionRecord
from recio_setup.runtime.paths import Paths
from recio_setup.tree.archive import Archive
from recio_setup.tree.datatree import (
    TABLE,
    PlanMode,
    TreePlan,
    deviation_checks,
    ensure_data_dirs,
    plan_tree,
    table,
    token_problem,
)
from recio_setup.tree.fsops import Tree
from recio_setup.tree.plan import ApplyContext, ArchiveEntry, ReplaceFile, SetMode, apply_plan
from tests.conftest import tree_snapshot

USER = "user_0001"
UDIR = f"backend/data/users/{USER}"
CRED = f"{UDIR}/credentials"
PROD = f"{CRED}/kalshi-credentials/prod"
TOKEN = f"{UDIR}/auth_tokens.json"


def plan(root: Path, mode: PlanMode = "init", user: str = USER) -> TreePlan:
    with Tree(root) as tree:
        return plan_tree(tree, Paths(root, user), mode)


def run(
    root: Path, mode: PlanMode = "init", user: str = USER
) -> tuple[TreePlan, list[ActionRecord]]:
    """Plan and apply the way init and reset do; returns the plan and what happened."""
    with Tree(root) as tree:
        the_plan = plan_tree(tree, Paths(root, user), mode)
        records = apply_plan(the_plan, ApplyContext(tree, Archive(tree, mode)))
    return the_plan, records


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def archived(root: Path, rel: str) -> Path:
    """Where the (only) archive run put rel, according to its record.json."""
    records = list((root / "backend/data/archives").glob("*/record.json"))
    assert len(records) == 1, records
    entries = json.loads(records[0].read_text())["entries"]
    (entry,) = [e for e in entries if e["from"] == rel]
    return root / entry["to"]


def initialised(root: Path) -> Path:
    _, records = run(root)
    assert all(r.state == "done" for r in records)
    return root


@pytest.mark.parametrize("umask", [0o000, 0o077, 0o022], ids=["umask000", "umask077", "umask022"])
def test_init_creates_every_entry_with_its_exact_mode(project: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        _, records = run(project)
        assert os.umask(umask) == umask  # applying never changes the process umask
    finally:
        os.umask(previous)
    assert records and all(r.state == "done" for r in records)
    for entry in table(USER):
        path = project / entry.rel
        assert path.is_dir() if entry.kind == "dir" else path.is_file(), entry.rel
        assert mode_of(path) == entry.mode, f"{entry.rel}: {mode_of(path):04o}"
    assert (project / TOKEN).read_bytes() == b"{}\n"
    assert (project / f"{UDIR}/device_tokens.json").read_bytes() == b"{}\n"
    assert mode_of(project / CRED) == 0o700 and mode_of(project / UDIR) == 0o700
    assert mode_of(project / "backend/data/coinbase") == 0o755
    assert mode_of(project / "logs") == 0o755


def test_table_lists_parents_before_children() -> None:
    seen: set[str] = set()
    for entry in table(USER):
        parent = str(Path(entry.rel).parent)
        assert parent == "." or parent in seen, entry.rel
        seen.add(entry.rel)
    assert len(seen) == len(TABLE)


@pytest.mark.parametrize("mode", ["init", "check", "reset"])
def test_a_second_run_plans_nothing(project: Path, mode: PlanMode) -> None:
    initialised(project)
    second = plan(project, mode)
    assert second.actions == [] and second.findings == []
    (check,) = deviation_checks(second)
    assert check.status == "ok"


def test_nothing_is_archived_when_nothing_was_wrong(project: Path) -> None:
    initialised(project)
    run(project)
    assert list((project / "backend/data/archives").iterdir()) == []


def test_too_open_credentials_and_stray_keys_are_tightened(project: Path) -> None:
    initialised(project)
    (project / CRED).chmod(0o777)
    key = project / PROD / "private_key.pem"
    key.write_bytes(b"-----BEGIN KEY-----\n")
    key.chmod(0o644)
    loose = project / CRED / "notes.txt"
    loose.write_bytes(b"x")
    loose.chmod(0o666)
    (project / CRED / "backup").mkdir()
    (project / CRED / "backup").chmod(0o755)
    (project / "backend/data/live_data").chmod(0o777)

    checked = plan(project, "check")
    reasons = {a.path: a.record("planned").reason for a in checked.actions}
    assert reasons[CRED] == "mode 0777 is too open for a credentials folder; will become 0700"
    assert "0644 is too open" in reasons[f"{PROD}/private_key.pem"]
    assert all(isinstance(a, SetMode) for a in checked.actions)
    statuses = {c.data["path"]: c.status for c in deviation_checks(checked)}
    assert statuses[CRED] == "fail" and statuses["backend/data/live_data"] == "warn"

    _, records = run(project)
    assert all(r.state == "done" for r in records)
    assert mode_of(project / CRED) == 0o700
    assert mode_of(key) == 0o600 and key.read_bytes() == b"-----BEGIN KEY-----\n"
    assert mode_of(loose) == 0o600
    assert mode_of(project / CRED / "backup") == 0o700
    assert mode_of(project / "backend/data/live_data") == 0o755
    assert plan(project).actions == []


def test_modes_the_user_made_stricter_are_never_loosened(project: Path) -> None:
    initialised(project)
    (project / PROD).chmod(0o500)
    (project / f"{UDIR}/accounts").chmod(0o750)
    (project / "logs").chmod(0o700)
    (project / TOKEN).chmod(0o400)
    key = project / CRED / "kalshi-credentials" / "demo" / "key.pem"
    key.write_bytes(b"k")
    key.chmod(0o400)
    (project / "backend/data/historical_data").chmod(0o2775)  # g+w and setgid removed

    the_plan, _ = run(project)
    assert [a.path for a in the_plan.actions] == ["backend/data/historical_data"]
    assert mode_of(project / PROD) == 0o500
    assert mode_of(project / f"{UDIR}/accounts") == 0o750
    assert mode_of(project / "logs") == 0o700
    assert mode_of(project / TOKEN) == 0o400 and mode_of(key) == 0o400
    assert mode_of(project / "backend/data/historical_data") == 0o755


def test_a_file_where_a_folder_belongs_is_archived_and_the_folder_created(project: Path) -> None:
    initialised(project)
    history = project / f"{UDIR}/trade_history"
    history.rmdir()
    history.write_bytes(b"trades,1,2,3\n")
    history.chmod(0o640)

    checked = plan(project, "check")
    assert isinstance(checked.actions[0], ArchiveEntry)
    (check,) = deviation_checks(checked)
    assert (
        check.fix == "run `recio-setup reset`" and "a file stands where the folder" in check.detail
    )

    _, records = run(project)
    assert [r.state for r in records] == ["done", "done"]
    assert history.is_dir() and mode_of(history) == 0o755
    kept = archived(project, f"{UDIR}/trade_history")
    assert kept.read_bytes() == b"trades,1,2,3\n" and mode_of(kept) == 0o640


def test_a_folder_where_a_token_file_belongs_is_archived(project: Path) -> None:
    initialised(project)
    (project / TOKEN).unlink()
    (project / TOKEN).mkdir()
    (project / TOKEN / "inside").write_bytes(b"data")
    run(project)
    assert (project / TOKEN).read_bytes() == b"{}\n" and mode_of(project / TOKEN) == 0o600
    assert (archived(project, TOKEN) / "inside").read_bytes() == b"data"


@pytest.mark.parametrize(
    "content",
    [b"", b'{"session": "abc', b"\x00\x01\xfe\xff binary", b'{"a": 1}\x00', b"[]", b"  \n"],
    ids=["empty", "truncated", "binary", "nul", "not-object", "blank"],
)
def test_a_corrupt_token_file_is_archived_byte_identical_and_replaced(
    project: Path, content: bytes
) -> None:
    initialised(project)
    (project / TOKEN).write_bytes(content)
    (project / TOKEN).chmod(0o644)

    checked = plan(project, "check")
    (action,) = checked.actions
    assert isinstance(action, ReplaceFile) and "will be replaced" in action.record("planned").reason
    assert (project / TOKEN).read_bytes() == content  # planning changed nothing

    _, records = run(project, "init")
    assert [r.state for r in records] == ["done"]
    assert (project / TOKEN).read_bytes() == b"{}\n" and mode_of(project / TOKEN) == 0o600
    kept = archived(project, TOKEN)
    # Byte-identical, and no more readable than the live token file it replaced.
    assert kept.read_bytes() == content and mode_of(kept) == 0o600
    assert plan(project, "check").actions == []


def test_a_valid_token_file_keeps_its_content(project: Path) -> None:
    initialised(project)
    (project / TOKEN).write_bytes(b'{"device": "abc"}\n')
    (project / TOKEN).chmod(0o664)
    run(project)
    assert (project / TOKEN).read_bytes() == b'{"device": "abc"}\n'
    assert mode_of(project / TOKEN) == 0o600


def test_token_problem_names_the_cause() -> None:
    assert token_problem(b"{}") is None
    assert token_problem(b"") == "it is empty"
    assert token_problem(b"{\x00}") == "it contains NUL bytes"
    assert token_problem(b"\xff\xfe") == "it is not UTF-8 text"
    assert "not valid JSON" in (token_problem(b'{"a":') or "")


def test_other_users_are_left_untouched(project: Path) -> None:
    other = project / "backend/data/users/user_0002"
    (other / "credentials").mkdir(parents=True)
    (other / "credentials").chmod(0o777)
    (other / "auth_tokens.json").write_bytes(b"not json")
    (other / "auth_tokens.json").chmod(0o666)
    before = tree_snapshot(other)
    run(project, "reset")
    assert tree_snapshot(other) == before
    run(project, "init", user="user_0002")
    assert mode_of(other / "credentials") == 0o700
    assert (other / "credentials/kalshi-credentials/prod").is_dir()


def test_check_plans_only_and_lists_each_deviation_with_its_fix(project: Path) -> None:
    initialised(project)
    (project / "backend/data/live_data/markets/kalshi").rmdir()
    (project / CRED).chmod(0o755)
    (project / TOKEN).write_bytes(b"{")
    before = tree_snapshot(project)
    checks = deviation_checks(plan(project, "check"))
    assert tree_snapshot(project) == before
    by_path = {c.data["path"]: c for c in checks}
    assert set(by_path) == {"backend/data/live_data/markets/kalshi", CRED, TOKEN}
    assert by_path["backend/data/live_data/markets/kalshi"].fix == "run `recio-setup init`"
    assert by_path[TOKEN].fix == "run `recio-setup reset`"
    assert all(c.status == "fail" and c.detail for c in checks)


def test_a_missing_tree_is_one_deviation_per_top_folder(project: Path) -> None:
    checks = deviation_checks(plan(project, "check"))
    assert [c.data["path"] for c in checks] == ["backend", "logs"]
    assert f"(and {len(TABLE) - 2} entries inside it)" in checks[0].detail


def test_ensure_data_dirs_creates_the_tree_and_then_changes_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ensure_data_dirs(Paths(project))
    first = tree_snapshot(project)
    assert mode_of(project / CRED) == 0o700
    monkeypatch.setenv("REC_PROJECT_ROOT", str(project))
    ensure_data_dirs()
    assert tree_snapshot(project) == first


def test_services_starting_together_all_get_a_complete_tree(project: Path) -> None:
    errors: list[BaseException] = []

    def start_service() -> None:
        try:
            ensure_data_dirs(Paths(project))
        except BaseException as exc:  # collected so the assertion below names it
            errors.append(exc)

    workers = [threading.Thread(target=start_service) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert plan(project, "check").actions == []
    assert list((project / "backend/data/archives").iterdir()) == []
