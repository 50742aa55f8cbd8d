"""reset repairs the folders its own archive lives in (backend/, backend/data/, archives/).

A symlink or file standing there is moved into an archive kept at the project root, the real
folder is created, and `reset --undo` puts the symlink back. Nothing outside the project changes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import Cli, tree_snapshot

INIT = ("--non-interactive", "--skip-db-check", "--host", "127.0.0.1")
ENV = {"POSTGRES_PASSWORD": "pw-for-archive-home"}
HOME_FOLDERS = ["backend", "backend/data", "backend/data/archives"]


def ready_project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    assert Cli(root)(*INIT, env=ENV).code == 0
    return root


def replace_with_symlink(root: Path, rel: str, outside: Path) -> None:
    """Move the real folder outside the project and leave a symlink to it in its place."""
    shutil.move(str(root / rel), str(outside))
    (root / rel).symlink_to(outside)


@pytest.mark.parametrize("rel", HOME_FOLDERS)
def test_reset_replaces_a_symlinked_archive_home_and_undo_puts_it_back(
    tmp_path: Path, rel: str
) -> None:
    root = ready_project(tmp_path)
    outside = tmp_path / "outside"
    replace_with_symlink(root, rel, outside)
    outside_before = tree_snapshot(outside)
    cli = Cli(root)

    reset = cli("reset", env=ENV)

    assert reset.code == 0, reset.all
    for folder in HOME_FOLDERS:
        assert (root / folder).is_dir() and not (root / folder).is_symlink(), folder
    assert tree_snapshot(outside) == outside_before
    (kept,) = root.glob(".recio-archive-*-reset")
    assert (kept / "files" / rel).is_symlink()
    assert cli("check", "--skip-db-check", env=ENV).code == 0

    undo = cli("reset", "--undo", "--yes", env=ENV)

    assert undo.code == 0, undo.all
    assert (root / rel).is_symlink() and (root / rel).resolve() == outside.resolve()
    assert tree_snapshot(outside) == outside_before


def test_a_file_where_backend_belongs_is_archived_and_replaced(tmp_path: Path) -> None:
    root = ready_project(tmp_path)
    shutil.move(str(root / "backend"), str(tmp_path / "moved-away"))
    (root / "backend").write_text("not a folder")

    reset = Cli(root)("reset", env=ENV)

    assert reset.code == 0, reset.all
    archived = list(root.glob(".recio-archive-*-reset/files/backend"))
    assert [p.read_text() for p in archived] == ["not a folder"]


def test_undo_with_a_symlinked_archives_folder_says_what_to_do(tmp_path: Path) -> None:
    root = ready_project(tmp_path)
    cli = Cli(root)
    assert cli("reset", "--all", "--yes", env=ENV).code == 0
    replace_with_symlink(root, "backend/data/archives", tmp_path / "elsewhere")

    undo = cli("reset", "--undo", "--yes", env=ENV)

    assert undo.code == 1, undo.all
    assert "no reset to undo" in undo.all
    assert "backend/data/archives is not the archive folder (symlink to" in undo.all
    assert "reset` moves it aside" in undo.all
    assert "Traceback" not in undo.all and "NotADirectory" not in undo.all


def test_a_record_naming_an_impossible_path_is_refused_not_a_crash(tmp_path: Path) -> None:
    root = ready_project(tmp_path)
    cli = Cli(root)
    (root / "backend/data/users/user_0001/auth_tokens.json").write_text("{")
    assert cli("reset", env=ENV).code == 0
    (record,) = root.glob("backend/data/archives/*-reset/record.json")
    record.write_text('{"command": "reset", "entries": [{"from": "a\\u0000b"}]}')

    undo = cli("reset", "--undo", "--yes", env=ENV)

    assert undo.code in (1, 2), undo.all
    assert "unexpected error" not in undo.all and "Traceback" not in undo.all
