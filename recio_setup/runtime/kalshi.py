"""Kalshi API credentials as the services read them: one folder per environment holding
`kalshi-auth.txt` (lines `email:EMAIL`, optional, and `key:API_KEY_ID`) and `kalshi.pem` (the RSA
private key). Older trees hold the key as `kalshi-auth.pem`.

This is the light half, for the runtime: the file names, the auth file's format, and
`get_kalshi_credentials`, which checks the entry's shape (files present, key ID a UUID, key
private to its owner, a PEM private-key block) without parsing the key: that needs
`cryptography`, which the CLI's `credentials add` and `check` load and a service start-up must
not pay for. The services load the key themselves anyway.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from recio_setup.errors import PROGRAM, RecioError
from recio_setup.runtime.paths import DEFAULT_USER, KALSHI_ENVIRONMENTS, default_paths
from recio_setup.runtime.readfile import read_whole

AUTH_FILE = "kalshi-auth.txt"
KEY_FILE = "kalshi.pem"
LEGACY_KEY_FILE = "kalshi-auth.pem"
# A Kalshi key is a few KiB of PEM; the auth file two short lines.
CREDENTIAL_LIMIT = 64 << 10
KEY_ID_PATTERN = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
PRIVATE_KEY_HEADERS = (b"-----BEGIN RSA PRIVATE KEY-----", b"-----BEGIN PRIVATE KEY-----")


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
        if sep and name.strip().lower() in ("email", "key"):
            fields[name.strip().lower()] = value.strip()
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
    key_path = _key_path(folder)
    auth_path = folder / AUTH_FILE
    if key_path is None and not auth_path.exists():
        raise CredentialsError(f"no Kalshi {env} credentials in {folder}", hint=fix)
    if key_path is None:
        raise CredentialsError(f"{auth_path} has a key ID but {folder} has no {KEY_FILE}", hint=fix)
    try:
        auth = parse_auth(read_whole(auth_path, CREDENTIAL_LIMIT))
    except FileNotFoundError:
        raise CredentialsError(
            f"{key_path} has no key ID beside it ({AUTH_FILE})", hint=fix
        ) from None
    if auth.key_id is None:
        raise CredentialsError(f"{auth_path} is unusable: {auth.problem}", hint=fix)
    _check_key_file(key_path, fix)
    return KalshiCredentials(env, auth.key_id, auth.email, str(key_path))


def _key_path(folder: Path) -> Path | None:
    for name in (KEY_FILE, LEGACY_KEY_FILE):
        candidate = folder / name
        if os.path.lexists(candidate):
            return candidate
    return None


def _check_key_file(path: Path, fix: str) -> None:
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise CredentialsError(f"{path} is not a regular file (a symlink or a folder)", hint=fix)
    if st.st_mode & 0o077:
        mode = f"{stat.S_IMODE(st.st_mode):04o}"
        raise CredentialsError(
            f"{path} has mode {mode}: the private key is readable by others",
            hint=f"chmod 600 {path}, then rotate the key if others may have read it",
        )
    data = read_whole(path, CREDENTIAL_LIMIT)
    if not any(header in data for header in PRIVATE_KEY_HEADERS):
        raise CredentialsError(f"{path} holds no unencrypted PEM private key", hint=fix)
