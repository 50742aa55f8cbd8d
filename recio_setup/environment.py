"""The inputs recio-setup reads from the environment and the command line that may hold secrets.

They are collected once, when a command starts, so the output masks them from its first line:
an echo of any part of them (a value parsed out of a malformed URL, a crash log) never shows.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping

from recio_setup.masking import url_secrets

SECRET_VARIABLES = ("POSTGRES_PASSWORD", "POSTGRES_ADMIN_PASSWORD")
URL_VARIABLES = ("DATABASE_URL", "POSTGRES_ADMIN_URL")
URL_FLAGS = ("database_url", "admin_url")


def input_secrets(args: argparse.Namespace, environ: Mapping[str, str]) -> Iterator[str]:
    """Every password the environment or a URL flag holds, in each form it may be echoed."""
    for name in SECRET_VARIABLES:
        if environ.get(name):
            yield environ[name]
    for name in URL_VARIABLES:
        yield from url_secrets(environ.get(name))
    for flag in URL_FLAGS:
        yield from url_secrets(getattr(args, flag, None))
