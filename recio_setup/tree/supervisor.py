"""Plan backend/supervisord.conf: write it when missing, rewrite it when out of step with the
manifest, and say so when the file being replaced was edited by hand (it is archived first).

`supervisor` and `init` apply this plan ("write"); `check` only reports it. What stands at the
path is judged without following a symlink: a symlink is moved into the archive itself and a
real file written, so nothing is ever written through one.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Literal

from recio_setup.errors import PROGRAM, RecioError
from recio_setup.result import Check
from recio_setup.runtime.paths import LOGS_REL, SUPERVISOR_CONFIG_REL, Paths
from recio_setup.runtime.ports import Manifest, ManifestError, parse_manifest
from recio_setup.runtime.readfile import TEXT_LIMIT
from recio_setup.tree.configfiles import (
    FILE_MODE,
    RESET_FIX,
    EnsureFolder,
    Judged,
    manifest_template,
    plan_mode,
)
from recio_setup.tree.fsentry import Found, permission_hint
from recio_setup.tree.fsops import Tree
from recio_setup.tree.plan import ArchiveEntry, Plan, ReplaceFile, SeparateLink, WriteFile
from recio_setup.tree.supervisor_conf import (
    drift,
    edited_by_hand,
    programs_in,
    render,
    socket_for,
    unsafe_root,
)

Mode = Literal["write", "check"]
CONF_REL = SUPERVISOR_CONFIG_REL
CHECK_NAME = "supervisord.conf"
CHECK_ID = "supervisor.file"  # stable, for --json
FIX = f"run `{PROGRAM} supervisor` (a replaced file is kept in the archive)"


@dataclass
class ConfPlan:
    """The conf's actions and findings, plus the text change a dry run shows."""

    plan: Plan = field(default_factory=Plan)
    diff: str = ""
    hand_edited: bool = False


def _unified_diff(old: str, new: str, *, show_old: bool) -> str:
    """The change a dry run shows. A file this tool did not write (by hand, or the reference's
    own) may hold passwords in any spelling: its lines are counted, not shown."""
    if not show_old and old:
        kept = f"- ({len(old.splitlines())} lines of the current file, not shown: it was not "
        kept += "written by recio-setup and may hold secrets; it is kept in the archive)\n"
        added = "".join(f"+{line}" for line in new.splitlines(keepends=True))
        return f"--- {CONF_REL} (now)\n+++ {CONF_REL} (from the manifest)\n{kept}{added}"
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        f"{CONF_REL} (now)",
        f"{CONF_REL} (from the manifest)",
    )
    return "".join(lines)


def _why_different(old: str, new: str, hand_edited: bool) -> str:
    """What makes the file differ from what the manifest gives, in the words check uses."""
    by_hand = "edited by hand (or not written by this tool)"
    also = f"; {by_hand}" if hand_edited else ""
    found = programs_in(old)
    if found is None:
        return f"{CONF_REL} cannot be read as a supervisord config{also}"
    phrases = drift(programs_in(new) or {}, found)
    if phrases:
        return f"{CONF_REL} is out of step with the manifest: {'; '.join(phrases)}{also}"
    if hand_edited:
        return f"{CONF_REL} was {by_hand}"
    # Written by this tool for another checkout: its socket path differs (see socket_for).
    return f"{CONF_REL} has settings other than this checkout's (its socket)"


def _socket_note(paths: Paths, conf: ConfPlan) -> None:
    socket = socket_for(paths.root)
    if socket.fallback:
        conf.plan.note(
            Check(
                "supervisor.socket",
                "supervisord socket",
                "warn",
                f"the socket inside the project would be {socket.inside_length} bytes long, over "
                f"the unix limit; it is {socket.setting} instead (one per project)",
                "move the checkout to a shorter path to keep the socket inside it",
            )
        )


def _root_note(paths: Paths, conf: ConfPlan) -> None:
    char = unsafe_root(paths.root)
    if char is not None:
        conf.plan.note(
            Check(
                CHECK_ID,
                CHECK_NAME,
                "fail",
                f"the checkout's path holds {char}, which supervisord's config cannot carry: "
                "supervisord will refuse the file",
                f'move the checkout to a path without % or ", then run `{PROGRAM} supervisor`',
            )
        )


def _plan_logs(tree: Tree, conf: ConfPlan, mode: Mode) -> None:
    """supervisord refuses to start when the folder of its log files is not there."""
    found = tree.inspect(LOGS_REL)
    if found.kind == "missing" and mode == "write":
        conf.plan.add(EnsureFolder(LOGS_REL, "holds the services' logs"))
    elif found.kind not in ("missing", "dir"):
        detail = f"{LOGS_REL} is {found.describe()}, not a folder: supervisord cannot start"
        conf.plan.note(Check(CHECK_ID, CHECK_NAME, "fail", detail, RESET_FIX, repair="reset"))


def _judge_file(tree: Tree, found: Found) -> tuple[str | None, str | None]:
    """The file's text, or why it cannot be used as it stands."""
    if found.kind == "symlink":
        return None, f"is a symlink to {found.link_target}; it was not followed"
    if found.kind != "file":
        return None, f"is a {found.describe()}, not a regular file"
    try:
        return tree.read_file(CONF_REL, TEXT_LIMIT).decode("utf-8", "replace"), None
    except (OSError, RecioError) as exc:
        return None, f"cannot be read: {getattr(exc, 'strerror', None) or exc}"


