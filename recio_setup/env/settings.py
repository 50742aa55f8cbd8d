"""The values init writes to .env: what they are, where each comes from, and how each is checked.

Precedence (README.md): flag > environment variable > the value already in .env > detected (host)
> documented default. DATABASE_URL, as --database-url or from the environment, is a source for the
POSTGRES_* values at its own level, below the specific flag or variable. Every value remembers its
source for the summary. The password never comes from a bare flag: it would show in `ps`.

The sslmode of the connection test follows the same ladder (resolve_sslmode) but is not a .env
value: see SSLMODE_FIELD.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from recio_setup.db.url import parse_database_url as parse_url
from recio_setup.errors import PROGRAM, UsageError
from recio_setup.result import Value
from recio_setup.runtime.database import SSLMODES
from recio_setup.runtime.host import validate_host

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TRUE_WORDS = {"true", "yes", "1", "on"}
FALSE_WORDS = {"false", "no", "0", "off"}
DEFAULT_PASSWORD = "rec_io_password"  # noqa: S105  (the reference's documented default, used with a warning)


class Invalid(ValueError):
    """A value a field refuses. str() is the full message, quoting the value, for flags and
    files; `short` says the same in a line that fits the wizard's one-line validation toolbar,
    where the value is on screen anyway."""

    def __init__(self, message: str, short: str) -> None:
        super().__init__(message)
        self.short = short


def normalise_bool(text: str) -> str:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return "true"
    if word in FALSE_WORDS:
        return "false"
    raise Invalid(f"{text!r} is not true or false (true/false, yes/no, 1/0)", "true or false")


def normalise_port(text: str) -> str:
    stripped = text.strip()
    if not stripped.isdigit() or not 1 <= int(stripped) <= 65535:
        raise Invalid(f"{text!r} is not a port number from 1 to 65535", "a port: 1 to 65535")
    return str(int(stripped))


def normalise_identifier(text: str) -> str:
    if not IDENTIFIER.fullmatch(text) or len(text.encode()) > 63:
        raise Invalid(
            f"{text!r} is not a PostgreSQL name: use letters, digits and underscores, "
            "starting with a letter or underscore, at most 63 bytes",
            "letters, digits, _; no digit first; max 63 bytes",
        )
    return text


def normalise_host(text: str) -> str:
    try:
        return validate_host(text.strip())
    except UsageError as exc:
        raise Invalid(exc.message, "an IP address or a hostname") from exc


def normalise_database_type(text: str) -> str:
    if text.strip().lower() != "postgresql":
        raise Invalid(f"{text!r} is not supported; REC.IO runs on postgresql only", "postgresql")
    return "postgresql"


def normalise_sslmode(text: str) -> str:
    # Exact words, as libpq and --db-sslmode take them: "Require" would fail only at connect time.
    if text not in SSLMODES:
        raise Invalid(f"{text!r} is not an sslmode (one of {', '.join(SSLMODES)})", "an sslmode")
    return text


def normalise_password(text: str) -> str:
    if not text:
        raise Invalid("the password is empty", "a password")
    if any(ord(ch) < 32 or ch == "\x7f" for ch in text):
        raise Invalid(
            "the password contains a line break or control character",
            "no line break or control character",
        )
    if "${" in text:
        raise Invalid(
            "the password contains `${`, which python-dotenv would expand in .env",
            "no `${` (python-dotenv would expand it)",
        )
    return text


@dataclass(frozen=True)
class Field:
    """One question: its .env key, flag, default, check, and how the wizard asks it."""

    key: str
    flag: str | None
    default: str | None
    normalise: Callable[[str], str]
    question: str
    secret: bool = False

    @property
    def dest(self) -> str | None:
        return self.flag.lstrip("-").replace("-", "_") if self.flag else None


FIELDS: tuple[Field, ...] = (
    Field(
        "TRADING_SYSTEM_HOST", "--host", None, normalise_host, "Host address the services announce"
    ),
    Field("AUTH_ENABLED", "--auth-enabled", "false", normalise_bool, "Enable authentication?"),
    Field("DATABASE_TYPE", None, "postgresql", normalise_database_type, "Database type"),
    Field("POSTGRES_HOST", "--postgres-host", "localhost", normalise_host, "PostgreSQL host"),
    Field("POSTGRES_PORT", "--postgres-port", "5432", normalise_port, "PostgreSQL port"),
    Field("POSTGRES_DB", "--postgres-db", "rec_io_db", normalise_identifier, "Database name"),
    Field("POSTGRES_USER", "--postgres-user", "rec_io_user", normalise_identifier, "Database user"),
    Field(
        "POSTGRES_PASSWORD",
        "--postgres-password-file",
        None,
        normalise_password,
        "Database password",
        secret=True,
    ),
)
FIELD_BY_KEY = {field.key: field for field in FIELDS}
# The sslmode init and check connect with. Deliberately not in FIELDS, so never written to or read
# from .env: REC.IO's services read only the documented keys (POSTGRES_HOST..POSTGRES_PASSWORD)
# from .env, so a POSTGRES_SSLMODE there would promise encryption they do not apply, and every
# existing .env would gain a line on the next init. It is a setting of this run: --db-sslmode,
# else the environment (POSTGRES_SSLMODE, else DATABASE_URL's ?sslmode=), else prefer.
SSLMODE_FIELD = Field(
    "POSTGRES_SSLMODE", "--db-sslmode", "prefer", normalise_sslmode, "PostgreSQL sslmode"
)
ENV_ORDER = tuple(field.key for field in FIELDS)
URL_KEYS = {
    "username": "POSTGRES_USER",
    "password": "POSTGRES_PASSWORD",
    "hostname": "POSTGRES_HOST",
    "port": "POSTGRES_PORT",
    "path": "POSTGRES_DB",
}


def parse_database_url(url: str, where: str) -> dict[str, str]:
    """POSTGRES_* values from postgresql://user:pass@host:port/db (percent-encoded)."""
    try:
        found = parse_url(url)
    except UsageError as error:
        # Name the place the URL came from (flag or environment); the text never shows a password.
        raise UsageError(error.message.replace("DATABASE_URL", where, 1), hint=error.hint) from None
    return found  # with POSTGRES_SSLMODE, which resolve() skips and resolve_sslmode() takes


