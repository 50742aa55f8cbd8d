"""The command line: argparse with errors as UsageError (so --json keeps its envelope), help
fitted to the terminal, the command found without importing every command, and hints for a
mistyped or misplaced option. app.py runs what it parses."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NoReturn

from recio_setup import __version__
from recio_setup.cli.output import program_name
from recio_setup.errors import UsageError
from recio_setup.runtime.paths import DEFAULT_USER

TOP_DESCRIPTION = """\
Set up, check and repair a local REC.IO trading-system environment.

With no command, `init` runs: it asks a few questions (or reads flags and environment variables
when there is no terminal or with --non-interactive), writes .env, installs the port manifest and
config, creates the data tree with private modes on credentials, and tests PostgreSQL.
"""

EXIT_CODES = """\
Exit codes: 0 success; 1 a check found problems or a step failed; 2 bad input (nothing written);
3 an unexpected error (a bug: the message names a log file); 130 interrupted."""
TOP_EPILOG = (
    EXIT_CODES
    + """

Run `recio-setup COMMAND --help` for the flags of a command."""
)


class HelpFormatter(argparse.HelpFormatter):
    """Re-wraps each paragraph to the terminal's width, keeping blank lines between them."""

    def __init__(self, prog: str, width: int | None = None) -> None:
        # argparse makes one for every add_argument and asks shutil for the width, which costs
        # each start shutil's import (zlib, bz2, lzma); os answers the same question.
        super().__init__(prog, width=width or _terminal_columns() - 2)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        paragraphs = [" ".join(p.split()) for p in text.strip().split("\n\n")]
        return "\n\n".join(
            textwrap.fill(p, width, initial_indent=indent, subsequent_indent=indent)
            for p in paragraphs
        )


def _terminal_columns() -> int:
    """As shutil.get_terminal_size: $COLUMNS, else the terminal on stdout, else 80."""
    with contextlib.suppress(ValueError):
        columns = int(os.environ.get("COLUMNS", "0"))
        if columns > 0:
            return columns
    if sys.__stdout__ is None:
        return 80
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (ValueError, OSError):
        return 80


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting, so --json still gets its envelope,
    and takes options only in full: `reset --a` must not quietly mean --all."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(
            message, hint=_suggestion(self, message) or f"see `{_help_of(self)} --help`"
        )


def _options(parser: argparse.ArgumentParser, *, taking_value: bool = False) -> set[str]:
    """Every option of the parser and its subcommands (or only those that take a value)."""
    options: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                options |= _options(sub, taking_value=taking_value)
        elif not taking_value or action.nargs != 0:
            options.update(action.option_strings)
    return options


def _commands_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_of(parser: argparse.ArgumentParser) -> str:
    """The command whose --help to point at: the run's one command, else the program."""
    ran = list(_commands_of(parser))
    return f"{parser.prog} {ran[0]}" if len(ran) == 1 else parser.prog


