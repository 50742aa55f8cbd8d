"""`recio-setup check`: the doctor CI gates on. Read-only; exit 0 unless something failed.

It looks at .env, the manifest and config.json, the data tree (only the entries of its table and
the files directly under credentials/, never live_data/ or trade_history/), the ports, and the
database connection unless --skip-db-check.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from recio_setup.cli.commands import dbflags
from recio_setup.env.plan import env_mode_plan, read_env
from recio_setup.env.settings import FIELDS, describe_source, resolve_sslmode
from recio_setup.env.settings import check as check_value
from recio_setup.errors import EXIT_PROBLEMS, PROGRAM, RecioError
from recio_setup.result import Check, Result, Value
from recio_setup.runtime.readfile import TEXT_LIMIT
from recio_setup.tree.fsops import Tree
from recio_setup.tree.modes import mode_to_set

if TYPE_CHECKING:
    from recio_setup.cli.commands import Context
    from recio_setup.tree.plan import Plan

# A command that never writes into the project: even its crash log goes to the temp folder.
READ_ONLY = True
HELP = "check .env, config, the data tree, ports and the database; change nothing"
DESCRIPTION = """\
Check the environment without changing anything: .env (present, parses, mode 0600, every key
valid), the port manifest and config.json, backend/supervisord.conf (there and in step with the
manifest), the data tree (complete, private modes on credentials, no symlink where an entry
belongs), the Kalshi credentials (absent, valid or broken: the key is read and parsed, never
shown), temp files left by interrupted writes, the service ports
(in use or free, for information) and the PostgreSQL connection. Exit 0 when nothing failed
(warnings allowed), 1 otherwise.
"""
REPAIR = f"run `{PROGRAM} reset` (it archives what it replaces)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    dbflags.add_arguments(parser, provisioning=False)


def env_checks(ctx: Context, tree: Tree) -> tuple[list[Check], dict[str, Value]]:
    """Checks of .env, and the values it holds (valid ones only) for the database test."""
    try:
        state = read_env(tree, ctx.paths)
    except RecioError as error:
        if error.hint:
            return [Check("env.file", ".env", "fail", error.message, error.hint)], {}
        return [Check("env.file", ".env", "fail", error.message, REPAIR, repair="reset")], {}
    if state.document is None:
        return [
            Check(
                "env.file",
                ".env",
                "fail",
                ".env is missing",
                f"run `{PROGRAM} init`",
                repair="init",
            )
        ], {}
    checks: list[Check] = []
    for action in env_mode_plan(state.rel, state.found).actions:
        checks.append(
            Check(
                "env.mode",
                ".env mode",
                "fail",
                action.reason,
                f"chmod 600 {state.rel}, or {REPAIR}",
                repair="reset",
            )
        )
    bad = state.document.bad_lines()
    if bad:
        numbers = ", ".join(str(line.number) for line in bad)
        checks.append(
            Check(
                "env.syntax",
                ".env syntax",
                "fail",
                f"python-dotenv cannot read line {numbers}",
                REPAIR,
                repair="reset",
            )
        )
    values = _valid_values(state.document.values(), checks)
    if not [c for c in checks if c.status == "fail"]:
        checks.append(
            Check(
                "env.file", ".env", "ok", f"{len(values)} keys valid, mode {state.found.mode_text}"
            )
        )
    return checks, values


def _valid_values(found: dict[str, str | None], checks: list[Check]) -> dict[str, Value]:
    values: dict[str, Value] = {}
    for field in FIELDS:
        raw = found.get(field.key)
        if not raw:
            checks.append(
                Check(
                    "env.value",
                    f".env {field.key}",
                    "fail",
                    f"{field.key} is missing",
                    f"run `{PROGRAM} init` to fill it in",
                    repair="init",
                )
            )
            continue
        try:
            values[field.key] = Value(
                field.key,
                check_value(field, raw, describe_source(field, ".env")),
                ".env",
                field.secret,
            )
        except RecioError as error:
            checks.append(
                Check(
                    "env.value",
                    f".env {field.key}",
                    "fail",
                    error.message,
                    f"run `{PROGRAM} init {field.flag or ''}` with a valid value",
                )
            )
    return values


def host_checks(values: dict[str, Value]) -> list[Check]:
    """A TRADING_SYSTEM_HOST that is no address of this machine any more (a laptop on another
    network): the services would announce an address nobody reaches. Read from the interface
    list, no packet sent; a name is not looked up, and no list means nothing to say."""
    import ipaddress

    from recio_setup.runtime.host import read_interfaces

    value = values.get("TRADING_SYSTEM_HOST")
    try:
        address = ipaddress.ip_address(value.value) if value else None
    except ValueError:
        return []
    if address is None or address.is_loopback or address.is_unspecified:
        return []
    mine = {
        str(ipaddress.ip_address(i.address.partition("%")[0])): i.loopback
        for i in read_interfaces()
        if i.up
    }
    if not mine or str(address) in mine:
        return []
    listed = ", ".join(a for a, loopback in sorted(mine.items(), key=lambda p: p[1]))
    return [
        Check(
            "env.host",
            "TRADING_SYSTEM_HOST",
            "warn",
            f"{address} is not an address of this machine now (it has {listed})",
            f"run `{PROGRAM} init --reconfigure` to pick one, or `{PROGRAM} init --host ADDRESS`",
        )
    ]


def tree_checks(ctx: Context, tree: Tree) -> list[Check]:
    from recio_setup.tree.datatree import deviation_checks, plan_tree
    from recio_setup.tree.runlock import LOCK_MODE

    checks = deviation_checks(plan_tree(tree, ctx.paths, "check"))
    lock = tree.inspect(ctx.paths.lock_rel)
    if lock.kind not in ("missing", "file", "blocked", "denied") or lock.shares_its_inode:
        checks.append(
            Check(
                "tree.lock",
                "run lock",
                "fail",
                f"{ctx.paths.lock_rel} is {lock.describe()}, so init and reset cannot run",
                REPAIR,
                repair="reset",
            )
        )
    elif lock.kind == "file" and mode_to_set(lock.mode or 0, LOCK_MODE, "file") is not None:
        detail = f"{ctx.paths.lock_rel} has mode {lock.mode_text}, not {LOCK_MODE:04o}"
        checks.append(
            Check("tree.lock", "run lock", "warn", detail, "the next init or reset sets it")
        )
    return checks


def credentials_checks(ctx: Context, tree: Tree) -> list[Check]:
    """Each Kalshi environment: absent (a warning), valid, or broken. The key is read and
    parsed to tell, never shown."""
    from recio_setup.tree.credentials import status_checks

    return status_checks(tree, ctx.paths)


def interrupted_run_checks(ctx: Context, tree: Tree) -> list[Check]:
    """A reset or undo killed halfway has left the tree between two states."""
    from recio_setup.tree.undo import interrupted_reset, undo_begun

    interrupted = interrupted_reset(tree, ctx.paths)
    if interrupted is None:
        return []
    detail = "the {} archived in " + f"{interrupted.run_rel} was interrupted halfway"
    if undo_begun(interrupted):
        fix = f"run `{PROGRAM} reset --undo` to finish it"
        return [
            Check(
                "reset.interrupted",
                "interrupted run",
                "fail",
                detail.format("undo of the reset"),
                fix,
            )
        ]
    fix = f"run `{PROGRAM} reset` to complete it, or `{PROGRAM} reset --undo` to put back"
    return [
        Check(
            "reset.interrupted",
            "interrupted run",
            "fail",
            detail.format("reset"),
            fix,
            repair="reset",
        )
    ]


def _to_do(plan: Plan, check_id: str) -> list[Check]:
    """What init would do to a config file, as the failures check reports."""
    return [
        Check(
            check_id, f"config {a.path}", "fail", a.reason, f"run `{PROGRAM} init`", repair="init"
        )
        for a in plan.actions
    ]


def config_checks(ctx: Context, tree: Tree, host: str) -> list[Check]:
    from recio_setup.tree.configfiles import plan_config_files

    plan = plan_config_files(tree, ctx.paths, host, "check")
    return _to_do(plan, "config.change") + plan.findings


def supervisor_checks(ctx: Context, tree: Tree) -> list[Check]:
    """Whether backend/supervisord.conf is there and in step with the manifest."""
    from recio_setup.tree.supervisor import manifest_for, plan_supervisor, unusable_manifest

    manifest = manifest_for(tree, ctx.paths, template_if_missing=False)
    if isinstance(manifest, str):
        return [unusable_manifest(manifest)]
    plan = plan_supervisor(tree, ctx.paths, manifest, "check").plan
    return plan.findings + _to_do(plan, "supervisor.file")


def port_checks(ctx: Context, tree: Tree) -> list[Check]:
    """Which service ports something listens on now: information, never a failure."""
    from recio_setup.cli.listening import probe_listening
    from recio_setup.runtime.ports import parse_manifest

    try:
        manifest = parse_manifest(
            tree.read_file(ctx.paths.manifest_rel, TEXT_LIMIT), ctx.paths.manifest
        )
    except (OSError, RecioError):
        return []  # the config checks above already say what is wrong with the manifest
    ports = manifest.ports()
    listening = probe_listening(sorted(set(ports.values())))
    busy = [f"{name} {port}" for name, port in ports.items() if listening.get(port)]
    detail = f"in use: {', '.join(busy)}" if busy else "none in use"
    return [
        Check(
            "ports.listening",
            "ports",
            "info",
            f"{len(ports)} services; {detail}",
            None,
            {"listening": {name: listening.get(port) for name, port in ports.items()}},
        )
    ]


def with_environment(ctx: Context, values: dict[str, Value]) -> dict[str, Value]:
    """The database settings the services would use: environment variables over .env."""
    merged = dict(values)
    for field in FIELDS:
        raw = ctx.environ.get(field.key)
        if raw and field.key.startswith("POSTGRES_"):
            source = f"environment {field.key}"
            value = check_value(field, raw, describe_source(field, source))
            merged[field.key] = Value(field.key, value, source, field.secret)
            if field.secret:
                ctx.output.add_secret(value)
    return merged


def run(ctx: Context) -> Result:
    from recio_setup.tree.leftovers import leftover_checks

    dbflags.validate(ctx.args)
    # Not in .env (see settings.SSLMODE_FIELD): the flag or the environment, else prefer.
    sslmode = resolve_sslmode(ctx.args, ctx.environ)
    result = Result("check")
    with Tree(ctx.paths.root) as tree:
        checks, values = env_checks(ctx, tree)
        for value in values.values():
            if value.secret:
                ctx.output.add_secret(value.value)
        host = (
            values["TRADING_SYSTEM_HOST"].value if "TRADING_SYSTEM_HOST" in values else "localhost"
        )
        checks += host_checks(values)
        checks += config_checks(ctx, tree, host)
        checks += supervisor_checks(ctx, tree)
        checks += tree_checks(ctx, tree)
        checks += credentials_checks(ctx, tree)
        checks += leftover_checks(tree, ctx.paths)
        checks += interrupted_run_checks(ctx, tree)
        checks += port_checks(ctx, tree)
    result.checks = checks
    db_values = with_environment(ctx, values)
    # database_steps reports --skip-db-check itself.
    if ctx.args.skip_db_check or all(
        key in db_values
        for key in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER")
    ):
        if not ctx.args.skip_db_check:
            result.values.append(sslmode)
            result.show_values = False  # one value is no table; --json still carries it
        dbflags.database_steps(ctx, db_values, result, sslmode)
    else:
        result.checks.append(
            Check(
                "db.connect",
                "database",
                "fail",
                "not tested: .env lacks valid POSTGRES_* values",
                f"run `{PROGRAM} init`",
            )
        )
    failed = len(result.failed_checks)
    warned = sum(1 for c in result.checks if c.status == "warn")
    result.exit_code = EXIT_PROBLEMS if failed else 0
    if not (ctx.paths.root / ".env").exists() and not (ctx.paths.root / "backend").exists():
        result.summary = f"not set up yet ({failed} problem(s)): run `{PROGRAM} init`"
        return result
    if any(c.status == "fail" and c.repair == "reset" for c in result.checks):
        result.notes.append(
            f"`{PROGRAM} reset` repairs every file and folder problem above "
            "at once; what it replaces is archived, never deleted"
        )
    result.summary = (
        f"{failed} problem(s), {warned} warning(s)"
        if failed
        else f"all good ({warned} warning(s))"
        if warned
        else "all good"
    )
    return result
