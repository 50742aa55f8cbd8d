"""Reading the project's .env safely and planning its update (used by init, check and reset)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from recio_setup.env.document import EnvDocument, masked_diff
from recio_setup.env.settings import ENV_ORDER, FIELDS
from recio_setup.errors import PROGRAM, UsageError
from recio_setup.runtime.env_values import env_text
from recio_setup.runtime.paths import Paths
from recio_setup.runtime.readfile import TEXT_LIMIT, size_text
from recio_setup.tree.fsentry import Found, env_link_target
from recio_setup.tree.fsops import Tree
from recio_setup.tree.modes import mode_to_set, what_is_wrong
from recio_setup.tree.plan import Plan, ReplaceFile, SetMode, WriteFile, separate_link

ENV_MODE = 0o600
NEW_FILE_HEADER = (
    "# REC.IO environment, written by recio-setup (see .env.example for every variable).\n"
    "# It holds the database password: keep it private (mode 0600) and out of git.\n"
)
SECRET_KEYS = tuple(field.key for field in FIELDS if field.secret)


@dataclass
class EnvState:
    rel: str  # where .env's content really lives (a symlink's target inside the project)
    found: Found
    document: EnvDocument | None
    via_symlink: bool = False


def decode_env(data: bytes, rel: str) -> EnvDocument:
    if b"\x00" in data:
        raise UsageError(
            f"{rel} holds a NUL byte, so it is not a text file",
            hint=f"run `{PROGRAM} reset`: it archives the file and rewrites it "
            "with every key it can still read",
        )
    return EnvDocument.parse(env_text(data, rel))


def read_env(tree: Tree, paths: Paths) -> EnvState:
    rel = paths.env_rel
    found = tree.inspect(rel)
    via_symlink = found.kind == "symlink"
    if via_symlink:
        rel = env_link_target(paths.root, rel)
        found = tree.inspect(rel)
    if found.kind == "missing":
        return EnvState(rel, found, None, via_symlink)
    if found.kind != "file":
        raise UsageError(
            f"{rel} is not a regular file ({found.describe()})",
            hint=f"run `{PROGRAM} reset` to move it into the archive",
        )
    return EnvState(rel, found, decode_env(tree.read_file(rel, TEXT_LIMIT), rel), via_symlink)


def env_mode_plan(rel: str, found: Found) -> Plan:
    """The fix of an existing .env's mode or of its hard link, if it needs one."""
    plan = Plan()
    new = mode_to_set(found.mode or 0, ENV_MODE, "file")
    if found.shares_its_inode:
        plan.add(separate_link(rel, found, ENV_MODE if new is None else new, ".env"))
    elif new is not None:
        why = what_is_wrong(found.mode or 0, new)
        reason = f".env holds secrets; mode {found.mode_text} is {why}"
        plan.add(SetMode(rel, reason, new, found))
    return plan


@dataclass
class EnvPlan:
    plan: Plan
    changed: list[str]
    text: str
    old_text: str

    @property
    def diff(self) -> str:
        """The change to .env with secrets masked; computed only when shown (dry run)."""
        return masked_diff(self.old_text, self.text, SECRET_KEYS)


def plan_env(state: EnvState, desired: Mapping[str, str]) -> EnvPlan:
    """What writing `desired` to .env takes: nothing, a new file, a replacement, or a mode fix."""
    plan = Plan()
    old_text = state.document.text if state.document else ""
    base = state.document or EnvDocument.parse(NEW_FILE_HEADER)
    document, changed = base.updated(desired, ENV_ORDER)
    if state.document is None:
        plan.add(
            WriteFile(state.rel, "none yet: the values above", document.text.encode(), ENV_MODE)
        )
    elif changed:
        data = document.text.encode()
        if len(data) > TEXT_LIMIT:  # the next run would refuse to read it
            raise UsageError(
                f"{state.rel} would become larger than {size_text(TEXT_LIMIT)}, the most it may "
                "hold; nothing was written",
                hint=f"shorten {state.rel} by hand, then run init again",
            )
        reason = f"{', '.join(changed)} change"
        plan.add(ReplaceFile(state.rel, reason, data, ENV_MODE))
    else:
        plan.extend(env_mode_plan(state.rel, state.found))
    return EnvPlan(plan, changed, document.text, old_text)
