"""The data tree as one table of entries, like systemd-tmpfiles, and the plan that repairs it.

`TABLE` lists every folder and file the services expect under the project (path template, kind,
mode, initial content). `plan_tree` inspects exactly those entries, plus the names directly inside
the credentials folders, without following any symlink, and returns the actions that make the tree
match. It never walks live_data or trade_history, so its cost does not grow with the data there.
Nothing under credentials/ is read while planning: those entries are only lstat-ed; applying
chmods them, or copies a hard-linked one into a private file (SeparateLink).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Literal

from recio_setup.errors import PROGRAM, RecioError, StepFailed
from recio_setup.result import Check, Repair, Status
from recio_setup.runtime.jsondoc import NotJson, load_json
from recio_setup.runtime.paths import (
    ARCHIVES_REL,
    CREDENTIALS_FOLDER,
    DATA_REL,
    KALSHI_CREDENTIALS_FOLDER,
    KALSHI_ENVIRONMENTS,
    LOCKS_REL,
    LOGS_REL,
    SHARED_DATA_FOLDERS,
    USER_DATA_FOLDERS,
    USERS_REL,
    Paths,
    default_paths,
)
from recio_setup.runtime.readfile import TOKEN_LIMIT, size_text
from recio_setup.tree.archive import Archive
from recio_setup.tree.fsentry import Found, permission_hint
from recio_setup.tree.fsops import Tree
from recio_setup.tree.modes import EntryKind, mode_to_set, what_is_wrong
from recio_setup.tree.plan import (
    Action,
    ApplyContext,
    ArchiveEntry,
    MakeDir,
    Plan,
    ReplaceFile,
    SetMode,
    WriteFile,
    apply_plan,
    separate_link,
)
from recio_setup.tree.runlock import RunLock

PlanMode = Literal["init", "check", "reset"]
EMPTY_JSON = b"{}\n"
FIX_INIT = f"run `{PROGRAM} init`"
FIX_RESET = f"run `{PROGRAM} reset`"
FIX_SYMLINK = f"`{PROGRAM} reset` moves the link into the archive"
ENSURE_LOCK_TIMEOUT = 10.0


@dataclass(frozen=True)
class Entry:
    """One line of the table. `rel` may hold {user}; `label` names it in messages."""

    rel: str
    kind: Literal["dir", "file"]
    mode: int
    label: str = "folder"
    content: bytes = b""
    is_token_json: bool = False
    is_credentials: bool = False

    def for_user(self, user: str) -> Entry:
        return replace(self, rel=self.rel.format(user=user))


def _dirs(base: str, names: tuple[str, ...], mode: int = 0o755) -> list[Entry]:
    return [Entry(f"{base}/{name}", "dir", mode) for name in names]


_USER = f"{USERS_REL}/{{user}}"
_CREDENTIALS = f"{_USER}/{CREDENTIALS_FOLDER}"


def _token(name: str) -> Entry:
    return Entry(f"{_USER}/{name}", "file", 0o600, "token file", EMPTY_JSON, is_token_json=True)


def _credentials(rel: str) -> Entry:
    return Entry(rel, "dir", 0o700, label="credentials folder", is_credentials=True)


# Parents come before children. archives/ and locks/ come early: the archive and the run lock
# create them on first use, and a later "create" would then meet a folder that just appeared.
TABLE: tuple[Entry, ...] = (
    Entry("backend", "dir", 0o755),
    Entry(DATA_REL, "dir", 0o755),
    Entry(ARCHIVES_REL, "dir", 0o755),
    Entry(LOCKS_REL, "dir", 0o755),
    Entry(USERS_REL, "dir", 0o755),
    Entry(_USER, "dir", 0o700, label="private user folder"),
    *_dirs(_USER, USER_DATA_FOLDERS),
    _credentials(_CREDENTIALS),
    _credentials(f"{_USER}/{KALSHI_CREDENTIALS_FOLDER}"),
    *(_credentials(f"{_USER}/{KALSHI_CREDENTIALS_FOLDER}/{env}") for env in KALSHI_ENVIRONMENTS),
    _token("auth_tokens.json"),
    _token("device_tokens.json"),
    *(Entry(rel, "dir", 0o755) for rel in SHARED_DATA_FOLDERS),
    Entry(LOGS_REL, "dir", 0o755),
)


def table(user: str) -> list[Entry]:
    """The table for one user; other users' folders are not in it, so they are never touched."""
    return [entry.for_user(user) for entry in TABLE]


@dataclass
class TreePlan(Plan):
    """A Plan plus what was found at each inspected path and how serious each deviation is."""

    found: dict[str, Found] = field(default_factory=dict)
    severity: dict[str, Status] = field(default_factory=dict)
    entries: int = 0


def _is_below(rel: str, folders: set[str]) -> bool:
    return any(str(parent) in folders for parent in PurePosixPath(rel).parents)


def _kind_word(found: Found) -> str:
    return {"dir": "a folder", "file": "a file", "symlink": "a symlink"}.get(
        found.kind, "a special file (FIFO, socket or device)"
    )


