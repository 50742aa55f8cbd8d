"""`recio-setup supervisor`: write backend/supervisord.conf from the port manifest."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from recio_setup.cli.commands import add_lock_timeout, run_lock, validate_lock_timeout
from recio_setup.errors import EXIT_PROBLEMS, PROGRAM, StepFailed
from recio_setup.result import Check, Result
from recio_setup.runtime.paths import SUPERVISOR_CONFIG_REL
from recio_setup.tree.fsops import Tree

if TYPE_CHECKING:
    from recio_setup.cli.commands import Context
    from recio_setup.tree.supervisor import ConfPlan

# A command that writes into the project (unless --dry-run); its crash log goes into logs/.
READ_ONLY = False
HELP = "write backend/supervisord.conf (which services run, and how) from the manifest"
DESCRIPTION = f"""\
Write {SUPERVISOR_CONFIG_REL} from backend/core/config/MASTER_PORT_MANIFEST.json: one program per
service, running the venv's python on the service's `command` (default backend/SERVICE.py) from
the project root, with its logs in logs/ (rotated) and the control socket and pid file inside the
project. Every path is relative to the file itself (supervisord's %(here)s), so it works in any
checkout; it holds no password, no database setting and no address.

A file out of step with the manifest is rewritten and the old one archived; a hand-edited one
too, and the output says so. Then start everything with
`venv/bin/supervisord -c {SUPERVISOR_CONFIG_REL}`.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan and the file's diff; change nothing"
    )
    add_lock_timeout(parser)


def _plan(ctx: Context, tree: Tree) -> ConfPlan:
    from recio_setup.runtime.ports import load_manifest
    from recio_setup.tree.supervisor import manifest_for, plan_supervisor

    manifest = manifest_for(tree, ctx.paths, template_if_missing=False)
    if isinstance(manifest, str):
        # The manifest's own error tells the full story: every problem with its fix.
        load_manifest(ctx.paths.manifest).require_ok()
        raise StepFailed(
            f"{SUPERVISOR_CONFIG_REL} was not written: {manifest}",
            hint=f"`{PROGRAM} check` says what is wrong with the manifest and how to fix it",
        )
    return plan_supervisor(tree, ctx.paths, manifest, "write")


def run(ctx: Context) -> Result:
    from recio_setup.tree.archive import Archive
    from recio_setup.tree.plan import ApplyContext, apply_plan

    validate_lock_timeout(ctx.args)
    result = Result(ctx.command, dry_run=ctx.args.dry_run)
    with Tree(ctx.paths.root) as tree:
        if ctx.args.dry_run:
            conf = _plan(ctx, tree)
            if conf.diff:
                ctx.output.text(conf.diff)
            result.actions = conf.plan.planned()
            result.checks = conf.plan.findings
            result.data = {"diff": conf.diff}
            count = len(conf.plan.actions)
            result.summary = (
                f"dry run: {count} change(s) planned, nothing written"
                if count
                else "dry run: nothing to change"
            )
            return result
        with run_lock(ctx, tree, ctx.paths.lock_rel):
            conf = _plan(ctx, tree)  # under the lock: another run may have changed the tree
            archive = Archive(tree, ctx.command)
            result.actions = apply_plan(conf.plan, ApplyContext(tree, archive))
            result.checks = conf.plan.findings
            if archive.run_rel:
                result.notes.append(f"the replaced file was kept in {archive.run_rel}")
    _summarise(result)
    return result


def _summarise(result: Result) -> None:
    failed = [a for a in result.actions if a.state == "failed"]
    if failed or result.failed_checks:
        result.exit_code = EXIT_PROBLEMS
        for action in failed:
            result.checks.append(
                Check(
                    "supervisor.steps",
                    action.path,
                    "fail",
                    action.detail or "failed",
                    f"run `{PROGRAM} check`",
                )
            )
        result.summary = f"{SUPERVISOR_CONFIG_REL} was not written"
        return
    done = any(a.state == "done" for a in result.actions)
    result.summary = (
        f"{SUPERVISOR_CONFIG_REL} written from the manifest"
        if done
        else f"{SUPERVISOR_CONFIG_REL} is already in step with the manifest"
    )
    result.notes.append(
        f"start every service: venv/bin/supervisord -c {SUPERVISOR_CONFIG_REL}; "
        f"see them: venv/bin/supervisorctl -c {SUPERVISOR_CONFIG_REL} status"
    )
