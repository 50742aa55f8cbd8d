"""`recio-setup init` (the default): values, .env, config files, the data tree, then the database.

Steps run in that order and each is reported. A failure after .env is written leaves .env
written and says what to do next. Nothing is written on bad input (exit 2), on Ctrl-C in the
wizard (exit 130), or with --dry-run.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from recio_setup.cli.commands import add_lock_timeout, dbflags, run_lock, validate_lock_timeout
from recio_setup.env.plan import EnvPlan, EnvState, plan_env, read_env
from recio_setup.env.settings import (
    DEFAULT_PASSWORD,
    generate_password,
    given_by_the_user,
    resolve,
    resolve_sslmode,
)
from recio_setup.errors import EXIT_PROBLEMS, PROGRAM, Interrupted, UsageError
from recio_setup.masking import url_holds_secret
from recio_setup.result import ActionRecord, Check, Result, Value
from recio_setup.tree.fsops import Tree
from recio_setup.tree.plan import ApplyContext, Plan, apply_plan

if TYPE_CHECKING:
    from recio_setup.cli.commands import Context
    from recio_setup.cli.wizard import DbChoice, KalshiAnswer

# A command that writes into the project (unless --dry-run); its crash log goes into logs/.
READ_ONLY = False
HELP = "set up .env, the port manifest, config and the data tree; test PostgreSQL (default)"
DESCRIPTION = """\
Set up a REC.IO environment, in this order: write .env (TRADING_SYSTEM_HOST, AUTH_ENABLED,
DATABASE_TYPE, POSTGRES_*), install backend/core/config/MASTER_PORT_MANIFEST.json and config.json
when missing, create the data tree under backend/data with private modes on credentials, write
backend/supervisord.conf from the manifest, and test the PostgreSQL connection.

Values come from, in order: flags > environment variables > the existing .env > detected (host) >
defaults. On a terminal a short wizard asks for the rest; with no terminal on stdin or with
--non-interactive nothing is asked. Running it again on a finished tree changes nothing.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    values = parser.add_argument_group(
        "values (each also read from the environment variable named)"
    )
    values.add_argument("--host", metavar="HOST", help="TRADING_SYSTEM_HOST (default: detected)")
    values.add_argument(
        "--auth-enabled",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="AUTH_ENABLED (default: false)",
    )
    values.add_argument(
        "--postgres-host", metavar="HOST", help="POSTGRES_HOST (default: localhost)"
    )
    values.add_argument("--postgres-port", metavar="PORT", help="POSTGRES_PORT (default: 5432)")
    values.add_argument("--postgres-db", metavar="NAME", help="POSTGRES_DB (default: rec_io_db)")
    values.add_argument(
        "--postgres-user", metavar="NAME", help="POSTGRES_USER (default: rec_io_user)"
    )
    values.add_argument(
        "--postgres-password-file",
        metavar="FILE",
        help="read POSTGRES_PASSWORD from the first line of FILE (- for stdin); "
        "no flag takes a password itself, since it would show in `ps`",
    )
    values.add_argument(
        "--database-url",
        metavar="URL",
        help="postgresql://USER@HOST:PORT/DB[?sslmode=MODE] as a source for POSTGRES_* and "
        "the sslmode; put a password in DATABASE_URL (environment), not in this flag",
    )
    run = parser.add_argument_group("running")
    run.add_argument(
        "--non-interactive",
        "-y",
        "--yes",
        action="store_true",
        help="never prompt; a missing value is an error naming its flag",
    )
    run.add_argument(
        "--reconfigure",
        action="store_true",
        help="on a terminal, ask every question again with the current values as defaults "
        "(a re-run whose .env holds every value asks nothing)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan and a masked diff of .env; change nothing",
    )
    add_lock_timeout(run)
    dbflags.add_arguments(parser, provisioning=True)