PASSWORD_LINE_LIMIT = 4096  # characters; a password file may be a pipe, so no size is known


def read_password_file(name: str, flag: str = "--postgres-password-file") -> str:
    """The first line of FILE, or of stdin for `-`, without its line ending."""
    try:
        if name == "-":
            line = sys.stdin.readline(PASSWORD_LINE_LIMIT + 1)
        else:
            with Path(name).expanduser().open(encoding="utf-8") as handle:
                line = handle.readline(PASSWORD_LINE_LIMIT + 1)
    except FileNotFoundError:
        raise UsageError(
            f"{flag} {name}: no such file",
            hint="give a file whose first line is the password, or - for stdin",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"{flag} {name}: cannot read it ({exc.__class__.__name__})",
            hint="give a readable file whose first line is the password, or - for stdin",
        ) from None
    line = line.rstrip("\r\n")
    if len(line) > PASSWORD_LINE_LIMIT:
        raise UsageError(
            f"{flag} {name}: its first line is longer than {PASSWORD_LINE_LIMIT} characters",
            hint="give a file whose first line is the password, or - for stdin",
        )
    return line


def describe_source(field: Field, source: str) -> str:
    """Where a bad value was found, in the words a user would search for."""
    if source.startswith("flag "):
        return source.removeprefix("flag ")
    if source == "flag":
        return field.flag or field.key
    if source.startswith("environment "):
        return f"{source.removeprefix('environment ')} in the environment"
    if source.startswith("file "):
        return f"the password in {source.removeprefix('file ')}"
    return f"{field.key} in {source}"


def check(field: Field, raw: str, where: str) -> str:
    try:
        return field.normalise(raw)
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}", hint=fix_for(field, where)) from None


def fix_for(field: Field, where: str) -> str:
    """What to do about a bad value, in terms of where it came from."""
    if where.endswith("in the environment"):
        name = where.split()[0]
        return f"set {name} to a valid value, or unset it"
    if where.endswith("in .env"):
        flag = f", or run `{PROGRAM} init {field.flag} ...`" if field.flag else ""
        return f"correct {field.key} in .env{flag}"
    if field.key == "AUTH_ENABLED":
        return "use --auth-enabled or --no-auth-enabled"
    return f"pass a valid {field.flag}" if field.flag else f"set {field.key} correctly"


