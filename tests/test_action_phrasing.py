"""Each action kind says itself what it will do (a plan) and what it did (a report)."""

from __future__ import annotations

import pytest

from recio_setup.tree.configfiles import EnsureFolder
from recio_setup.tree.fsentry import Found
from recio_setup.tree.leftovers import ArchiveLeftover
from recio_setup.tree.plan import (
    Action,
    ArchiveEntry,
    MakeDir,
    ReplaceFile,
    SeparateLink,
    SetMode,
    WriteFile,
)

WHY = "the reason"
PHRASES: list[tuple[Action, str, str]] = [
    (
        MakeDir("d", WHY, mode=0o700, label="credentials folder"),
        "will be created as a credentials folder with mode 0700",
        "created as a credentials folder with mode 0700",
    ),
    (
        WriteFile("f", WHY, b"{}\n", 0o600, label="token file"),
        "will be created as a token file with mode 0600",
        "created as a token file with mode 0600",
    ),
    (SetMode("f", WHY, 0o600, Found("file", 0o644)), "will become 0600", "now 0600"),
    (
        ReplaceFile("f", WHY, b"x", 0o644),
        "will be replaced (mode 0644), the previous version kept in the archive",
        "replaced (mode 0644)",
    ),
    (
        SeparateLink("f", WHY, b"", 0o600),
        "this name will be moved into the archive and a private copy with mode 0600 will be "
        "put in its place; the shared inode is left as it is",
        "this name moved into the archive and a private copy with mode 0600 put in its place; "
        "the shared inode is left as it is",
    ),
    (ArchiveEntry("f", WHY), "will be moved into the archive", "moved into the archive"),
    (ArchiveLeftover("f", WHY), "will be moved into the archive", "moved into the archive"),
    (
        EnsureFolder("d", WHY),
        "will be created with its missing parents, mode 0755",
        "created with its missing parents, mode 0755",
    ),
]


@pytest.mark.parametrize(("action", "planned", "done"), PHRASES, ids=lambda x: type(x).__name__)
def test_planned_and_done_phrasing(action: Action, planned: str, done: str) -> None:
    assert action.record("planned").reason == f"{WHY}; {planned}"
    assert action.record("done").reason == f"{WHY}; {done}"
    assert action.record("failed").reason == f"{WHY}; {planned}"


def test_every_action_kind_is_covered() -> None:
    def kinds(cls: type) -> set[type]:
        found = set()
        for sub in cls.__subclasses__():
            found |= {sub} | kinds(sub)
        return found

    assert kinds(Action) == {type(action) for action, _, _ in PHRASES}