def _refuse_password_in_flag_url(args: argparse.Namespace) -> None:
    for flag in ("database_url", "admin_url"):
        url = getattr(args, flag, None)
        # Whatever the URL's shape: a malformed one (no `@host`, one slash) still shows in `ps`.
        if url and url_holds_secret(url):
            name = "--" + flag.replace("_", "-")
            env = "DATABASE_URL" if flag == "database_url" else "POSTGRES_ADMIN_URL"
            raise UsageError(
                f"{name} holds what may be a password (text after the user's `:`, or a "
                "password or token parameter), which would show in `ps` and shell history",
                hint=f"set {env} in the environment instead, or pass the password through a file",
            )


def _fill_password(values: dict[str, Value], ctx: Context) -> None:
    """With no password anywhere: generate one for --create-db, else the documented default."""
    if "POSTGRES_PASSWORD" in values or ctx.interactive:
        return
    if ctx.args.create_db or ctx.args.local_db:
        values["POSTGRES_PASSWORD"] = Value(
            "POSTGRES_PASSWORD", generate_password(), "generated", True
        )
        return
    ctx.output.warn(
        f"no database password given; using the documented default "
        f"{DEFAULT_PASSWORD!r}. Set POSTGRES_PASSWORD or --postgres-password-file "
        "for anything but a throwaway setup."
    )
    values["POSTGRES_PASSWORD"] = Value("POSTGRES_PASSWORD", DEFAULT_PASSWORD, "default", True)


def validate_inputs(ctx: Context) -> Value:
    """Every flag and variable that can be checked on its own, before the tree is read: bad
    input is exit 2 with nothing inspected, asked or written. Returns the sslmode of the database
    steps (not a .env value)."""
    _refuse_password_in_flag_url(ctx.args)
    if ctx.args.reconfigure and not ctx.interactive:
        raise UsageError(
            "--reconfigure asks the questions again, and there is no terminal to ask on "
            "(or --non-interactive or --json was given)",
            hint="run it in a terminal, or pass the values to change as flags",
        )
    validate_lock_timeout(ctx.args)
    dbflags.validate(ctx.args)
    dbflags.validate_admin(ctx)
    return resolve_sslmode(ctx.args, ctx.environ)


def gather_values(ctx: Context, state: EnvState, sslmode: Value) -> tuple[dict[str, Value], bool]:
    """The .env values: resolved from flags, environment, .env and detection, then asked; and
    whether the wizard showed them. Like rails' bin/setup, a re-run asks nothing when every
    value is given; a value .env holds that is not valid is said and asked again."""
    from recio_setup.runtime.host import detect_candidates, detect_host

    env_values = state.document.values() if state.document else {}
    if state.document and state.document.bad_lines():
        lines = ", ".join(str(line.number) for line in state.document.bad_lines())
        ctx.output.warn(
            f".env has lines python-dotenv cannot read (line {lines}); they are kept "
            f"as they are. `{PROGRAM} reset` can rewrite the file."
        )
    # Interface detection runs a subprocess: only when its answer can matter.
    host_given = (
        ctx.args.host
        or ctx.environ.get("TRADING_SYSTEM_HOST")
        or env_values.get("TRADING_SYSTEM_HOST")
    )
    candidates = detect_candidates() if ctx.interactive or not host_given else []
    # The environment's TRADING_SYSTEM_HOST is applied by resolve() at its own precedence level.
    rejected: dict[str, str] = {}
    values = resolve(
        ctx.args,
        ctx.environ,
        env_values,
        detect_host({}, candidates),
        rejected=rejected if ctx.interactive else None,
    )
    if ctx.args.local_db:  # given, so the wizard does not ask for them
        from recio_setup.cli.commands.localdb import set_local_values

        set_local_values(ctx, values)
    _fill_password(values, ctx)
    asked = ctx.interactive and _ask(ctx, values, rejected, candidates, sslmode)
    if ctx.args.local_db and values["POSTGRES_PORT"].source != "flag --local-db":
        from recio_setup.cli.commands.localdb import set_local_values

        set_local_values(ctx, values)  # the wizard's choice: the cluster's host and port
    if ctx.args.local_db and values["POSTGRES_PASSWORD"].value == DEFAULT_PASSWORD:
        ctx.output.warn(
            f"POSTGRES_PASSWORD is the documented default {DEFAULT_PASSWORD!r}: anyone on this "
            "machine can log in to the local database as the services do. Give another with "
            "--postgres-password-file (init sets the role's password to it)."
        )
    for value in values.values():
        if value.secret:
            ctx.output.add_secret(value.value)
    return values, asked


