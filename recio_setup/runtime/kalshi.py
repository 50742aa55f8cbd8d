"""Kalshi API credentials as the services read them: one folder per environment holding
`kalshi-auth.txt` (lines `email:EMAIL`, optional, and `key:API_KEY_ID`) and `kalshi.pem` (the RSA
private key). Older trees hold the key as `kalshi-auth.pem`.

This is what services read: the file names, the auth file's format, and
`get_kalshi_credentials`, which checks the entry as `credentials status` does (real files in
real folders, no symlink; one key ID, a UUID; a key private to its owner that parses as an RSA
key of 2048 bits or more) and raises CredentialsError naming `credentials add` otherwise. The key
is parsed with `cryptography`, imported only then: a service that signs Kalshi requests loads
it anyway, and a broken key had better fail at start-up than at the first order.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from recio_setup.errors import PROGRAM, RecioError
from recio_setup.runtime.kalshikey import KEY_ID_PATTERN
from recio_setup.runtime.paths import DEFAULT_USER, KALSHI_ENVIRONMENTS, default_paths
from recio_setup.runtime.readfile import read_whole

AUTH_FILE = "kalshi-auth.txt"
KEY_FILE = "kalshi.pem"
LEGACY_KEY_FILE = "kalshi-auth.pem"
# A Kalshi key is a few KiB of PEM; the auth file two short lines.
CREDENTIAL_LIMIT = 64 << 10


class CredentialsError(RecioError):
    """A Kalshi credentials entry that is missing or broken. The message itself says what to
    run, since a service logs str(error) and shows no hint."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(f"{message}; {hint}", hint=None, cause="kalshi_credentials")


@dataclass(frozen=True)
class AuthFile:
    """What kalshi-auth.txt says; `problem` is why it is unusable, None when it is fine."""

    key_id: str | None
    email: str | None
    problem: str | None = None


@dataclass(frozen=True)
class KalshiCredentials:
    env: str
    key_id: str
    email: str | None
    private_key_path: str


def parse_auth(data: bytes) -> AuthFile:
    """Read `email:EMAIL` and `key:API_KEY_ID` lines; blank lines and other lines are ignored."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return AuthFile(None, None, "it is not UTF-8 text")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if sep and name in ("email", "key"):
            if name in fields:
                # Which one would a service take? Neither is safe to guess.
                return AuthFile(None, None, f"it has more than one `{name}:` line")
            fields[name] = value.strip()
    key_id, email = fields.get("key"), fields.get("email") or None
    if not key_id:
        return AuthFile(None, email, "it has no `key:API_KEY_ID` line")
    if not KEY_ID_PATTERN.fullmatch(key_id):
        return AuthFile(None, email, "its key ID is not a UUID")
    return AuthFile(key_id, email)


def render_auth(key_id: str, email: str | None) -> bytes:
    lines = ([f"email:{email}"] if email else []) + [f"key:{key_id}"]
    return ("\n".join(lines) + "\n").encode()


def check_env(env: str) -> str:
    if env not in KALSHI_ENVIRONMENTS:
        raise CredentialsError(
            f"{env!r} is not a Kalshi environment",
            hint=f"use one of {', '.join(KALSHI_ENVIRONMENTS)}",
        )
    return env


def get_kalshi_credentials(
    env: str = "prod", user: str | None = None, *, root: str | os.PathLike[str] | None = None
) -> KalshiCredentials:
    """The key ID, email and private key path of one environment; CredentialsError when the
    entry is missing or broken (the message says which, and the command that fixes it)."""
    paths = default_paths(root, user)
    folder = paths.abs(f"{paths.kalshi_credentials_rel}/{check_env(env)}")
    # A service's exception is read as it is (no Output fills PROGRAM in): name the user here.
    user = "" if paths.user == DEFAULT_USER else f" --user {paths.user}"
    fix = f"run `{PROGRAM}{user} credentials add --env {env} --key-id ID --private-key-file FILE`"
    for real_folder in (folder.parent, folder):
        if real_folder.is_symlink():
            raise CredentialsError(f"{real_folder} is a symlink, not the folder itself", hint=fix)
    key_path = _key_path(folder)
    auth_path = folder / AUTH_FILE
    if key_path is None and not os.path.lexists(auth_path):
        raise CredentialsError(f"no Kalshi {env} credentials in {folder}", hint=fix)
    if key_path is None:
        raise CredentialsError(f"{auth_path} has a key ID but {folder} has no {KEY_FILE}", hint=fix)
    if not os.path.lexists(auth_path):
        raise CredentialsError(f"{key_path} has no key ID beside it ({AUTH_FILE})", hint=fix)
    auth = parse_auth(_read_private_file(auth_path, fix, secret=False))
    if auth.key_id is None:
        raise CredentialsError(f"{auth_path} is unusable: {auth.problem}", hint=fix)
    _check_key(key_path, fix)
    return KalshiCredentials(env, auth.key_id, auth.email, str(key_path))


def _key_path(folder: Path) -> Path | None:
    for name in (KEY_FILE, LEGACY_KEY_FILE):
        candidate = folder / name
        if os.path.lexists(candidate):
            return candidate
    return None


def _read_private_file(path: Path, fix: str, *, secret: bool) -> bytes:
    """A regular file of the entry, itself (no symlink), bounded; the key private to its owner."""
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        raise CredentialsError(f"{path} is {kind}", hint=fix)
    if secret and st.st_mode & 0o077:
        mode = f"{stat.S_IMODE(st.st_mode):04o}"
        raise CredentialsError(
            f"{path} has mode {mode}: the private key is readable by others",
            hint=f"chmod 600 {path}, then rotate the key if others may have read it",
        )
    try:
        return read_whole(path, CREDENTIAL_LIMIT)
    except (OSError, RecioError) as exc:  # gone since, too large, a special file
        why = exc.message if isinstance(exc, RecioError) else exc.strerror
        raise CredentialsError(f"{path} cannot be read: {why}", hint=fix) from None


def _check_key(path: Path, fix: str) -> None:
    from recio_setup.runtime.kalshikey import validate_private_key  # cryptography, here

    data = _read_private_file(path, fix, secret=True)
    try:
        validate_private_key(data, str(path))
    except RecioError as exc:  # encrypted, EC, public, truncated, too small: each says which
        raise CredentialsError(exc.message, hint=fix) from None