def _suggestion(parser: argparse.ArgumentParser, message: str) -> str | None:
    """For an unknown option: the command that takes it (`check --create-db`), else a close
    match among this command's options (`--hots`: `did you mean --host?`), else nothing."""
    if not message.startswith("unrecognized arguments:"):
        return None
    from recio_setup.cli.commands import COMMAND_NAMES, DEFAULT_COMMAND

    mine = [o.removeprefix("--") for o in _options(parser) if o.startswith("--")]
    words = message.split(":", 1)[1].split()
    if words and not words[0].startswith("-") and list(_commands_of(parser)) == [DEFAULT_COMMAND]:
        # `recio-setup bogus`: a word where the command goes, far from any (a close one is
        # caught before parsing), taken by init for an argument it does not have.
        return f"`{words[0]}` is not a command; the commands: {', '.join(COMMAND_NAMES)}"
    for word in words:
        if not word.startswith("--"):
            continue
        option = word.split("=")[0]
        # Every command's options, not only those of the parser built for this run.
        owners = [
            name for name, sub in _commands_of(build_parser()).items() if option in _options(sub)
        ]
        if owners:
            taken_by = " and ".join(f"`{name}`" for name in owners)
            return f"{option} is an option of {taken_by}, e.g. `{parser.prog} {owners[0]} {option}`"
        # Compared without the dashes, which every option shares: --bogus is not --verbose.
        close = difflib.get_close_matches(option.removeprefix("--"), mine, n=1, cutoff=0.7)
        if close:
            return f"did you mean --{close[0]}? (see `{_help_of(parser)} --help`)"
    return None


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("common options")
    group.add_argument(
        "--root",
        metavar="DIR",
        help="the REC.IO project folder (default: the folder holding bootstrap.py when run "
        "through it, even if $REC_PROJECT_ROOT is set; else $REC_PROJECT_ROOT, else the nearest "
        "folder above holding the port manifest)",
    )
    group.add_argument(
        "--user",
        metavar="USER_ID",
        default=DEFAULT_USER,
        help=f"the data-tree user, `user_` followed by digits (default: {DEFAULT_USER})",
    )
    group.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    group.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    group.add_argument("-v", "--verbose", action="store_true", help="print more detail")
    group.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour output (default: auto; NO_COLOR is honoured)",
    )


def command_module(name: str) -> ModuleType:
    return importlib.import_module(f"recio_setup.cli.commands.{name}")


def build_parser(only: str | None = None) -> Parser:
    """The parser with every command, or with `only` that one: each command's module imports
    what its run needs, so building all of them would make every run pay for all."""
    from recio_setup.cli.commands import COMMAND_NAMES

    parser = Parser(
        prog=program_name(),
        description=TOP_DESCRIPTION,
        epilog=TOP_EPILOG.replace("recio-setup", program_name()),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"recio-setup {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMAND_NAMES if only is None else (only,):
        module = command_module(name)
        sub = subparsers.add_parser(
            name,
            help=module.HELP,
            description=module.DESCRIPTION,
            formatter_class=HelpFormatter,
            epilog=EXIT_CODES,
        )
        module.add_arguments(sub)
        add_common_arguments(sub)
    return parser


def command_first(argv: Sequence[str]) -> list[str]:
    """The arguments with the command first, so common flags may come before it; no command
    means `init`.

    Found without importing every command where possible: the common options are the same for
    all commands, so when only they come before the word the scan stops at, they alone say
    whether a word is an option's value (`--root init`) or the command. Any other option before
    it (`--postgres-db check` is init's) makes the scan ask every command's options."""
    from recio_setup.cli.commands import COMMAND_NAMES, DEFAULT_COMMAND

    args = list(argv)
    if args in (["-h"], ["--help"], ["--version"]):
        return args
    common = Parser(add_help=False)
    add_common_arguments(common)
    found, stop = _scan(args, _options(common, taking_value=True))
    known = _options(common)
    if any(word.split("=")[0] not in known for word in args[:stop] if word.startswith("-")):
        found, stop = _scan(args, _options(build_parser(), taking_value=True))
    if found is None:
        return [DEFAULT_COMMAND, *args]
    word = args[found]
    if word not in COMMAND_NAMES:
        close = difflib.get_close_matches(word, COMMAND_NAMES, n=1)
        raise UsageError(f"unknown command {word!r}", hint=f"did you mean `{close[0]}`?")
    return [word, *args[:found], *args[found + 1 :]]


def _scan(args: list[str], takes_value: set[str]) -> tuple[int | None, int]:
    """Where the command word is (None: there is none), and where the scan stopped. A word close
    to a command name counts as a mistyped command."""
    from recio_setup.cli.commands import COMMAND_NAMES

    index = 0
    while index < len(args):
        word = args[index]
        if word == "--":
            break
        if word.startswith("-"):
            index += 2 if word in takes_value else 1
            continue
        if word in COMMAND_NAMES or difflib.get_close_matches(word, COMMAND_NAMES, n=1):
            return index, index
        break
    return None, index
