"""`recio-setup db status|start|stop`: the project-local PostgreSQL that `init --local-db` made."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from recio_setup.cli.commands import add_lock_timeout, run_lock, validate_lock_timeout
from recio_setup.cli.commands.localdb import cluster_of, real_folder, start
from recio_setup.errors import EXIT_PROBLEMS, PROGRAM
from recio_setup.result import Check, Result
from recio_setup.runtime.paths import LOCAL_DB_REL

if TYPE_CHECKING:
    from recio_setup.cli.commands import Context
    from recio_setup.db.cluster import LocalCluster, Status

READ_ONLY = False
HELP = "status, start or stop the project-local PostgreSQL (init --local-db)"
DESCRIPTION = f"""\
The project's own PostgreSQL, which `init --local-db` created in {LOCAL_DB_REL}/ (listening on
127.0.0.1 only, scram-sha-256 passwords, its superuser's password in
{LOCAL_DB_REL}/superuser.password, mode 0600).

`status` names its state (running, stopped, absent), PID, port, version and data folder; exit 0
when it runs, 1 when it does not. `start` and `stop` do nothing when it already runs or is
already stopped; `start` after a crash or a reboot clears the stale postmaster.pid. As root the
server runs as the system account `postgres` (else `nobody`): PostgreSQL refuses root. Its data
survives stop, start and every `reset`.
"""
ACTIONS = ("status", "start", "stop")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="what to do")
    add_lock_timeout(parser)


def run(ctx: Context) -> Result:
    from recio_setup.tree.fsops import Tree

    validate_lock_timeout(ctx.args)
    cluster = cluster_of(ctx)
    with Tree(ctx.paths.root) as tree:
        if ctx.args.action == "status" or not real_folder(tree, repair=False):
            return _report(ctx, cluster.status(), verb=None)
        with run_lock(ctx, tree, ctx.paths.lock_rel):
            real_folder(tree)
            before = cluster.status()
            status = _act(ctx, cluster, before)
    return _report(ctx, status, verb=ctx.args.action if before.state != status.state else None)


def _act(ctx: Context, cluster: LocalCluster, before: Status) -> Status:
    """start or stop, when there is something to do (the binaries are needed only then)."""
    from recio_setup.db.server import find_binaries

    if ctx.args.action == "start" and before.state == "stopped":
        return start(ctx, cluster, find_binaries())
    if ctx.args.action == "stop" and before.state == "running":
        with ctx.output.progress("stopping the project-local PostgreSQL"):
            return cluster.stop(find_binaries())
    return before


def _report(ctx: Context, status: Status, verb: str | None) -> Result:
    result = Result("db", data=status.to_data())
    wanted = {"start": "running", "stop": "stopped"}.get(ctx.args.action, "running")
    result.checks.append(_check(status, fix_stopped=ctx.args.action != "stop"))
    if status.state == "absent":
        result.summary = "no project-local PostgreSQL here"
        if ctx.args.action != "stop":
            result.exit_code = EXIT_PROBLEMS
        return result
    if status.state != wanted:
        result.exit_code = EXIT_PROBLEMS
    done = {"start": "started", "stop": "stopped"}.get(verb or "")
    result.summary = f"local PostgreSQL {done}" if done else f"local PostgreSQL is {status.state}"
    return result


def _check(status: Status, *, fix_stopped: bool) -> Check:
    if status.state == "absent":
        return Check(
            "db.local",
            "local PostgreSQL",
            "info",
            f"none in {LOCAL_DB_REL}",
            f"`{PROGRAM} init --local-db` creates one",
            status.to_data(),
        )
    where = f"127.0.0.1:{status.port}" if status.port else "port unknown"
    pid = f" (PID {status.pid})" if status.pid else ""
    detail = f"{status.state}{pid}, {where}, PostgreSQL {status.version or '?'}, {status.folder}"
    if status.state == "running":
        return Check("db.local", "local PostgreSQL", "ok", detail, None, status.to_data())
    fix = f"`{PROGRAM} db start` starts it" if fix_stopped else None
    return Check("db.local", "local PostgreSQL", "info", detail, fix, status.to_data())