def _flag_values(args: argparse.Namespace) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for field in FIELDS:
        raw = getattr(args, field.dest, None) if field.dest else None
        if raw is None:
            continue
        if field.key == "AUTH_ENABLED":
            found[field.key] = ("true" if raw else "false", "flag")
        elif field.key == "POSTGRES_PASSWORD":
            found[field.key] = (read_password_file(raw), "file " + ("stdin" if raw == "-" else raw))
        else:
            found[field.key] = (str(raw), f"flag {field.flag}")
    return found


def resolve(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    env_file: Mapping[str, str | None],
    detected_host: tuple[str, str],
    *,
    rejected: dict[str, str] | None = None,
) -> dict[str, Value]:
    """Every field's value and source, validated; UsageError (exit 2) names what is wrong.

    With `rejected` (the wizard will ask), a bad value in .env is no error: the next source's
    value stands, and `rejected` gets what was wrong with it, so the wizard can say so and ask.
    """
    layers: list[dict[str, tuple[str, str]]] = [_flag_values(args)]
    if getattr(args, "database_url", None):
        url_values = parse_database_url(args.database_url, "--database-url")
        layers.append({k: (v, "flag --database-url") for k, v in url_values.items()})
    layers.append(
        {f.key: (environ[f.key], f"environment {f.key}") for f in FIELDS if environ.get(f.key)}
    )
    if environ.get("DATABASE_URL"):
        url_values = parse_database_url(environ["DATABASE_URL"], "DATABASE_URL in the environment")
        layers.append({k: (v, "environment DATABASE_URL") for k, v in url_values.items()})
    layers.append({f.key: (v, ".env") for f in FIELDS if (v := env_file.get(f.key))})
    layers.append({"TRADING_SYSTEM_HOST": detected_host})
    layers.append({f.key: (f.default, "default") for f in FIELDS if f.default is not None})
    values: dict[str, Value] = {}
    for field in FIELDS:
        for layer in layers:
            if field.key in layer:
                raw, source = layer[field.key]
                where = describe_source(field, source)
                try:
                    value = check(field, raw, where)
                except UsageError as error:
                    if rejected is None or source != ".env":
                        raise
                    rejected[field.key] = error.message
                    continue
                values[field.key] = Value(field.key, value, source, field.secret)
                break
    return values


def given_by_the_user(value: Value) -> bool:
    """Whether a value came from the user (a flag, the environment, .env), not a default, the
    detected host or a generated password: a re-run with every value given asks nothing."""
    return value.source == ".env" or value.source.startswith(("flag", "environment", "file"))


def resolve_sslmode(args: argparse.Namespace, environ: Mapping[str, str]) -> Value:
    """The sslmode and its source: --db-sslmode > --database-url's ?sslmode= > POSTGRES_SSLMODE >
    DATABASE_URL's ?sslmode= > prefer. Dropping a mode the user gave would silently downgrade
    the connection (require -> prefer), so every one of them counts; a bad one is a UsageError.
    """
    field = SSLMODE_FIELD
    layers: list[tuple[str | None, str]] = [
        (getattr(args, "db_sslmode", None), "flag --db-sslmode")
    ]
    if getattr(args, "database_url", None):
        url_values = parse_database_url(args.database_url, "--database-url")
        layers.append((url_values.get(field.key), "flag --database-url"))
    layers.append((environ.get(field.key), f"environment {field.key}"))
    if environ.get("DATABASE_URL"):
        url_values = parse_database_url(environ["DATABASE_URL"], "DATABASE_URL in the environment")
        layers.append((url_values.get(field.key), "environment DATABASE_URL"))
    for raw, source in layers:
        if raw:
            return Value(field.key, check(field, raw, describe_source(field, source)), source)
    return Value(field.key, str(field.default), "default")


def generate_password() -> str:
    """32 URL-safe characters (192 bits): no `$`, quotes, backslash or spaces, so .env is safe."""
    import secrets  # random and hashlib come with it: ~3 ms a run that needs no password skips

    return secrets.token_urlsafe(24)
