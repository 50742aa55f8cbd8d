"""`recio-setup reset`: repair what check finds, losing nothing; `--all` starts fresh; `--undo`.

Everything replaced or moved goes into backend/data/archives/<timestamp>-reset/ (files/ keeps the
relative paths, record.json says what moved where). `--all` works by rename, so its cost does not
depend on how much data there is. `--undo` puts the most recent reset's archive back.
"""

from __future__ import annotations

import argparse
import os
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from recio_setup.cli.commands import add_lock_timeout, run_lock, validate_lock_timeout
from recio_setup.env.repair import plan_env_repair
from recio_setup.errors import EXIT_PROBLEMS, PROGRAM, StepFailed, UsageError
from recio_setup.result import ActionRecord, Check, Result
from recio_setup.runtime.paths import CREDENTIALS_FOLDER, LIVE_DATA_REL
from recio_setup.tree.archive import Archive, archived_path, utc_now
from recio_setup.tree.archive_home import is_at_root, repair_archive_home
from recio_setup.tree.fsops import Tree
from recio_setup.tree.plan import ApplyContext, ArchiveEntry, Plan, apply_plan
from recio_setup.tree.undo import (
    changed_since,
    fingerprint,
    interrupted_reset,
    latest_reset,
    pending_resets,
    restore,
    undo_archive_for,
    undo_begun,
)

if TYPE_CHECKING:
    from recio_setup.cli.commands import Context

