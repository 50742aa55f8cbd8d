"""The data tree never trusts a symlink: outside folders keep their modes and content, a symlink
swapped in after planning is not followed, and a FIFO or a link inside credentials is never opened.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from recio_setup.result import ActionRecord
from recio_setup.tree.archive import Archive
from recio_setup.tree.datatree import PlanMode, deviation_checks
from recio_setup.tree.fsops import Tree
from recio_setup.tree.plan import ApplyContext, ArchiveEntry, MakeDir, Plan, apply_plan
from tests.conftest import tree_snapshot
from tests.test_datatree import CRED, PROD, TOKEN, UDIR, archived, initialised, mode_of, plan, run


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the project, shaped like a credentials folder someone linked in."""
    folder = tmp_path / "outside"
    folder.mkdir()
    folder.chmod(0o755)
    key = folder / "key.pem"
    key.write_bytes(b"outside secret\n")
    key.chmod(0o644)
    (folder / "kalshi-credentials").mkdir()
    (folder / "kalshi-credentials").chmod(0o777)
    return folder


def apply(root: Path, the_plan: Plan, command: str = "init") -> list[ActionRecord]:
    with Tree(root) as tree:
        return apply_plan(the_plan, ApplyContext(tree, Archive(tree, command)))


def link_in_place_of(path: Path, target: Path) -> None:
    """Replace whatever is at path by a symlink (the original is moved aside, not deleted)."""
    path.rename(path.with_name(path.name + ".aside"))
    path.symlink_to(target)


@pytest.mark.parametrize("mode", ["init", "check"])
def test_a_symlinked_credentials_folder_is_reported_and_left(
    project: Path, outside: Path, mode: PlanMode
) -> None:
    initialised(project)
    link_in_place_of(project / CRED, outside)
    before = tree_snapshot(outside)

    the_plan, records = run(project, mode)
    assert not any(a.path.startswith(CRED) for a in the_plan.actions)
    (finding,) = the_plan.findings
    assert finding.status == "fail" and finding.data["path"] == CRED
    assert finding.fix == "`recio-setup reset` moves the link into the archive"
    assert "symlink" in finding.detail and str(outside) in finding.detail
    assert finding in deviation_checks(the_plan)
    assert records == []
    assert tree_snapshot(outside) == before
    assert (project / CRED).is_symlink()


def test_reset_archives_the_link_itself_and_creates_real_credentials(
    project: Path, outside: Path
) -> None:
    initialised(project)
    link_in_place_of(project / CRED, outside)
    before = tree_snapshot(outside)

    the_plan, records = run(project, "reset")
    assert isinstance(the_plan.actions[0], ArchiveEntry) and the_plan.actions[0].path == CRED
    assert all(r.state == "done" for r in records)
    assert tree_snapshot(outside) == before
    kept = archived(project, CRED)
    assert kept.is_symlink() and Path(os.readlink(kept)) == outside
    assert not (project / CRED).is_symlink() and mode_of(project / CRED) == 0o700
    for sub in ("kalshi-credentials", "kalshi-credentials/prod", "kalshi-credentials/demo"):
        assert mode_of(project / CRED / sub) == 0o700
    assert plan(project, "check").actions == []


def test_a_symlinked_data_folder_blocks_everything_beneath_it(
    project: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / "backend").mkdir()
    (project / "backend/data").symlink_to(elsewhere)
    the_plan, _ = run(project, "init")
    assert [a.path for a in the_plan.actions] == ["logs"]
    assert [f.data["path"] for f in the_plan.findings] == ["backend/data"]
    assert list(elsewhere.iterdir()) == []


def test_a_symlinked_token_file_is_never_read_or_written(project: Path, tmp_path: Path) -> None:
    initialised(project)
    target = tmp_path / "tokens.json"
    target.write_bytes(b"corrupt{")
    target.chmod(0o666)
    link_in_place_of(project / TOKEN, target)
    modes: tuple[PlanMode, ...] = ("init", "check")
    for mode in modes:
        the_plan, _ = run(project, mode)
        assert the_plan.actions == [] and the_plan.findings[0].data["path"] == TOKEN
    run(project, "reset")
    assert (project / TOKEN).read_bytes() == b"{}\n" and mode_of(project / TOKEN) == 0o600
    assert target.read_bytes() == b"corrupt{" and mode_of(target) == 0o666