def _plan_missing(conf: ConfPlan, mode: Mode, content: bytes) -> None:
    if mode == "check":
        conf.plan.note(
            Check(CHECK_ID, CHECK_NAME, "fail", f"{CONF_REL} is missing", FIX, repair="init")
        )
        return
    conf.plan.add(WriteFile(CONF_REL, "supervisord's config is missing", content, FILE_MODE))
    conf.diff = _unified_diff("", content.decode(), show_old=True)


def _plan_unreachable(tree: Tree, conf: ConfPlan, found: Found) -> None:
    detail = f"{CONF_REL} is {found.describe()}"
    if found.kind == "denied":
        conf.plan.note(Check(CHECK_ID, CHECK_NAME, "fail", detail, permission_hint(tree.root)))
    else:  # reset puts a real backend/ in place of what stands there; the next run writes it
        conf.plan.note(Check(CHECK_ID, CHECK_NAME, "fail", detail, RESET_FIX, repair="reset"))


def _hand_edit_note(paths: Paths) -> Check:
    return Check(
        CHECK_ID,
        CHECK_NAME,
        "warn",
        f"{CONF_REL} was edited by hand: it is replaced, and the edited file kept in the archive",
        f"put lasting changes in the manifest ({paths.manifest_rel}), then run "
        f"`{PROGRAM} supervisor`",
        loud=True,
    )


def _plan_replace(
    conf: ConfPlan, found: Found, text: str | None, problem: str | None, content: bytes
) -> str:
    """Archive what stands there and write the conf; returns the reason, for check to report."""
    conf.hand_edited = text is not None and edited_by_hand(text)
    if problem:
        reason = f"{CONF_REL} {problem}"
    else:
        reason = _why_different(text or "", content.decode(), conf.hand_edited)
    conf.diff = _unified_diff(text or "", content.decode(), show_old=not conf.hand_edited)
    if found.kind == "file" and problem is None:
        conf.plan.add(ReplaceFile(CONF_REL, reason, content, FILE_MODE))
    else:  # a symlink is archived itself, never followed; so is what cannot be read
        conf.plan.add(ArchiveEntry(CONF_REL, reason))
        conf.plan.add(WriteFile(CONF_REL, "supervisord's config was not a regular file", content))
    return reason


def plan_supervisor(tree: Tree, paths: Paths, manifest: Manifest, mode: Mode) -> ConfPlan:
    """The conf's plan from a valid manifest: "write" for supervisor, init and reset, "check"
    to report only (its actions are then what would be done)."""
    conf = ConfPlan()
    content = render(manifest, socket_for(paths.root))
    _socket_note(paths, conf)
    _root_note(paths, conf)
    _plan_logs(tree, conf, mode)
    found = tree.inspect(CONF_REL)
    if found.kind == "missing":
        _plan_missing(conf, mode, content)
        return conf
    if found.kind in ("blocked", "denied"):
        _plan_unreachable(tree, conf, found)
        return conf
    text, problem = _judge_file(tree, found)
    if text is not None and text.encode() == content:
        conf.plan.note(
            Check(CHECK_ID, CHECK_NAME, "ok", f"{CONF_REL} is in step with the manifest")
        )
        plan_mode(conf.plan, CONF_REL, Judged(found, None), CHECK_NAME)
        return conf
    reason = _plan_replace(conf, found, text, problem, content)
    if mode == "check":
        conf.plan = Plan(findings=conf.plan.findings)
        conf.plan.note(Check(CHECK_ID, CHECK_NAME, "fail", reason, FIX, repair="init"))
    elif conf.hand_edited:
        conf.plan.note(_hand_edit_note(paths))
    return conf


def manifest_for(
    tree: Tree, paths: Paths, *, template_if_missing: bool, template: bool = False
) -> Manifest | str:
    """The manifest the conf comes from, or why there is none to use.

    init and reset plan the conf before they install the manifest (a missing one; for reset an
    unusable one too): from the template they install."""
    try:
        data = manifest_template() if template else tree.read_file(paths.manifest_rel, TEXT_LIMIT)
    except FileNotFoundError:
        if not template_if_missing:
            return f"{paths.manifest_rel} is missing"
        data = manifest_template()
    except (OSError, RecioError) as exc:
        return f"{paths.manifest_rel} cannot be read: {getattr(exc, 'strerror', None) or exc}"
    try:
        manifest = parse_manifest(data, paths.manifest_rel)
    except ManifestError as exc:
        return exc.message
    if manifest.problems:
        return f"{paths.manifest_rel} has {len(manifest.problems)} problem(s)"
    return manifest


def plan_after_setup(tree: Tree, paths: Paths, before: Plan) -> Plan:
    """The conf's part of init's and reset's plan, which `before` holds the rest of: from the
    manifest in place, or from the template when this run installs it."""
    installs_it = any(
        action.path == paths.manifest_rel
        and isinstance(action, (WriteFile, ReplaceFile))
        and not isinstance(action, SeparateLink)  # a private copy of the same content
        for action in before.actions
    )
    manifest = manifest_for(tree, paths, template_if_missing=True, template=installs_it)
    if isinstance(manifest, str):
        plan = Plan()
        plan.note(unusable_manifest(manifest))  # the manifest's own check says what to do
        return plan
    conf = plan_supervisor(tree, paths, manifest, "write").plan
    # The data tree's plan may already create logs/, with its own mode.
    planned = {action.path for action in before.actions}
    conf.actions = [a for a in conf.actions if a.kind != "create folder" or a.path not in planned]
    return conf


def unusable_manifest(detail: str) -> Check:
    """The conf cannot be judged or written when the manifest it comes from is not usable."""
    return Check(
        CHECK_ID,
        CHECK_NAME,
        "info",
        f"not generated or compared: {detail}",
        "fix the port manifest first (see its check)",
    )