# A command that writes into the project (unless --dry-run); its crash log goes into logs/.
READ_ONLY = False
HELP = "repair a corrupted tree (archiving, never deleting); --all starts fresh; --undo"
DESCRIPTION = """\
Repair what `check` finds: recreate what is missing, tighten modes, and archive then replace what
is corrupt (token files become {}, a bad manifest is replaced from the template, config.json and
backend/supervisord.conf are regenerated, a corrupt .env is rewritten with every key still
readable). Symlinks and intruders standing where an entry belongs are moved into the archive and
the real entry created, and so are temp files left by interrupted writes.

Nothing is ever deleted: whatever is replaced goes to backend/data/archives/<time>-reset/, with
record.json saying what moved from where. `--undo` puts the most recent reset back.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("reset")
    group.add_argument(
        "--all",
        action="store_true",
        help="also archive users/USER/ and live_data/ and recreate them fresh",
    )
    group.add_argument(
        "--include-credentials",
        action="store_true",
        help="with --all, archive the credentials folder too (kept by default)",
    )
    group.add_argument(
        "--undo", action="store_true", help="put back what the most recent reset archived"
    )
    group.add_argument(
        "--force",
        action="store_true",
        help="with --undo, also overwrite what changed since that reset",
    )
    group.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    group.add_argument(
        "--yes",
        "-y",
        "--non-interactive",
        dest="yes",
        action="store_true",
        help="do not ask for confirmation (required without a terminal for --all and --undo)",
    )
    add_lock_timeout(group)


def _validate(args: argparse.Namespace) -> None:
    validate_lock_timeout(args)
    if args.include_credentials and not args.all:
        raise UsageError("--include-credentials only works with --all", hint="add --all")
    if args.force and not args.undo:
        raise UsageError("--force only works with --undo", hint="add --undo")
    if args.undo and args.all:
        raise UsageError("--undo and --all cannot be combined", hint="run them one at a time")


def _confirm(ctx: Context, question: str) -> None:
    """Destructive-looking steps ask on a terminal and need --yes without one."""
    if ctx.args.yes or ctx.args.dry_run:
        return
    flag = "--undo" if ctx.args.undo else "--all"
    if not ctx.interactive:
        raise UsageError(
            f"reset {flag} needs confirmation, and there is no terminal to ask on",
            hint=f"add --yes to run `{PROGRAM} reset {flag} --yes`",
        )
    from recio_setup.cli.wizard import confirm

    if not confirm(question):
        raise StepFailed("cancelled; nothing was changed", cause="declined")


def _move_aside_a_bad_lock(ctx: Context, tree: Tree, archive: Archive) -> None:
    """A symlink, FIFO, folder or hard link at the lock path would stop every run: archive it."""
    found = tree.inspect(ctx.paths.lock_rel)
    if found.kind not in ("missing", "file", "blocked", "denied") or found.shares_its_inode:
        what = found.describe() if found.kind == "file" else f"a {found.kind}"
        archive.move_in(ctx.paths.lock_rel, f"{what} stood where the run lock belongs")


def fresh_start_plan(ctx: Context, tree: Tree) -> Plan:
    """--all: move users/USER/ (credentials kept unless asked) and live_data/ into the archive."""
    plan = Plan()
    user_rel = ctx.paths.user_rel
    reason = "reset --all starts this fresh"
    if ctx.args.include_credentials or tree.inspect(user_rel).kind != "dir":
        if tree.inspect(user_rel).kind != "missing":
            plan.add(ArchiveEntry(user_rel, reason))
    else:
        for name in tree.list_dir(user_rel):
            if name != CREDENTIALS_FOLDER:
                plan.add(ArchiveEntry(f"{user_rel}/{name}", reason))
    live = LIVE_DATA_REL
    if tree.inspect(live).kind != "missing":
        plan.add(ArchiveEntry(live, reason))
    return plan


def repair_plan(ctx: Context, tree: Tree) -> Plan:
    from recio_setup.tree.configfiles import plan_config_files
    from recio_setup.tree.datatree import plan_tree
    from recio_setup.tree.leftovers import plan_leftovers
    from recio_setup.tree.supervisor import plan_after_setup

    plan = Plan()
    env_plan, host = plan_env_repair(tree, ctx.paths)
    plan.extend(env_plan)
    plan.extend(plan_config_files(tree, ctx.paths, host, "reset"))
    plan.extend(plan_tree(tree, ctx.paths, "reset"))
    plan.extend(plan_leftovers(tree, ctx.paths))
    plan.extend(plan_after_setup(tree, ctx.paths, plan))
    return plan


def run(ctx: Context) -> Result:
    _validate(ctx.args)
    if ctx.args.undo:
        return run_undo(ctx)
    result = Result("reset", dry_run=ctx.args.dry_run)
    with Tree(ctx.paths.root) as tree:
        if ctx.args.dry_run:
            plan = _dry_run_plan(ctx, tree)
            result.actions, result.checks = plan.planned(), plan.findings
            result.summary = f"dry run: {len(plan.actions)} change(s) planned, nothing changed"
            return result
        if ctx.args.all:
            _confirm(ctx, "Archive users/ and live_data/ and start them fresh?")
        archive = Archive(tree, "reset", ctx.paths.archives_rel)
        # The lock lives under the archive's home, so these two come before it.
        moved = repair_archive_home(archive, ctx.paths)
        if moved:
            result.actions.append(
                ActionRecord("archive", moved, "it was not a real folder", "done", archive.run_rel)
            )
        _move_aside_a_bad_lock(ctx, tree, archive)
        with run_lock(ctx, tree, ctx.paths.lock_rel):
            archive = _resume_an_interrupted_reset(ctx, tree, archive, result)
            apply_ctx = ApplyContext(tree, archive)
            if ctx.args.all:
                result.actions += apply_plan(fresh_start_plan(ctx, tree), apply_ctx)
            plan = repair_plan(ctx, tree)
            result.actions += apply_plan(plan, apply_ctx)
            # What check would still say is the honest account of what reset could not fix
            # (e.g. POSTGRES_PORT=abc in .env: no right value to put there).
            result.checks += remaining_problems(ctx, tree)
            if archive.run_rel:
                _finish_archive(ctx, tree, archive, ctx.args.all)
                result.notes.append(
                    f"archived to {archive.run_rel} (undo: `{PROGRAM} reset --undo`)"
                )
    return _finish(result, "repaired")


def _finish_archive(ctx: Context, tree: Tree, archive: Archive, all_: bool) -> None:
    """What the reset left in each place it archived, so that undo can see later changes."""
    after = {e["from"]: fingerprint(tree, e["from"], ctx.paths.lock_rel) for e in archive.entries}
    archive.finish({"after": after, "all": all_ or bool(archive.info.get("all"))})


def _resume_an_interrupted_reset(
    ctx: Context, tree: Tree, archive: Archive, result: Result
) -> Archive:
    """A reset killed halfway is continued, so one undo puts back everything both moved."""
    interrupted = interrupted_reset(tree, ctx.paths, exclude=archive.run_rel)
    if interrupted is None:
        return archive
    if undo_begun(interrupted):
        raise StepFailed(
            f"the undo of the reset archived in {interrupted.run_rel} was interrupted",
            hint=f"run `{PROGRAM} reset --undo` to finish it first",
            cause="undo_interrupted",
        )
    if archive.run_rel is not None:
        # This run has archived already (a bad lock): close the other as it stands.
        _finish_archive(ctx, tree, interrupted, False)
        result.notes.append(
            f"an interrupted reset in {interrupted.run_rel} was closed; `{PROGRAM} reset "
            "--undo` puts back this run first, then that one"
        )
        return archive
    pids = [*interrupted.info.get("pids", []), os.getpid()]
    interrupted.write_record({"resumed_at": utc_now(), "pids": pids})
    result.notes.append(f"continued the interrupted reset in {interrupted.run_rel}")
    return interrupted


def _dry_run_plan(ctx: Context, tree: Tree) -> Plan:
    """What reset would do. With --all, repairs inside what is archived first are left out
    (they would never happen: the real run plans its repairs after the archiving)."""
    if not ctx.args.all:
        return repair_plan(ctx, tree)
    plan = fresh_start_plan(ctx, tree)
    archived = [action.path for action in plan.actions]
    repairs = repair_plan(ctx, tree)
    for action in repairs.actions:
        if not any(action.path == gone or action.path.startswith(f"{gone}/") for gone in archived):
            plan.add(action)
    plan.findings.extend(repairs.findings)
    if archived:
        plan.note(
            Check(
                "reset.after_archiving",
                "after archiving",
                "info",
                "what was archived is created again empty, as init creates it",
            )
        )
    return plan


def remaining_problems(ctx: Context, tree: Tree) -> list[Check]:
    from recio_setup.cli.commands.check import config_checks, env_checks, tree_checks

    env, values = env_checks(ctx, tree)
    host = values["TRADING_SYSTEM_HOST"].value if "TRADING_SYSTEM_HOST" in values else "localhost"
    every = env + config_checks(ctx, tree, host) + tree_checks(ctx, tree)
    return [check for check in every if check.status == "fail"]


def _finish(result: Result, verb: str) -> Result:
    failed = [a for a in result.actions if a.state == "failed"]
    if failed:
        result.checks.append(
            Check(
                "reset.steps",
                "reset",
                "fail",
                f"{len(failed)} step(s) failed",
                f"see the actions above, then run `{PROGRAM} check`",
            )
        )
    if result.failed_checks:
        result.exit_code = EXIT_PROBLEMS
    done = sum(1 for a in result.actions if a.state == "done")
    result.summary = (
        f"{verb}: {done} change(s)"
        if result.exit_code == 0 and done
        else "nothing to repair"
        if result.exit_code == 0
        else f"reset left {len(result.failed_checks)} problem(s)"
    )
    return result


def run_undo(ctx: Context) -> Result:
    result = Result("reset", dry_run=ctx.args.dry_run)
    with Tree(ctx.paths.root) as tree:
        record = latest_reset(tree, ctx.paths)
        if ctx.args.dry_run:
            _refuse_later_changes(ctx, tree, record)
            result.actions = [
                ActionRecord(
                    "restore", e["from"], f"from {archived_path(record.folder, e)}", "planned"
                )
                for e in reversed(record.entries)
            ]
            result.summary = (
                f"dry run: would restore {len(result.actions)} path(s) from {record.run_rel}"
            )
            return result
        _confirm(ctx, f"Put back the {len(record.entries)} path(s) archived in {record.run_rel}?")
        with run_lock(ctx, tree, _undo_lock(ctx, tree, record)):
            # Decided again under the lock: another run may have changed the tree while we waited.
            confirmed, record = record.run_rel, latest_reset(tree, ctx.paths)
            if record.run_rel != confirmed:
                raise StepFailed(
                    f"another run changed the archives while this one waited ({record.run_rel} "
                    "is now the most recent reset); nothing was changed",
                    hint=f"run `{PROGRAM} reset --undo` again",
                    cause="changed_since_reset",
                )
            undo_archive = _refuse_later_changes(ctx, tree, record)
            steps = restore(tree, record, undo_archive)
            result.actions = [
                ActionRecord("restore", s.path, s.detail, "done" if s.done else "failed")
                for s in steps
            ]
            leftovers = _temp_files_of_the_reset(ctx, tree, record)
            result.actions += apply_plan(leftovers, ApplyContext(tree, undo_archive))
            result.notes.append(_what_was_undone(record, len(pending_resets(tree, ctx.paths))))
    if undo_archive.entries:
        result.notes.append(f"what the reset had created was kept in {undo_archive.run_rel}")
    return _finish(result, "undone")


def _what_was_undone(record: Archive, older: int) -> str:
    """Which reset this undo put back, and what a second undo would do, so it is no surprise."""
    when = record.info.get("started_at", "an unknown time")
    then = (
        f"{older} older reset(s) can still be undone, newest first (`{PROGRAM} reset --undo` "
        "again undoes the next)"
        if older
        else "no older reset is left to undo"
    )
    return f"undid the reset of {when} ({record.run_rel}); {then}"


def _undo_lock(ctx: Context, tree: Tree, record: Archive) -> str:
    """The run lock, or, when an undo already put back the symlink standing for backend/ or
    backend/data/ (where the lock lives), a lock in the reset's archive at the project root."""
    if is_at_root(record.run_rel) and tree.inspect(ctx.paths.lock_rel).kind == "blocked":
        return f"{record.folder}/undo.lock"
    return ctx.paths.lock_rel


