"""`recio-setup credentials add|status|remove`: the Kalshi API key, where the services read it.

`add` checks everything before writing anything (the key ID is a UUID; the file an unencrypted
RSA private key of 2048 bits or more that signs and verifies), then writes kalshi.pem and
kalshi-auth.txt 0600 from their first byte through the tree's safe operations, archiving whatever
stood there. The key never comes from argv (a file, or stdin with `-`) and is never printed: the
report names the environment, the key ID and the public key's fingerprint.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from recio_setup.cli.commands import add_lock_timeout, run_lock, validate_lock_timeout
from recio_setup.errors import EXIT_PROBLEMS, PROGRAM, StepFailed, UsageError
from recio_setup.result import Check, Result, Value
from recio_setup.runtime.kalshi import AUTH_FILE, CREDENTIAL_LIMIT, KEY_FILE, render_auth
from recio_setup.runtime.paths import KALSHI_ENVIRONMENTS

if TYPE_CHECKING:
    from recio_setup.cli.commands import Context
    from recio_setup.tree.fsops import Tree
    from recio_setup.tree.plan import Plan

READ_ONLY = False
KEY_ID_ENV = "KALSHI_API_KEY_ID"
HELP = "add, check or remove the Kalshi API credentials (prod, demo)"
DESCRIPTION = f"""\
`add --env prod|demo --key-id ID --private-key-file FILE` checks the key (an unencrypted RSA
private key of at least 2048 bits, PKCS#1 or PKCS#8, that signs and verifies) and the key ID (a
UUID; also read from ${KEY_ID_ENV}), then writes kalshi-auth.txt and kalshi.pem, mode 0600, into
backend/data/users/USER/credentials/kalshi-credentials/ENV/. FILE `-` reads the key from stdin.
Files already there are kept in the archive; replacing them asks on a terminal and needs --yes
without one. The key is never printed: the report shows its public SHA-256 fingerprint.

`status` says, per environment, whether the credentials are absent, valid or broken (and why).
`remove --env ENV` moves both files into the archive and prints where.
"""
ACTIONS = ("add", "status", "remove")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS, help="what to do")
    group = parser.add_argument_group("credentials")
    group.add_argument("--env", choices=KALSHI_ENVIRONMENTS, help="the Kalshi environment")
    group.add_argument(
        "--key-id", metavar="ID", help=f"the API key ID, a UUID (default: ${KEY_ID_ENV})"
    )
    group.add_argument(
        "--private-key-file",
        metavar="FILE",
        help="the PEM private key Kalshi let you download (- reads stdin); never the key itself",
    )
    group.add_argument("--email", help="the Kalshi account's email (optional)")
    group.add_argument("--dry-run", action="store_true", help="check and print the plan only")
    group.add_argument("--yes", "-y", action="store_true", help="replace or remove without asking")
    group.add_argument("--non-interactive", action="store_true", help="never prompt")
    add_lock_timeout(group)


# The options that mean something only to some actions: given to another, they are refused,
# since silently ignoring `status --private-key-file k.pem` would hide the user's mistake.
ONLY_FOR = {
    "key_id": ("--key-id", ("add",)),
    "private_key_file": ("--private-key-file", ("add",)),
    "email": ("--email", ("add",)),
    "dry_run": ("--dry-run", ("add", "remove")),
    "yes": ("--yes", ("add", "remove")),
}


def _refuse_foreign_options(args: argparse.Namespace) -> None:
    for dest, (flag, actions) in ONLY_FOR.items():
        if getattr(args, dest) and args.action not in actions:
            raise UsageError(
                f"{flag} does not apply to `credentials {args.action}`",
                hint=f"it is an option of `credentials {' and '.join(actions)}`",
            )


def run(ctx: Context) -> Result:
    validate_lock_timeout(ctx.args)
    _refuse_foreign_options(ctx.args)
    if ctx.args.action == "status":
        return status(ctx)
    if ctx.args.env is None:
        raise UsageError(
            f"`credentials {ctx.args.action}` needs --env",
            hint=f"add --env demo or --env prod, e.g. `{PROGRAM} credentials {ctx.args.action} "
            "--env demo`",
        )
    if ctx.args.action == "add":
        return add(ctx)
    return remove(ctx)


def status(ctx: Context) -> Result:
    from recio_setup.tree.credentials import status_checks
    from recio_setup.tree.fsops import Tree

    envs = (ctx.args.env,) if ctx.args.env else KALSHI_ENVIRONMENTS
    with Tree(ctx.paths.root) as tree:
        checks = status_checks(tree, ctx.paths, envs)
    result = Result("credentials", checks=checks)
    result.data = {"states": {c.data["env"]: c.data["state"] for c in checks}}
    failed = len(result.failed_checks)
    result.exit_code = EXIT_PROBLEMS if failed else 0
    states = ", ".join(f"{c.data['env']} {c.data['state']}" for c in checks)
    result.summary = f"Kalshi credentials: {states}"
    return result


# -- add ------------------------------------------------------------------------------------
def read_key_input(ctx: Context, name: str) -> tuple[bytes, str]:
    """The key file's bytes and how messages name it; every base64 line is a secret from now."""
    from recio_setup.runtime.kalshikey import looks_like_key_material
    from recio_setup.runtime.readfile import read_whole

    if looks_like_key_material(name):
        # The key itself, pasted where its path belongs: never echo it back.
        ctx.output.add_key_lines(name.encode())
        raise UsageError(
            "--private-key-file was given key material, not a path (it is not shown)",
            hint="pass the path of the PEM file, or - and the key on stdin; and since the key "
            "may now be in your shell's history, consider rotating it",
        )
    if name == "-":
        data, label = sys.stdin.buffer.read(CREDENTIAL_LIMIT + 1), "stdin"
        if len(data) > CREDENTIAL_LIMIT:
            raise UsageError("stdin holds more than 64 KiB: that is no Kalshi key file")
    else:
        label = name
        try:
            data = read_whole(name, CREDENTIAL_LIMIT, label=name)
        except OSError as exc:  # a FIFO, a folder or a huge file is FileRefused, exit 2 too
            raise UsageError(
                f"--private-key-file {name} cannot be read ({exc.strerror})",
                hint="give the path of the PEM file Kalshi let you download, or - for stdin",
            ) from None
    ctx.output.add_key_lines(data)
    return data, label