def _ask(
    ctx: Context,
    values: dict[str, Value],
    rejected: dict[str, str],
    candidates: list[str],
    sslmode: Value,
) -> bool:
    """The wizard, for what is left to ask (values updated in place); whether it ran."""
    from recio_setup.cli.wizard import run_wizard

    for message in rejected.values():
        ctx.output.warn(f"{message}; asking for it again")
    # A rejected value has fallen back to a default: it is asked for, the rest need not be.
    complete = all(given_by_the_user(v) or key in rejected for key, v in values.items())
    if complete and not rejected and not ctx.args.reconfigure:
        ctx.output.status(
            f"Nothing to ask: every value is given (`{PROGRAM} init --reconfigure` asks again)."
        )
        return False
    only = set(rejected) if complete and not ctx.args.reconfigure else None
    kalshi: list[KalshiAnswer] = []
    answers, db = run_wizard(
        values,
        candidates,
        ctx.output,
        database=_database_step(ctx, sslmode),
        also_shown=(sslmode,),
        only=only,
        kalshi=kalshi,
    )
    values.update(answers)
    ctx.args.kalshi = kalshi  # written by build_plan's credentials step
    if db is not None:
        _take(ctx, db)
    return True


def _database_step(ctx: Context, sslmode: Value) -> Callable[[dict[str, Value]], DbChoice] | None:
    """The wizard's database step, unless a flag already decided what happens to the database
    (--create-db, --skip-db-check, --local-db)."""
    if ctx.args.create_db or ctx.args.skip_db_check or getattr(ctx.args, "local_db", False):
        return None
    from recio_setup.cli.wizard_db import DbAccess, database_step

    access = DbAccess(
        settings=lambda values: dbflags.settings_from(values, ctx.args, sslmode),
        admin_url=ctx.args.admin_url or ctx.environ.get("POSTGRES_ADMIN_URL") or None,
        admin_password=lambda: _registered(ctx, dbflags.admin_password(ctx)),
        timeout=ctx.args.db_timeout,
    )

    def step(values: dict[str, Value]) -> DbChoice:
        choice = database_step(values, ctx.output, access)
        if choice.local:  # the summary shows the host and port that will be written
            from recio_setup.cli.commands.localdb import set_local_values

            ctx.args.local_db = True
            set_local_values(ctx, values)
        return choice

    return step


def _registered(ctx: Context, secret: str | None) -> str | None:
    ctx.output.add_secret(secret)
    return secret


def _take(ctx: Context, db: DbChoice) -> None:
    """The wizard's database decision, as the flags that say the same would set it."""
    if db.local:
        ctx.args.local_db = True  # acted on by the local-cluster step
    if db.skip:
        ctx.args.skip_db_check = True
        ctx.args.skipped_in_wizard = True
    if db.create:
        ctx.args.create_db = True
        ctx.args.reset_db_password = db.reset_password
        ctx.args.admin_user = db.admin_user
        ctx.args.admin_password = db.admin_password
        ctx.output.add_secret(db.admin_password)