def test_a_chmod_planned_before_a_symlink_swap_is_not_followed(
    project: Path, outside: Path
) -> None:
    initialised(project)
    (project / CRED).chmod(0o777)
    (project / PROD / "key.pem").write_bytes(b"k")
    (project / PROD / "key.pem").chmod(0o644)
    the_plan = plan(project, "init")
    assert {a.path for a in the_plan.actions} == {CRED, f"{PROD}/key.pem"}
    outside.chmod(0o777)
    before = tree_snapshot(outside)

    link_in_place_of(project / CRED, outside)
    records = apply(project, the_plan)
    assert [r.state for r in records] == ["failed", "failed"]
    assert tree_snapshot(outside) == before
    assert mode_of(outside) == 0o777


def test_a_symlink_swapped_in_under_a_key_is_not_followed(project: Path, outside: Path) -> None:
    initialised(project)
    (project / PROD / "key.pem").write_bytes(b"k")
    (project / PROD / "key.pem").chmod(0o644)
    the_plan = plan(project)
    before = tree_snapshot(outside)
    link_in_place_of(project / PROD, outside)  # outside holds its own key.pem at 0644
    (record,) = apply(project, the_plan)
    assert record.state == "failed" and record.detail
    assert tree_snapshot(outside) == before


def test_folders_planned_on_an_empty_tree_are_not_created_through_a_swapped_link(
    project: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    the_plan = plan(project)
    assert all(isinstance(a, MakeDir) or a.path.endswith(".json") for a in the_plan.actions)
    (project / "backend").mkdir()
    (project / "backend/data").symlink_to(elsewhere)
    records = apply(project, the_plan)
    assert list(elsewhere.iterdir()) == []
    states = {r.path: r.state for r in records}
    assert states["backend/data"] == "failed" and states[CRED] == "failed"
    assert states["logs"] == "done"


def test_a_token_file_swapped_for_a_link_after_planning_leaves_the_target_alone(
    project: Path, tmp_path: Path
) -> None:
    initialised(project)
    (project / TOKEN).write_bytes(b"{broken")
    the_plan = plan(project)
    target = tmp_path / "elsewhere.json"
    target.write_bytes(b"{broken elsewhere")
    target.chmod(0o644)
    link_in_place_of(project / TOKEN, target)
    apply(project, the_plan)
    assert target.read_bytes() == b"{broken elsewhere" and mode_of(target) == 0o644
    assert not (project / TOKEN).is_symlink()


def test_a_fifo_where_a_token_file_belongs_does_not_hang(project: Path) -> None:
    initialised(project)
    (project / TOKEN).unlink()
    os.mkfifo(project / TOKEN, 0o600)
    planned: list[object] = []
    worker = threading.Thread(target=lambda: planned.append(plan(project, "check")), daemon=True)
    worker.start()
    worker.join(30)  # a guard against a hang, not a timing measurement
    assert planned, "planning blocked on the FIFO"
    _, records = run(project, "init")
    assert [r.state for r in records] == ["done", "done"]
    assert (project / TOKEN).read_bytes() == b"{}\n"
    assert archived(project, TOKEN).is_fifo()


def test_links_and_fifos_inside_credentials_are_reported_never_opened(
    project: Path, tmp_path: Path
) -> None:
    initialised(project)
    target = tmp_path / "real-key.pem"
    target.write_bytes(b"secret")
    target.chmod(0o644)
    (project / PROD / "key.pem").symlink_to(target)
    os.mkfifo(project / PROD / "pipe", 0o644)
    the_plan, records = run(project)
    assert records == []
    assert {f.data["path"] for f in the_plan.findings} == {f"{PROD}/key.pem", f"{PROD}/pipe"}
    assert all(f.status == "warn" for f in the_plan.findings)
    assert mode_of(target) == 0o644 and mode_of(project / PROD / "pipe") == 0o644


def test_nothing_under_credentials_reaches_the_plan_text(project: Path) -> None:
    initialised(project)
    secret = "SUPERSECRETKEYMATERIAL"
    key = project / PROD / "key.pem"
    key.write_text(secret)
    key.chmod(0o666)
    the_plan = plan(project, "check")
    text = repr(the_plan) + repr(deviation_checks(the_plan))
    assert secret not in text and "key.pem" in text
    assert key.read_text() == secret


def test_user_folder_symlink_leaves_other_user_folders_alone(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / "backend/data/users").mkdir(parents=True)
    (project / UDIR).symlink_to(elsewhere)
    run(project, "reset")
    assert list(elsewhere.iterdir()) == []
    assert (project / CRED).is_dir() and not (project / UDIR).is_symlink()
