"""The environment variables recio-setup reads, checked once when a command starts.

A variable it uses as text must be UTF-8: Python hands an undecodable byte over as a lone
surrogate (surrogateescape), which fails only when the value is encoded to be written or sent,
after part of the work is done. The secrets these inputs (and the URL flags) hold are collected
at the same moment, so the output masks them from its first line: an echo of any part of them (a
value parsed out of a malformed URL, a crash log) never shows.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping

from recio_setup.errors import UsageError
from recio_setup.masking import url_secrets
from recio_setup.settings import ENV_ORDER, SSLMODE_FIELD

SECRET_VARIABLES = ("POSTGRES_PASSWORD", "POSTGRES_ADMIN_PASSWORD")
URL_VARIABLES = ("DATABASE_URL", "POSTGRES_ADMIN_URL")
URL_FLAGS = ("database_url", "admin_url")
TEXT_VARIABLES = (*ENV_ORDER, SSLMODE_FIELD.key, *URL_VARIABLES, *SECRET_VARIABLES)


def check_text(environ: Mapping[str, str]) -> None:
    """Refuse (exit 2) a variable recio-setup uses that is not UTF-8, naming it, not its value."""
    for name in TEXT_VARIABLES:
        try:
            environ.get(name, "").encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(
                f"{name} in the environment holds bytes that are not UTF-8 text",
                hint=f"set {name} to UTF-8 text (check the encoding of the shell or file that "
                "sets it), or unset it",
            ) from None


def input_secrets(args: argparse.Namespace, environ: Mapping[str, str]) -> Iterator[str]:
    """Every password the environment or a URL flag holds, in each form it may be echoed."""
    for name in SECRET_VARIABLES:
        if environ.get(name):
            yield environ[name]
    for name in URL_VARIABLES:
        yield from url_secrets(environ.get(name))
    for flag in URL_FLAGS:
        yield from url_secrets(getattr(args, flag, None))