def key_id_input(ctx: Context) -> tuple[str, str]:
    from recio_setup.runtime.kalshikey import check_key_id

    if ctx.args.key_id:
        return check_key_id(ctx.args.key_id), "flag --key-id"
    from_env = ctx.environ.get(KEY_ID_ENV)
    if from_env:
        return check_key_id(from_env, f"${KEY_ID_ENV}"), f"environment {KEY_ID_ENV}"
    raise UsageError(
        "`credentials add` needs the API key ID",
        hint=f"pass --key-id ID or set {KEY_ID_ENV} (Kalshi shows the ID beside the API key)",
    )


def add(ctx: Context) -> Result:
    from recio_setup.runtime.kalshikey import check_email, validate_private_key

    key_id, source = key_id_input(ctx)
    email = check_email(ctx.args.email) if ctx.args.email else None
    if not ctx.args.private_key_file:
        raise UsageError(
            "`credentials add` needs the private key file",
            hint="pass --private-key-file FILE (or - to read it from stdin); never the key itself",
        )
    data, label = read_key_input(ctx, ctx.args.private_key_file)
    key = validate_private_key(data, label)
    ctx.output.add_key_lines(key.pem)
    env = ctx.args.env
    result = Result("credentials", dry_run=ctx.args.dry_run)
    result.values = [
        Value("environment", env, "flag --env"),
        Value("key ID", key_id, source),
        *([Value("email", email, "flag --email")] if email else []),
        Value("public key SHA-256", key.fingerprint, f"RSA {key.bits} bits"),
    ]
    result.data = {"env": env, "key_id": key_id, "fingerprint_sha256": key.fingerprint}
    files = {KEY_FILE: key.pem, AUTH_FILE: render_auth(key_id, email)}
    write_credentials(ctx, env, files, result)
    if result.exit_code == 0:
        done = any(a.state == "done" and a.path.endswith(tuple(files)) for a in result.actions)
        verb = "would be written" if ctx.args.dry_run else "written" if done else "already in place"
        result.summary = (
            f"Kalshi {env} credentials {verb}: key ID {key_id}, public key SHA-256 "
            f"{key.fingerprint}"
        )
    return result