def token_problem(data: bytes) -> str | None:
    """Why these bytes are not a usable token file, or None when they are a JSON object."""
    if not data.strip():
        return "it is empty"
    if b"\x00" in data:
        return "it contains NUL bytes"
    try:
        value = load_json(data.decode("utf-8"))
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    except NotJson as exc:
        return f"its JSON is unusable: {exc.problem}"
    return None if isinstance(value, dict) else "it is valid JSON but not an object"


class _Planner:
    def __init__(self, tree: Tree, mode: PlanMode, entries: list[Entry]) -> None:
        self.tree = tree
        self.mode = mode
        self.plan = TreePlan()
        self.table_paths = {entry.rel for entry in entries}
        self.created: set[str] = set()  # folders the plan (re)creates: their children are new too
        self.unreachable: set[str] = set()  # never inspected through

    def add(self, action: Action, status: Status = "fail") -> None:
        self.plan.add(action)
        if self.plan.severity.get(action.path) != "fail":
            self.plan.severity[action.path] = status

    def finding(
        self, rel: str, status: Status, detail: str, fix: str | None, repair: Repair | None
    ) -> None:
        found = self.plan.found.get(rel)
        data = {"path": rel, **({"found": found.describe()} if found else {})}
        self.plan.note(Check("tree.entry", f"data tree: {rel}", status, detail, fix, data, repair))

    def visit(self, entry: Entry) -> None:
        self.plan.entries += 1
        if _is_below(entry.rel, self.unreachable):
            return
        if _is_below(entry.rel, self.created):
            self.create(entry, "its parent folder is new")
            return
        found = self.tree.inspect(entry.rel)
        self.plan.found[entry.rel] = found
        if found.kind == "missing":
            self.create(entry, "missing")
        elif found.kind == "blocked":
            self.unreachable.add(entry.rel)
            detail = f"not inspected: {found.describe()}"
            self.finding(entry.rel, "fail", detail, FIX_SYMLINK, "reset")
        elif found.kind == "denied":
            self.unreachable.add(entry.rel)
            self.denied(entry.rel, found.blocked_by or "")
        elif found.kind == "symlink":
            self.symlink(entry, found)
        elif found.kind != entry.kind:
            why = f"{_kind_word(found)} stands where the {entry.label} belongs"
            self.add(ArchiveEntry(entry.rel, why))
            self.create(entry, "what stood there goes into the archive")
        else:
            self.existing(entry, found)

    def denied(self, rel: str, blocker: str) -> None:
        """An entry this user cannot reach; when this plan gives the owner back a folder on the
        way, applying it makes the entry reachable for the next plan."""
        repair: Repair | None
        if any(a.path == blocker and isinstance(a, SetMode) for a in self.plan.actions):
            detail = f"not inspected yet: {blocker} must get its mode back first"
            fix, repair = f"{FIX_INIT} (it fixes {blocker}, then what is inside)", "init"
        else:
            detail = f"not inspected: permission denied on {blocker or 'the project folder'}"
            fix, repair = permission_hint(self.tree.root), None
        self.finding(rel, "fail", detail, fix, repair)
        self.plan.findings[-1].data["cause"] = "permission"

    def create(self, entry: Entry, why: str) -> None:
        if entry.kind == "dir":
            self.created.add(entry.rel)
            self.add(MakeDir(entry.rel, why, mode=entry.mode, label=entry.label))
        else:
            file = WriteFile(entry.rel, why, entry.content, entry.mode, label=entry.label)
            self.add(file)

    def symlink(self, entry: Entry, found: Found) -> None:
        what = f"a symlink (to {found.link_target}) stands where the {entry.label} belongs"
        if self.mode != "reset":
            self.unreachable.add(entry.rel)
            detail = f"{what}; it is not followed and nothing beneath it was checked"
            self.finding(entry.rel, "fail", detail, FIX_SYMLINK, "reset")
            return
        reason = f"{what} (the link itself is archived; its target is never touched)"
        self.add(ArchiveEntry(entry.rel, reason))
        self.create(entry, "in place of the symlink")

    def existing(self, entry: Entry, found: Found) -> None:
        if entry.is_token_json and self.token_replaced(entry, found):
            return
        self.tighten(entry.rel, found, entry.mode, entry.label, critical=entry.mode != 0o755)
        if entry.is_credentials:
            self.credentials_contents(entry.rel)

    def tighten(self, rel: str, found: Found, wanted: int, label: str, *, critical: bool) -> None:
        kind: EntryKind = "dir" if found.kind == "dir" else "file"
        new = mode_to_set(found.mode or 0, wanted, kind)
        if found.shares_its_inode:
            mode = (found.mode or 0) if new is None else new
            self.add(separate_link(rel, found, mode, label))
            return
        if new is None:
            return
        if not found.changeable:
            detail = f"mode {found.mode_text} is wrong for a {label}, and it is not yours to change"
            self.finding(rel, "fail", detail, permission_hint(self.tree.root), None)
            return
        why = what_is_wrong(found.mode or 0, new)
        reason = f"mode {found.mode_text} is {why} for a {label}"
        status: Status = "fail" if critical or why != "too open" else "warn"
        self.add(SetMode(rel, reason, mode=new, expect=found), status)

    def token_replaced(self, entry: Entry, found: Found) -> bool:
        if (found.size or 0) > TOKEN_LIMIT:
            detail = f"larger than {size_text(TOKEN_LIMIT)}; its content was not checked"
            self.finding(entry.rel, "warn", detail, None, None)
            return False
        try:
            problem = token_problem(self.tree.read_file(entry.rel, TOKEN_LIMIT))
        except (RecioError, OSError) as exc:
            detail = f"could not be read: {getattr(exc, 'message', None) or exc}"
            self.finding(entry.rel, "fail", detail, FIX_RESET, "reset")
            return True
        if problem is None:
            return False
        self.add(ReplaceFile(entry.rel, problem, content=entry.content, mode=entry.mode))
        return True

    def credentials_contents(self, folder: str) -> None:
        """Names directly in a credentials folder: lstat only, never read, never followed."""
        try:
            listing = self.tree.list_entries(folder)
        except (RecioError, OSError) as exc:
            detail = f"could not be listed: {getattr(exc, 'message', None) or exc}"
            self.finding(folder, "fail", detail, None, None)
            return
        for name, found in listing:
            rel = f"{folder}/{name}"
            if rel in self.table_paths:
                continue  # a table entry of its own, visited in its turn
            self.plan.found[rel] = found
            if found.kind in ("file", "dir"):
                wanted = 0o600 if found.kind == "file" else 0o700
                label = "file under credentials" if found.kind == "file" else "credentials folder"
                self.tighten(rel, found, wanted, label, critical=True)
            else:
                detail = f"{_kind_word(found)} inside credentials is left as it is, never followed"
                self.finding(rel, "warn", detail, None, None)


