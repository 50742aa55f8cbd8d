"""The database settings a service connects with: POSTGRES_* from the environment over the
project's .env, what `check` tests. The .env is read through the same stat cache as the host, so
an edit is seen by the next call; nothing here imports psycopg.

    import psycopg, recio_setup
    psycopg.connect(recio_setup.get_database_url())        # or **recio_setup.get_db_settings()
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from recio_setup.errors import PROGRAM, RecioError
from recio_setup.runtime.env_values import env_file_value

if TYPE_CHECKING:
    from recio_setup.runtime.api import Root

# libpq's sslmode words: the one list the flag, the environment, URLs and DbSettings check against.
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
SSLMODE_ENV = "POSTGRES_SSLMODE"
# .env key -> libpq's keyword (psycopg.connect takes them as keyword arguments).
KEYWORDS = {
    "POSTGRES_HOST": "host",
    "POSTGRES_PORT": "port",
    "POSTGRES_DB": "dbname",
    "POSTGRES_USER": "user",
    "POSTGRES_PASSWORD": "password",
}


class DatabaseSettingsError(RecioError):
    """The settings are missing or unusable; the message says where to look and what to run."""


def get_db_settings(*, root: Root = None) -> dict[str, Any]:
    """{host, port, dbname, user, password, sslmode} for psycopg.connect(**settings). Each
    POSTGRES_* from the environment, else the project's .env; the sslmode from POSTGRES_SSLMODE,
    else prefer (it is never in .env)."""
    # Here, not at the top: SSLMODES is all db/url.py and the CLI want of this module.
    from recio_setup.runtime.api import _project

    env_file = _project(root, confirm=True).env_file
    found = {key: os.environ.get(key) or env_file_value(env_file, key) for key in KEYWORDS}
    missing = [key for key, value in found.items() if not value]
    if missing:
        raise DatabaseSettingsError(
            f"{', '.join(missing)} not set in the environment nor in {env_file}; "
            f"run `{PROGRAM} init` to write them"
        )
    settings: dict[str, Any] = {KEYWORDS[key]: value for key, value in found.items()}
    port = settings["port"].strip()
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise DatabaseSettingsError(
            f"POSTGRES_PORT {port!r} is not a port number; correct it, or run `{PROGRAM} init`"
        )
    settings["port"] = int(port)
    sslmode = os.environ.get(SSLMODE_ENV) or "prefer"
    if sslmode not in SSLMODES:
        raise DatabaseSettingsError(
            f"{SSLMODE_ENV} {sslmode!r} is not an sslmode (one of {', '.join(SSLMODES)})"
        )
    settings["sslmode"] = sslmode
    return settings


def get_database_url(*, root: Root = None) -> str:
    """The same settings as one postgresql:// URL, every part percent-encoded (a password may
    hold `@ : / ?`), the password included: keep it out of logs."""
    s = get_db_settings(root=root)
    host = f"[{s['host']}]" if ":" in s["host"] else s["host"]
    userinfo = f"{quote(s['user'], safe='')}:{quote(s['password'], safe='')}"
    path = quote(s["dbname"], safe="")
    return f"postgresql://{userinfo}@{host}:{s['port']}/{path}?sslmode={s['sslmode']}"
