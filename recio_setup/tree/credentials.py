"""Kalshi credentials in the data tree: how each environment's entry stands, and the plans that
write or remove it.

An environment folder (credentials/kalshi-credentials/{prod,demo}/) holds kalshi-auth.txt and
kalshi.pem (or, in older trees, kalshi-auth.pem). Its state is absent (nothing there: a warning,
many developers start without keys), valid, or broken (why: a key others can read, a key that does
not parse, a key without its key ID...). Entries are reached through the Tree, never through a
symlink, and read with a size limit; the key is parsed (kalshikey) but no byte of it is reported.

Writing is an ordinary tree plan, so `--dry-run`, the archive and the report come for free: a
file already there is kept in the archive before the new one is renamed over it; a symlink,
folder or special file standing at a name is moved into the archive (a symlink's target is never
touched) and the file created in its place, 0600 from its first byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from recio_setup.errors import PROGRAM, RecioError, StepFailed
from recio_setup.result import Check, Status
from recio_setup.runtime.kalshi import (
    AUTH_FILE,
    CREDENTIAL_LIMIT,
    KEY_FILE,
    LEGACY_KEY_FILE,
    parse_auth,
    render_auth,
)
from recio_setup.runtime.kalshikey import KeyRejected, validate_private_key
from recio_setup.runtime.paths import KALSHI_ENVIRONMENTS, Paths
from recio_setup.tree.fsentry import Found
from recio_setup.tree.fsops import Tree
from recio_setup.tree.plan import ArchiveEntry, Plan, WriteFile

SECRET_MODE = 0o600
State = Literal["absent", "valid", "broken"]


def add_fix(env: str) -> str:
    # The CLI's output spells PROGRAM with the --root and --user of the run (Output.shown).
    return f"run `{PROGRAM} credentials add --env {env} --key-id ID --private-key-file FILE`"


def env_rel(paths: Paths, env: str) -> str:
    return f"{paths.kalshi_credentials_rel}/{env}"


@dataclass
class WriteSecret(WriteFile):
    """WriteFile whose content never shows in a repr (a traceback, a debugger)."""

    content: bytes = field(default=b"", repr=False)
    mode: int = SECRET_MODE
    label: str = "credentials file"


@dataclass
class EnvCredentials:
    """One environment's entry as found; `problems` say why it is broken."""

    env: str
    state: State
    problems: list[str] = field(default_factory=list)
    key_id: str | None = None
    email: str | None = None
    fingerprint: str | None = None
    bits: int | None = None
    key_file: str | None = None
    modes: dict[str, str] = field(default_factory=dict)
    mode_only: bool = False  # the key parses; only its mode is wrong

    def to_json(self) -> dict[str, object]:
        return {
            "env": self.env,
            "state": self.state,
            "problems": self.problems,
            "key_id": self.key_id,
            "email": self.email,
            "fingerprint_sha256": self.fingerprint,
            "bits": self.bits,
            "key_file": self.key_file,
            "modes": self.modes,
        }


def inspect_env(tree: Tree, paths: Paths, env: str) -> EnvCredentials:
    folder = env_rel(paths, env)
    where = tree.inspect(folder)
    if where.kind == "missing":
        return EnvCredentials(env, "absent")
    if where.kind != "dir":
        return EnvCredentials(env, "broken", [f"{folder} is {where.describe()}; not followed"])
    found = {
        name: tree.inspect(f"{folder}/{name}") for name in (AUTH_FILE, KEY_FILE, LEGACY_KEY_FILE)
    }
    key_file = next((n for n in (KEY_FILE, LEGACY_KEY_FILE) if found[n].kind != "missing"), None)
    if key_file is None and found[AUTH_FILE].kind == "missing":
        return EnvCredentials(env, "absent")
    result = EnvCredentials(env, "valid", key_file=key_file)
    result.modes = {n: f.mode_text for n, f in found.items() if f.kind == "file"}
    _inspect_auth(tree, f"{folder}/{AUTH_FILE}", found[AUTH_FILE], result)
    if key_file is None:
        result.problems.append(f"{AUTH_FILE} has a key ID but there is no {KEY_FILE}")
    else:
        _inspect_key(tree, f"{folder}/{key_file}", found[key_file], result)
    if result.problems:
        result.state = "broken"
    return result


def _inspect_auth(tree: Tree, rel: str, found: Found, result: EnvCredentials) -> None:
    if found.kind == "missing":
        result.problems.append(f"the key has no key ID: {AUTH_FILE} is missing")
        return
    if found.kind != "file":
        result.problems.append(f"{AUTH_FILE} is {found.describe()}; not followed")
        return
    try:
        auth = parse_auth(tree.read_file(rel, CREDENTIAL_LIMIT))
    except (RecioError, OSError) as exc:
        result.problems.append(f"{AUTH_FILE} could not be read: {_why(exc)}")
        return
    result.email = auth.email
    if auth.problem:
        result.problems.append(f"{AUTH_FILE} is unusable: {auth.problem}")
    result.key_id = auth.key_id


def _inspect_key(tree: Tree, rel: str, found: Found, result: EnvCredentials) -> None:
    name = rel.rpartition("/")[2]
    if found.kind != "file":
        result.problems.append(f"{name} is {found.describe()}; not followed")
        return
    mode_bad = bool((found.mode or 0) & 0o077)
    if mode_bad:
        result.problems.append(f"{name} has mode {found.mode_text}: readable by others")
    try:
        key = validate_private_key(tree.read_file(rel, CREDENTIAL_LIMIT), name)
    except KeyRejected as exc:
        result.problems.append(exc.message)
        return
    except (RecioError, OSError) as exc:
        result.problems.append(f"{name} could not be read: {_why(exc)}")
        return
    result.fingerprint, result.bits = key.fingerprint, key.bits
    result.mode_only = mode_bad and len(result.problems) == 1