def write_credentials(ctx: Context, env: str, files: dict[str, bytes], result: Result) -> None:
    from recio_setup.tree.credentials import plan_add, replaces_something
    from recio_setup.tree.datatree import plan_tree
    from recio_setup.tree.fsops import Tree

    with Tree(ctx.paths.root) as tree:
        first = plan_add(tree, ctx.paths, env, files)
        if ctx.args.dry_run:
            tree_plan = plan_tree(tree, ctx.paths, "init")
            tree_plan.extend(first)
            result.actions = tree_plan.planned()
            return
        confirmed = replaces_something(first)
        if confirmed:
            _confirm(ctx, f"Replace the Kalshi {env} credentials? (the old files are archived)")
        with run_lock(ctx, tree, ctx.paths.lock_rel):
            # The data tree first: a fresh clone has no credentials folder yet.
            _apply(ctx, tree, plan_tree(tree, ctx.paths, "init"), result)
            plan = plan_add(tree, ctx.paths, env, files)
            if replaces_something(plan) and not (confirmed or ctx.args.yes):
                raise StepFailed(
                    f"Kalshi {env} credentials appeared while this run waited; left as they are",
                    hint="run the command again to see them and confirm replacing them",
                )
            if result.exit_code == 0:
                _apply(ctx, tree, plan, result)


def _apply(ctx: Context, tree: Tree, plan: Plan, result: Result) -> None:
    from recio_setup.tree.archive import Archive
    from recio_setup.tree.plan import ApplyContext, apply_plan

    if plan.empty:
        return
    archive = Archive(tree, "credentials")
    records = apply_plan(plan, ApplyContext(tree, archive))
    archive.finish()
    result.actions += records
    if archive.run_rel:
        result.data["archive"] = archive.run_rel
        result.notes.append(f"what stood there was kept in {archive.run_rel}")
    failed = [r for r in records if r.state == "failed"]
    if failed:
        result.exit_code = EXIT_PROBLEMS
        detail = "; ".join(f"{r.path}: {r.detail}" for r in failed)
        fix = f"`{PROGRAM} check` shows the tree, `{PROGRAM} reset` repairs it"
        result.checks.append(
            Check(
                "credentials.steps", "apply", "fail", f"{len(failed)} step(s) failed: {detail}", fix
            )
        )
        result.summary = f"{ctx.args.action} did not finish: see the failed step"


def _confirm(ctx: Context, question: str) -> None:
    if ctx.args.yes:
        return
    if not ctx.interactive:
        raise UsageError(
            f"the Kalshi {ctx.args.env} credentials already exist, and there is no terminal to "
            "confirm replacing or removing them",
            hint=f"add --yes (the old files are kept in {ctx.paths.archives_rel})",
        )
    from recio_setup.cli.wizard import confirm

    if not confirm(question):
        raise StepFailed("cancelled; nothing was changed", cause="declined")


# -- remove ---------------------------------------------------------------------------------
def remove(ctx: Context) -> Result:
    from recio_setup.tree.credentials import plan_remove
    from recio_setup.tree.fsops import Tree

    env = ctx.args.env
    result = Result("credentials", dry_run=ctx.args.dry_run)
    result.data = {"env": env}
    with Tree(ctx.paths.root) as tree:
        plan = plan_remove(tree, ctx.paths, env)
        if plan.empty:
            result.summary = f"no Kalshi {env} credentials to remove"
            return result
        if ctx.args.dry_run:
            result.actions = plan.planned()
            result.summary = f"dry run: {len(plan.actions)} file(s) would be archived"
            return result
        _confirm(ctx, f"Move the Kalshi {env} credentials into the archive?")
        with run_lock(ctx, tree, ctx.paths.lock_rel):
            _apply(ctx, tree, plan_remove(tree, ctx.paths, env), result)
    if result.exit_code == 0:
        result.summary = f"Kalshi {env} credentials moved to {result.data.get('archive')}"
    return result