def build_plan(ctx: Context, tree: Tree, env: EnvPlan, host: str) -> Plan:
    from recio_setup.tree.configfiles import plan_config_files
    from recio_setup.tree.datatree import plan_tree
    from recio_setup.tree.leftovers import plan_leftovers
    from recio_setup.tree.supervisor import plan_after_setup

    plan = Plan()
    plan.extend(env.plan)
    plan.extend(plan_config_files(tree, ctx.paths, host, "init"))
    plan.extend(plan_tree(tree, ctx.paths, "init"))
    plan.extend(plan_leftovers(tree, ctx.paths))
    for answer in getattr(ctx.args, "kalshi", []):
        plan.extend(kalshi_plan(ctx, tree, answer))
    plan.extend(plan_after_setup(tree, ctx.paths, plan))
    return plan


def kalshi_plan(ctx: Context, tree: Tree, answer: KalshiAnswer) -> Plan:
    """The wizard's Kalshi credentials, after the data tree that holds their folder."""
    from recio_setup.tree.credentials import plan_pair

    return plan_pair(tree, ctx.paths, answer.env, answer.key_id, answer.key.pem)


def run(ctx: Context) -> Result:
    sslmode = validate_inputs(ctx)
    result = Result("init", dry_run=ctx.args.dry_run)
    with Tree(ctx.paths.root) as tree:
        state = read_env(tree, ctx.paths)
        values, asked = gather_values(ctx, state, sslmode)
        env = plan_env(state, {key: value.value for key, value in values.items()})
        result.values = [*values.values(), sslmode]
        result.show_values = not asked  # the wizard's summary showed them already
        host = values["TRADING_SYSTEM_HOST"].value
        if ctx.args.dry_run:
            plan = build_plan(ctx, tree, env, host)
            return _dry_run_result(ctx, result, plan, env, values, sslmode)
        if ctx.interactive:
            _confirm(ctx, build_plan(ctx, tree, env, host), env)
        provision = ctx.args.create_db and not ctx.args.local_db
        if provision and not dbflags.provision_step(ctx, values, result, sslmode):
            result.exit_code = EXIT_PROBLEMS
            result.summary = "nothing was written: the role and database could not be created"
            return result
        provisioned = result.actions
        with run_lock(ctx, tree, ctx.paths.lock_rel):
            if ctx.args.local_db:  # under the same lock as .env: two runs cannot cross
                dbflags.local_db_step(ctx, tree, values, result, sslmode)
                provisioned = result.actions

            # Planned again under the lock: another run may have changed the tree meanwhile.
            def plan_now() -> Plan:
                env = plan_env(read_env(tree, ctx.paths), {k: v.value for k, v in values.items()})
                return build_plan(ctx, tree, env, host)

            _apply(ctx, tree, plan_now, result)
        result.actions = [*provisioned, *result.actions]
    if result.exit_code == 0:
        try:
            dbflags.database_steps(ctx, values, result, sslmode)
        except KeyboardInterrupt:
            raise _interrupted_after_writing(result) from None
    for answer in getattr(ctx.args, "kalshi", []):
        if result.exit_code == 0:
            result.notes.append(
                f"Kalshi {answer.env} credentials written: key ID {answer.key_id}, public key "
                f"SHA-256 {answer.key.fingerprint}"
            )
    _summarise(result)
    return result


def _interrupted_after_writing(result: Result) -> Interrupted:
    """Ctrl-C at the database step (the admin password, say): .env and the tree are written
    by then, and the user must not think nothing was."""
    done = sum(1 for action in result.actions if action.state == "done")
    written = (
        f"{done} change(s) to .env and the tree were written" if done else "nothing needed writing"
    )
    return Interrupted(
        f"interrupted at the database step: {written}; the database was neither set up nor tested",
        hint=f"run `{PROGRAM} init` again to finish (it asks nothing twice), or "
        f"`{PROGRAM} check` to see where things stand",
        cause="interrupted",
    )


def _confirm(ctx: Context, plan: Plan, env: EnvPlan) -> None:
    from recio_setup.cli.wizard import confirm_changes

    changes = len(plan.actions)
    confirm_changes(ctx.output, changes=changes, settings_changed=not env.plan.empty)