def _why(exc: Exception) -> str:
    if isinstance(exc, RecioError):
        return exc.message
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def status_checks(
    tree: Tree, paths: Paths, envs: tuple[str, ...] = KALSHI_ENVIRONMENTS
) -> list[Check]:
    return [_check(paths, inspect_env(tree, paths, env)) for env in envs]


def _check(paths: Paths, found: EnvCredentials) -> Check:
    name = f"kalshi credentials {found.env}"
    data = found.to_json()
    if found.state == "absent":
        detail = f"absent: services cannot call Kalshi's {found.env} API"
        return Check("credentials.kalshi", name, "warn", detail, add_fix(found.env), data)
    if found.state == "broken":
        detail = "broken: " + "; ".join(found.problems)
        repair = add_fix(found.env)
        if found.mode_only:
            key = f"{paths.abs(env_rel(paths, found.env))}/{found.key_file}"
            repair = (
                f"chmod 600 {key} (or run `{PROGRAM} init`), and rotate the key if others read it"
            )
        return Check("credentials.kalshi", name, "fail", detail, repair, data)
    modes = ", ".join(f"{n} {m}" for n, m in found.modes.items())
    detail = (
        f"valid: key ID {found.key_id}, RSA {found.bits} bits, public key SHA-256 "
        f"{found.fingerprint}; modes {modes}"
    )
    status: Status = "ok"
    fix: str | None = None
    if found.key_file == LEGACY_KEY_FILE:
        status = "warn"
        detail += f"; older layout: the key is {LEGACY_KEY_FILE}, not {KEY_FILE}"
        fix = f"{add_fix(found.env)} to write the current layout (the old file is archived)"
    return Check("credentials.kalshi", name, status, detail, fix, data)


def _usable_folder(tree: Tree, folder: str) -> None:
    found = tree.inspect(folder)
    if found.kind not in ("dir", "missing"):
        raise StepFailed(
            f"{folder} is {found.describe()}; nothing was written through it",
            hint=f"run `{PROGRAM} reset` to put a real folder there (what stood there is archived)",
        )


def plan_add(tree: Tree, paths: Paths, env: str, files: dict[str, bytes]) -> Plan:
    """Write `files` (name -> content) into the environment's folder; what stands there is kept in
    the archive first. A file that already holds exactly this content, mode 0600, is left alone."""
    folder = env_rel(paths, env)
    _usable_folder(tree, folder)
    # Every file that changes is archived before any is written: a run stopped halfway then
    # leaves a key without its key ID (status: broken), never a new key beside the old ID
    # (status: valid, and every signed request refused).
    archive, write = Plan(), Plan()
    for name, content in files.items():
        rel = f"{folder}/{name}"
        found = tree.inspect(rel)
        if found.kind in ("blocked", "denied"):
            raise StepFailed(f"{rel} cannot be reached ({found.describe()}); nothing was written")
        if found.kind == "file" and _same(tree, rel, found, content):
            continue
        if found.kind == "file":
            archive.add(ArchiveEntry(rel, "new credentials replace it"))
            write.add(WriteSecret(rel, "the new credentials", content=content))
        elif found.kind == "missing":
            write.add(WriteSecret(rel, "new credentials", content=content))
        else:
            why = f"{found.describe()} stands where {name} belongs (its target is never touched)"
            archive.add(ArchiveEntry(rel, why))
            write.add(WriteSecret(rel, "in its place", content=content))
    legacy = f"{folder}/{LEGACY_KEY_FILE}"
    if tree.inspect(legacy).kind not in ("missing", "blocked", "denied"):
        archive.add(ArchiveEntry(legacy, f"older layout: {KEY_FILE} takes its place"))
    plan = Plan()
    plan.extend(archive)
    plan.extend(write)
    return plan


def plan_pair(tree: Tree, paths: Paths, env: str, key_id: str, pem: bytes) -> Plan:
    """plan_add for a step of a larger plan (init's wizard): a folder that cannot take the
    files is a failed finding there, not an error that stops the other steps."""
    files = {KEY_FILE: pem, AUTH_FILE: render_auth(key_id, None)}
    try:
        return plan_add(tree, paths, env, files)
    except RecioError as error:
        plan = Plan()
        plan.note(
            Check(
                "credentials.kalshi", f"kalshi credentials {env}", "fail", error.message, error.hint
            )
        )
        return plan


def _same(tree: Tree, rel: str, found: Found, content: bytes) -> bool:
    if found.mode != SECRET_MODE or found.shares_its_inode:
        return False
    try:
        return tree.read_file(rel, CREDENTIAL_LIMIT) == content
    except (RecioError, OSError):
        return False


def replaces_something(plan: Plan) -> bool:
    return any(not isinstance(action, WriteSecret) for action in plan.actions)


def plan_remove(tree: Tree, paths: Paths, env: str) -> Plan:
    folder = env_rel(paths, env)
    _usable_folder(tree, folder)
    plan = Plan()
    for name in (AUTH_FILE, KEY_FILE, LEGACY_KEY_FILE):
        rel = f"{folder}/{name}"
        if tree.inspect(rel).kind not in ("missing", "blocked", "denied"):
            plan.add(ArchiveEntry(rel, f"`credentials remove --env {env}`"))
    return plan