def _temp_files_of_the_reset(ctx: Context, tree: Tree, record: Archive) -> Plan:
    """Temp files left by the reset's own interrupted writes: they were not there before it.

    One that stood there before the reset (another writer's) was archived by it and has just
    been put back, so it stays.
    """
    from recio_setup.tree.leftovers import TEMP_NAME, plan_leftovers

    own_pids = set(record.info.get("pids", []))
    restored = {entry["from"] for entry in record.entries}
    plan = Plan()
    for action in plan_leftovers(tree, ctx.paths).actions:
        name = TEMP_NAME.fullmatch(PurePosixPath(action.path).name)
        if action.path not in restored or (name and int(name["pid"]) in own_pids):
            plan.add(action)
    return plan


def _refuse_later_changes(ctx: Context, tree: Tree, record: Archive) -> Archive:
    """The undo's archive, unless a place changed since the reset and --force is not given."""
    undo_archive = undo_archive_for(tree, record, ctx.paths.archives_rel)
    changed = changed_since(tree, record, undo_archive, ctx.paths.lock_rel)
    if changed and not ctx.args.force:
        raise StepFailed(
            f"changed since the reset archived in {record.run_rel}: {', '.join(changed)}; "
            "undo would overwrite it",
            hint="add --force (what is there now is archived, not deleted)",
            cause="changed_since_reset",
        )
    return undo_archive