def plan_tree(tree: Tree, paths: Paths, mode: PlanMode) -> TreePlan:
    """The actions that make the data tree match the table, and findings for what mode leaves.

    Read-only: it lstat-s the table's entries and the names directly in the credentials folders,
    and reads the token files (size-limited, never through a symlink). init and check leave a
    symlink standing where an entry belongs (a finding, nothing planned beneath it); reset moves
    the link itself into the archive. check applies nothing: its plan's actions are the deviations.
    """
    entries = table(paths.user)
    planner = _Planner(tree, mode, entries)
    for entry in entries:
        planner.visit(entry)
    return planner.plan


def deviation_checks(plan: TreePlan) -> list[Check]:
    """One Check per deviating path (actions grouped; children of a new folder folded in), then
    the plan's findings; a single ok Check when the tree is as the table wants it."""
    groups: dict[str, list[Action]] = {}
    for action in plan.actions:
        groups.setdefault(action.path, []).append(action)
    checks: list[Check] = []
    new_folders: dict[str, int] = {}
    for rel, actions in groups.items():
        parent = next((p for p in new_folders if _is_below(rel, {p})), None)
        if parent is not None:
            new_folders[parent] += 1
            continue
        if any(isinstance(action, MakeDir) for action in actions):
            new_folders[rel] = 0
        checks.append(_group_check(plan, rel, actions))
    for check in checks:
        inside = new_folders.get(check.data["path"], 0)
        if inside:
            check.detail += f" (and {inside} entries inside it)"
    checks += plan.findings
    if not checks:
        detail = f"all {plan.entries} entries present, with the right modes"
        checks.append(Check("tree.entries", "data tree", "ok", detail))
    return checks


def _group_check(plan: TreePlan, rel: str, actions: list[Action]) -> Check:
    found = plan.found.get(rel, Found("missing"))
    reasons = "; then ".join(action.reason for action in actions)
    moves = any(isinstance(action, (ArchiveEntry, ReplaceFile)) for action in actions)
    data = {"path": rel, "found": found.describe(), "actions": [a.kind for a in actions]}
    return Check(
        "tree.entry",
        f"data tree: {rel}",
        plan.severity.get(rel, "fail"),
        reasons,
        FIX_RESET if moves else FIX_INIT,
        data,
        "reset" if moves else "init",
    )


def ensure_data_dirs(paths: Paths | None = None) -> None:
    """Create and repair the data tree the way init does (the REC.IO v2 runtime name).

    Services call it at start-up: when the tree is already right it only inspects; otherwise it
    takes the run lock, plans again and applies, archiving anything it replaces under
    backend/data/archives/<timestamp>-ensure/. Raises StepFailed naming any step that failed.
    """
    paths = paths or default_paths()
    with Tree(paths.root) as tree:
        if plan_tree(tree, paths, "init").empty:
            return
        with RunLock(tree, paths.lock_rel, timeout=ENSURE_LOCK_TIMEOUT):
            plan = plan_tree(tree, paths, "init")
            context = ApplyContext(tree, Archive(tree, "ensure"))
            records = apply_plan(plan, context)
    failed = [f"{r.path}: {r.detail}" for r in records if r.state == "failed"]
    if failed:
        raise StepFailed(
            "could not prepare the data tree: " + "; ".join(failed),
            hint=f"run `{PROGRAM} check` to see the tree, `{PROGRAM} reset` to repair it",
        )
