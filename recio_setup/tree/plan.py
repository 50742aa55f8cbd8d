"""Inspect -> plan -> apply -> report.

Commands inspect the tree and build a Plan: small Actions, each with the reason it is needed,
plus findings that need no action (or that this command must not act on). `--dry-run` reports
the plan; init and reset apply it through fsops. An action that meets a changed or unsafe tree
fails alone; the others still run and the report names it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from recio_setup.errors import RecioError
from recio_setup.result import ActionRecord, Check
from recio_setup.tree.archive import Archive
from recio_setup.tree.fsentry import Conflict, Found
from recio_setup.tree.fsops import Tree
from recio_setup.tree.modes import mode_to_set


@dataclass
class ApplyContext:
    tree: Tree
    archive: Archive


@dataclass
class Action(ABC):
    path: str
    reason: str  # why it is needed, as the planner found it ("mode 0777 is too open ...")
    kind: ClassVar[str] = "action"

    @abstractmethod
    def apply(self, ctx: ApplyContext) -> str | None:
        """Do it; return an optional detail for the report."""

    @abstractmethod
    def outcome(self, done: bool) -> str:
        """What it does, as the plan says it ("will become 0700") or as done ("now 0700")."""

    def detail(self) -> str | None:
        return None

    def record(self, state: str, detail: str | None = None) -> ActionRecord:
        outcome = self.outcome(done=state == "done")
        text = detail or self.detail()
        if text and (text in self.reason or text in outcome):
            text = None  # the reason already says it
        reason = f"{self.reason}; {outcome}"
        return ActionRecord(self.kind, self.path, reason, state, text)  # type: ignore[arg-type]


@dataclass
class MakeDir(Action):
    mode: int = 0o755
    label: str = "folder"
    kind: ClassVar[str] = "create folder"

    def outcome(self, done: bool) -> str:
        created = "created" if done else "will be created"
        return f"{created} as a {self.label} with mode {self.mode:04o}"

    def apply(self, ctx: ApplyContext) -> str | None:
        try:
            ctx.tree.make_dir(self.path, self.mode)
        except Conflict:
            # Another step of this run (the archive, the lock) may have made it: a real folder is
            # what we wanted, so only make sure its mode is right.
            found = ctx.tree.inspect(self.path)
            if found.kind != "dir":
                raise
            new = mode_to_set(found.mode or 0, self.mode, "dir")
            if new is not None:
                ctx.tree.chmod(self.path, new, found)
            return "already there"
        return None


@dataclass
class SetMode(Action):
    mode: int = 0o600
    expect: Found | None = None
    kind: ClassVar[str] = "set mode"

    def outcome(self, done: bool) -> str:
        return f"{'now' if done else 'will become'} {self.mode:04o}"

    def detail(self) -> str | None:
        before = self.expect.mode_text if self.expect else "?"
        return None if before in self.reason else f"was {before}"

    def apply(self, ctx: ApplyContext) -> str | None:
        ctx.tree.chmod(self.path, self.mode, self.expect)
        return None


@dataclass
class WriteFile(Action):
    """Create a file that does not exist yet (never replaces anything)."""

    content: bytes = b""
    mode: int = 0o644
    label: str = "file"
    kind: ClassVar[str] = "create file"

    def outcome(self, done: bool) -> str:
        created = "created" if done else "will be created"
        return f"{created} as a {self.label} with mode {self.mode:04o}"

    def detail(self) -> str:
        return f"{len(self.content)} bytes"

    def apply(self, ctx: ApplyContext) -> str | None:
        ctx.tree.write_file(self.path, self.content, self.mode)
        return None


@dataclass
class ReplaceFile(Action):
    """Swap a file for new content atomically; the old version goes into the archive first."""

    content: bytes = b""
    mode: int = 0o600
    kind: ClassVar[str] = "replace file"

    def outcome(self, done: bool) -> str:
        if done:  # apply's detail names where the previous version went
            return f"replaced (mode {self.mode:04o})"
        return f"will be replaced (mode {self.mode:04o}), the previous version kept in the archive"

    def apply(self, ctx: ApplyContext) -> str | None:
        return self.replace_with(ctx, self.content)

    def replace_with(self, ctx: ApplyContext, content: bytes) -> str:
        live = ctx.tree.inspect(self.path)
        tighter = (live.mode or 0) & self.mode
        if live.kind == "file" and not live.shares_its_inode and live.mode != tighter:
            # The archive must not expose what the live file protects (a 0644 .env's password);
            # the archived name shares this inode. An inode another name shares is not ours.
            ctx.tree.chmod(self.path, tighter, live)
        kept = ctx.archive.keep_copy(self.path, self.reason, recorded_as=live)
        ctx.tree.write_file(self.path, content, self.mode, replace=True)
        return f"previous version in {kept}"


# A hard-linked file is copied into its new inode in memory; beyond this it is left for the user.
SEPARATE_LIMIT = 64 << 20


@dataclass
class SeparateLink(ReplaceFile):
    """Give a file that shares its inode (a hard link) a private inode of its own.

    The name is archived (the other names keep the inode, its mode and content untouched) and a
    copy of the content, read when applied, takes its place with the mode the entry must have.
    """

    expect: Found | None = None
    kind: ClassVar[str] = "separate hard link"

    def outcome(self, done: bool) -> str:
        moved, put = ("moved", "put") if done else ("will be moved", "will be put")
        return (
            f"this name {moved} into the archive and a private copy with mode "
            f"{self.mode:04o} {put} in its place; the shared inode is left as it is"
        )

    def apply(self, ctx: ApplyContext) -> str | None:
        live = ctx.tree.inspect(self.path)
        if self.expect is None or (live.kind, live.dev, live.ino) != (
            "file",
            self.expect.dev,
            self.expect.ino,
        ):
            raise Conflict(f"{self.path} was replaced while this run was working; left as it is")
        content = ctx.tree.read_file(self.path, limit=SEPARATE_LIMIT + 1)
        if len(content) > SEPARATE_LIMIT:
            raise Conflict(
                f"{self.path} is larger than {SEPARATE_LIMIT >> 20} MiB; not copied, left as it is"
            )
        return self.replace_with(ctx, content)


def separate_link(rel: str, found: Found, mode: int, label: str) -> SeparateLink:
    """The repair of a file the tool keeps that has more than one hard link."""
    reason = (
        f"the {label} has {found.nlink} hard links: another name, maybe outside the project, "
        "shares its content and mode"
    )
    return SeparateLink(rel, reason, mode=mode, expect=found)


@dataclass
class ArchiveEntry(Action):
    """Move whatever stands at path (file, folder or the symlink itself) into the archive."""

    kind: ClassVar[str] = "archive"

    def outcome(self, done: bool) -> str:
        return f"{'moved' if done else 'will be moved'} into the archive"

    def apply(self, ctx: ApplyContext) -> str | None:
        return f"moved to {ctx.archive.move_in(self.path, self.reason)}"


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    findings: list[Check] = field(default_factory=list)

    def add(self, action: Action) -> None:
        self.actions.append(action)

    def note(self, finding: Check) -> None:
        self.findings.append(finding)

    def extend(self, other: Plan) -> None:
        self.actions.extend(other.actions)
        self.findings.extend(other.findings)

    @property
    def empty(self) -> bool:
        return not self.actions

    def planned(self) -> list[ActionRecord]:
        return [action.record("planned") for action in self.actions]


def apply_plan(plan: Plan, ctx: ApplyContext) -> list[ActionRecord]:
    records = []
    failed_paths: set[str] = set()
    for action in plan.actions:
        if action.path in failed_paths:
            # A later step on a path whose earlier step failed would act on the wrong thing.
            records.append(action.record("skipped", "an earlier step on this path failed"))
            continue
        try:
            detail = action.apply(ctx)
        except (RecioError, OSError) as exc:
            failed_paths.add(action.path)
            message = exc.message if isinstance(exc, RecioError) else f"{exc.strerror}"
            records.append(action.record("failed", message))
            continue
        records.append(action.record("done", detail))
    return records
