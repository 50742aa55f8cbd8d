"""The environment as commands read it, and the secrets it (and the URL flags) hold.

A value a command reads must be UTF-8 text: Python hands an undecodable byte over as a lone
surrogate (surrogateescape), which fails only when the value is encoded to be written or sent,
after part of the work is done. TextEnvironment makes it bad input (exit 2) the moment a command
reads the variable, which inspect-then-plan puts before anything is written; a variable the
command does not read (POSTGRES_PASSWORD for `ports` or `reset`) stays out of its way.

The secrets are collected when a command starts, so the output masks them from its first line:
an echo of any part of them (a value parsed out of a malformed URL, a crash log) never shows.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping

from recio_setup.errors import UsageError
from recio_setup.masking import url_secrets

SECRET_VARIABLES = ("POSTGRES_PASSWORD", "POSTGRES_ADMIN_PASSWORD")
URL_VARIABLES = ("DATABASE_URL", "POSTGRES_ADMIN_URL")
URL_FLAGS = ("database_url", "admin_url")


class TextEnvironment(Mapping[str, str]):
    """A copy of the environment whose values are refused, naming the variable and never its
    value, when they are not UTF-8 text."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = dict(environ)

    def __getitem__(self, name: str) -> str:
        value = self._environ[name]
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(
                f"{name} in the environment holds bytes that are not UTF-8 text",
                hint=f"set {name} to UTF-8 text (check the encoding of the shell or file that "
                "sets it), or unset it",
            ) from None
        return value

    def __contains__(self, name: object) -> bool:
        return name in self._environ

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)


def input_secrets(args: argparse.Namespace, environ: Mapping[str, str]) -> Iterator[str]:
    """Every password the environment or a URL flag holds, in each form it may be echoed."""
    for name in SECRET_VARIABLES:
        if environ.get(name):
            yield environ[name]
    for name in URL_VARIABLES:
        yield from url_secrets(environ.get(name))
    for flag in URL_FLAGS:
        yield from url_secrets(getattr(args, flag, None))
