"""DATABASE_URL: `postgresql://USER:PASSWORD@HOST:PORT/DB[?sslmode=MODE]` -> POSTGRES_* values.

Strict where a lenient reading would silently change a value: a URL without `//`, userinfo that
spills past the host, a `%` that is not an escape, or escapes that do not decode to UTF-8 are
refused (they would become a database name, a dropped fragment or a replacement character in the
password). Error messages never show a password (masking.redact_url) and, for a part that does
not decode, not the part either.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from recio_setup.errors import UsageError
from recio_setup.masking import redact_url
from recio_setup.runtime.database import SSLMODES

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _decoded(text: str, part: str) -> str:
    """`text` percent-decoded as UTF-8, or a UsageError naming the part (never its text)."""
    try:
        if _BAD_ESCAPE.search(text):
            raise ValueError(part)
        return unquote(text, errors="strict")
    except ValueError:  # UnicodeDecodeError included
        raise UsageError(
            f"DATABASE_URL: the {part} is not valid percent-encoded UTF-8",
            hint="write a special character as `%` and the two hex digits of each of its UTF-8 "
            "bytes (`@` is %40, `é` is %C3%A9), and a `%` itself as %25",
        ) from None


_URL_SCHEME = re.compile(r"^postgres(?:ql)?(?:\+[a-z0-9_]+)?$")


def parse_database_url(url: str) -> dict[str, str]:
    """postgresql://user:pass@host:port/db -> POSTGRES_* keys (percent-decoded).

    Only the parts present are returned; `?sslmode=` becomes POSTGRES_SSLMODE. Errors never
    show the password.
    """
    shown = redact_url(url)
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        # urlsplit drops tabs and line breaks silently: a password would lose characters.
        raise UsageError(
            "DATABASE_URL holds a control character (a tab, a line break...)",
            hint="percent-encode it (a tab is %09), or remove it",
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UsageError(
            f"DATABASE_URL {shown!r} is not a valid URL",
            # Not written as USER:PASSWORD@HOST: the output would mask it as a password.
            hint="use postgresql://USER@HOST:PORT/DBNAME, with `:PASSWORD` after USER "
            "(percent-encode special characters)",
        ) from None
    if not _URL_SCHEME.match(parts.scheme) or not url[len(parts.scheme) :].startswith("://"):
        raise UsageError(
            f"DATABASE_URL {shown!r} is not a PostgreSQL URL",
            hint="it must start with postgresql:// (or postgres://)",
        )
    after_host = re.split(r"(?=[/?#])", url.split("://", 1)[1], maxsplit=1)[1:]
    if "@" in "".join(after_host):
        # Userinfo spilled past the host: a password holding `/ ? #` was not percent-encoded,
        # and the rest of it would be read as the database name or a parameter.
        raise UsageError(
            f"DATABASE_URL {shown!r} has an `@` after the host",
            hint="percent-encode `/ ? # @` in the password (%2F %3F %23 %40)",
        )
    if "," in parts.netloc:
        raise UsageError(f"DATABASE_URL {shown!r} names several hosts; use one")
    values: dict[str, str] = {}
    if parts.hostname:
        values["POSTGRES_HOST"] = _decoded(parts.hostname, "host")
    if port is not None:
        values["POSTGRES_PORT"] = str(port)
    if parts.path.strip("/"):
        values["POSTGRES_DB"] = _decoded(parts.path.lstrip("/"), "database name")
    if parts.username:
        values["POSTGRES_USER"] = _decoded(parts.username, "user")
        if ":" in values["POSTGRES_USER"]:
            # An encoded `:` (%3A) may be the edge of a password: the name is never echoed.
            raise UsageError(
                "DATABASE_URL: the user name holds a `:` (%3A), which no PostgreSQL name here may",
                hint="put the password after a plain `:`: postgresql://USER:PASSWORD@HOST/DB",
            )
    if parts.password is not None:
        values["POSTGRES_PASSWORD"] = _decoded(parts.password, "password")
    for item in filter(None, parts.query.split("&")):
        key, _, value = item.partition("=")
        name = _decoded(key, "query")
        if name != "sslmode":
            raise UsageError(
                f"DATABASE_URL {shown!r}: unsupported query parameter {name!r}",
                hint=f"only sslmode is understood ({', '.join(SSLMODES)})",
            )
        if "POSTGRES_SSLMODE" in values:
            # libpq would take the last one; refuse rather than guess which the user meant.
            raise UsageError(
                f"DATABASE_URL {shown!r} gives sslmode more than once",
                hint="keep a single ?sslmode=MODE",
            )
        mode = _decoded(value, "sslmode")
        if mode not in SSLMODES:
            raise UsageError(
                f"DATABASE_URL {shown!r}: {mode!r} is not an sslmode",
                hint=f"use ?sslmode= with one of {', '.join(SSLMODES)} (e.g. ?sslmode=require), "
                "or leave it out for prefer",
            )
        values["POSTGRES_SSLMODE"] = mode
    if any("\x00" in value for value in values.values()):
        raise UsageError(f"DATABASE_URL {shown!r} contains a NUL character")
    return values