def _dry_run_result(
    ctx: Context,
    result: Result,
    plan: Plan,
    env: EnvPlan,
    values: dict[str, Value],
    sslmode: Value,
) -> Result:
    """The plan, and with --create-db the provisioning step after a read-only admin check: a
    dry run that would fail at that step says so (exit 1), as the real run would."""
    result.checks = plan.findings
    provision = ctx.args.create_db and not ctx.args.local_db
    if provision and not dbflags.provision_dry_run(ctx, values, result, sslmode):
        result.exit_code = EXIT_PROBLEMS
        result.summary = (
            "dry run: the role and database could not be created (see the failed check); "
            "nothing written"
        )
        return result
    result.actions = [*result.actions, *plan.planned()]
    if ctx.args.local_db:
        from recio_setup.cli.commands.localdb import planned_actions

        who = f"{values['POSTGRES_USER'].value}@{values['POSTGRES_DB'].value}"
        result.actions += planned_actions(ctx, int(values["POSTGRES_PORT"].value), who)
    if env.diff:
        ctx.output.text(env.diff)
    result.env_diff = env.diff
    changes = len(result.actions)
    result.summary = (
        f"dry run: {changes} change(s) planned, nothing written"
        if changes
        else "dry run: nothing to change"
    )
    return result


def _apply(ctx: Context, tree: Tree, plan_now: Callable[[], Plan], result: Result) -> None:
    from recio_setup.tree.archive import Archive

    archive = Archive(tree, "init")
    plan = plan_now()
    result.actions = _apply_one(ctx, ApplyContext(tree, archive), plan)
    if _hidden_by_permissions(plan) and all(a.state == "done" for a in result.actions):
        # What a folder locked to its owner (left by a umask 777) holds could not be planned
        # before this plan gave the owner the folder back; it can be now.
        plan = plan_now()
        result.actions += _apply_one(ctx, ApplyContext(tree, archive), plan)
    result.checks.extend(plan.findings)
    failed = [a for a in result.actions if a.state == "failed"]
    if failed:
        result.exit_code = EXIT_PROBLEMS
        result.checks.append(
            Check(
                "init.steps",
                "apply",
                "fail",
                f"{len(failed)} step(s) failed: "
                + "; ".join(f"{a.path}: {a.detail}" for a in failed),
                f"see the actions above; `{PROGRAM} check` lists what is left",
            )
        )
    if archive.run_rel:
        result.notes.append(f"replaced files were kept in {archive.run_rel}")


def _apply_one(ctx: Context, apply_ctx: ApplyContext, plan: Plan) -> list[ActionRecord]:
    if not plan.actions:
        return []
    with ctx.output.progress(f"applying {len(plan.actions)} change(s)"):
        return apply_plan(plan, apply_ctx)


def _hidden_by_permissions(plan: Plan) -> bool:
    return bool(plan.actions) and any(f.data.get("cause") == "permission" for f in plan.findings)


def _summarise(result: Result) -> None:
    if any(check.status == "fail" for check in result.checks):
        result.exit_code = EXIT_PROBLEMS
    done = sum(1 for a in result.actions if a.state == "done")
    if result.exit_code == 0:
        result.summary = (
            f"ready: {done} change(s) made" if done else "ready: everything was already in place"
        )
        if any(a.state == "done" and a.path.endswith(".env") for a in result.actions):
            result.notes.append(
                ".env written (mode 0600); it holds the database password, masked in all output"
            )
        if any(c.name == "database" and c.status == "info" for c in result.checks):
            result.notes.append(f"the database was not tested: `{PROGRAM} check` does that")
        result.notes.append(f"`{PROGRAM} check` verifies this setup at any time")
    else:
        result.summary = "init did not finish: see the failed checks" + (
            "; .env is written"
            if any(a.path.endswith(".env") and a.state == "done" for a in result.actions)
            else ""
        )
