""".env: read with python-dotenv, written by our own line-preserving writer.

The writer keeps comments, order, blank lines and keys it does not know; it changes only the lines
whose value changes and appends new keys at the end. Every value is encoded so that python-dotenv's
`dotenv_values()` (default settings, interpolation on) reads it back identically, and the whole new
file is re-parsed to prove it before anything is written; a value that cannot be represented (one
holding `${`, which python-dotenv expands) is refused.
"""

from __future__ import annotations

import difflib
import io
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from recio_setup.errors import UsageError
from recio_setup.masking import has_secret, is_secret_name, mask_text
from recio_setup.result import MASK

BARE_VALUE = re.compile(r"[A-Za-z0-9_./:@+,%-]*")
BOM = "\ufeff"
# What python-dotenv's parser reads before a key: the blank lines and indentation it folds into
# the binding's text, then an optional `export ` (its _multiline_whitespace and _export). A
# changed line keeps both.
BINDING_PREFIX = re.compile(r"\s*(?:export[^\S\r\n]+)?")

# python-dotenv logs a warning for every line it cannot parse; we report those lines ourselves.
_dotenv_log = logging.getLogger("dotenv")
_dotenv_log.addHandler(logging.NullHandler())
_dotenv_log.propagate = False


@dataclass(frozen=True)
class Line:
    """One binding of the file as python-dotenv split it: its key (None for comments) and text."""

    key: str | None
    text: str
    error: bool
    number: int


@dataclass
class EnvDocument:
    lines: list[Line] = field(default_factory=list)
    # python-dotenv skips a byte order mark before the first line and leaves it out of the
    # lines' text: it is kept here, so a rewritten file starts as the old one did.
    bom: str = ""

    @classmethod
    def parse(cls, text: str) -> EnvDocument:
        lines = [
            Line(b.key, b.original.string, b.error, b.original.line)
            for b in parse_stream(io.StringIO(text))
        ]
        return cls(lines, BOM if text.startswith(BOM) else "")

    @property
    def text(self) -> str:
        return self.bom + "".join(line.text for line in self.lines)

    def values(self) -> dict[str, str | None]:
        return dict(dotenv_values(stream=io.StringIO(self.text)))

    def bad_lines(self) -> list[Line]:
        return [line for line in self.lines if line.error]

    def updated(
        self, desired: Mapping[str, str], order: Iterable[str]
    ) -> tuple[EnvDocument, list[str]]:
        """A new document holding `desired`; returns it and the keys whose line changed."""
        current = self.values()
        lines = list(self.lines)
        changed: list[str] = []
        last_index = {line.key: i for i, line in enumerate(lines) if line.key and not line.error}
        for key in order:
            if key not in desired or (current.get(key) == desired[key] and key in last_index):
                continue
            new_line = encode_line(key, desired[key])
            if key in last_index:
                index = last_index[key]
                old = lines[index]
                prefix = BINDING_PREFIX.match(old.text)
                lines[index] = Line(
                    key, (prefix[0] if prefix else "") + new_line, False, old.number
                )
            else:
                if lines and not lines[-1].text.endswith("\n"):
                    last = lines[-1]
                    lines[-1] = Line(last.key, last.text + "\n", last.error, last.number)
                lines.append(Line(key, new_line, False, 0))
            changed.append(key)
        document = EnvDocument(lines, self.bom)
        document.verify(desired)
        return document, changed

    def verify(self, desired: Mapping[str, str]) -> None:
        """Refuse, before writing, any value that would not read back identically."""
        read_back = self.values()
        for key, value in desired.items():
            if read_back.get(key) != value:
                raise UsageError(
                    f"the value for {key} would not read back identically from .env",
                    hint="avoid `${` and line breaks in values; python-dotenv expands `${...}`",
                )


def encode_value(key: str, value: str) -> str:
    """The text after `KEY=` that python-dotenv decodes back to exactly `value`."""
    if "${" in value:
        raise UsageError(
            f"the value for {key} contains `${{`, which python-dotenv would expand",
            hint="choose a value without `${`",
        )
    if any(ch in value for ch in "\n\r\x00"):
        raise UsageError(
            f"the value for {key} contains a line break or NUL byte",
            hint="values in .env must be a single line",
        )
    if BARE_VALUE.fullmatch(value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def encode_line(key: str, value: str) -> str:
    line = f"{key}={encode_value(key, value)}\n"
    if dotenv_values(stream=io.StringIO(line)).get(key) != value:
        raise UsageError(
            f"the value for {key} cannot be written to .env so that it reads back identically",
            hint="avoid `${`, line breaks and control characters in values",
        )
    return line


def _is_secret_binding(key: str, text: str) -> bool:
    """By its key (DB_PWD, SESSION_COOKIE) or by what its line holds (`password=`, URL
    credentials, a token parameter, a secret in an inline comment)."""
    return is_secret_name(key) or has_secret(text)


def _shown_comment(text: str) -> str:
    """A comment line; a commented-out secret binding (`#POSTGRES_PASSWORD=...`) is masked."""
    content = text.lstrip().lstrip("#").strip()
    bindings = list(parse_stream(io.StringIO(content + "\n"))) if content else []
    first = bindings[0] if bindings else None
    if first and first.key and not first.error and _is_secret_binding(first.key, content):
        return f"{text[: text.index(first.key) + len(first.key)]}={MASK}\n"
    return mask_text(text)


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def _shown_line(line: Line, secrets: set[str], changed: bool) -> str:
    """One line as a diff may show it: secrets masked, unreadable lines not echoed at all."""
    body = line.text if line.text.endswith("\n") else line.text + "\n"
    prefix = body[: len(body) - len(body.lstrip("\n"))]
    if line.error:
        # It may be half of a secret python-dotenv could not read; never echo it.
        return f"{prefix}# (line {line.number}: unreadable, not shown)\n"
    if line.key is None:
        return prefix + "".join(map(_shown_comment, body[len(prefix) :].splitlines(True)))
    if not _PLAIN_KEY.fullmatch(line.key):
        # `POSTGRES_PASSWORD:secret` reads as one odd key: its text may hold the secret.
        return f"{prefix}# (line {line.number}: a key that is not a name, not shown)\n"
    if line.key in secrets or _is_secret_binding(line.key, body):
        # The whole value: a part of it left visible could be part of the secret.
        return f"{prefix}{line.key}={MASK}{' (changed)' if changed else ''}\n"
    return body


def masked_diff(old: str, new: str, secret_keys: Iterable[str], label: str = ".env") -> str:
    """A unified diff of two .env texts; secret-looking values masked, marked when changed."""
    secrets = set(secret_keys)
    old_values = EnvDocument.parse(old).values()

    def render(text: str, compare: Mapping[str, str | None] | None) -> list[str]:
        document = EnvDocument.parse(text)
        values = document.values()
        lines = [
            _shown_line(
                line,
                secrets,
                compare is not None
                and bool(line.key)
                and compare.get(line.key or "") != values.get(line.key or ""),
            )
            for line in document.lines
        ]
        return "".join(lines).splitlines(keepends=True)

    return "".join(
        difflib.unified_diff(
            render(old, None), render(new, old_values), f"{label} (now)", f"{label} (after)"
        )
    )
