"""The only module that prints.

Status and progress go to stderr, results to stdout. On a terminal they are rich tables; otherwise
plain lines, written without importing rich; with --json the versioned envelope is the only thing
written to stdout. Every string passes through `redact`, so a secret registered with `add_secret`,
or one that looks like a secret (masking.mask_text), never reaches any output.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal, TextIO

from recio_setup import __version__
from recio_setup.errors import PROGRAM, RecioError
from recio_setup.masking import mask_secrets, mask_text
from recio_setup.result import Check, Result
from recio_setup.runtime.paths import LAUNCHER_ROOT_ENV

JSON_SCHEMA_VERSION = 1
ColorChoice = Literal["auto", "always", "never"]
ROUTINE_KINDS = ("create folder", "create file")
STATUS_STYLE = {"ok": "green", "warn": "yellow", "fail": "red", "info": "cyan"}


def program_name() -> str:
    """How the user started us: bootstrap.py users may not have `recio-setup` on PATH."""
    return "python3 bootstrap.py" if os.environ.get(LAUNCHER_ROOT_ENV) else "recio-setup"


class Plain:
    """A stream that is not a terminal (a pipe, a CI log): each line as it is, no markup, no
    colour, no wrapping. It needs no rich, whose import alone costs ~40 ms of every start."""

    is_terminal = False

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def line(self, text: str, style: str | None = None) -> None:  # noqa: ARG002
        self.stream.write(text + "\n")
        self.stream.flush()


class Rich(Plain):
    """A terminal, or a stream the user asked to colour (--color always, FORCE_COLOR)."""

    def __init__(self, stream: TextIO, color: ColorChoice) -> None:
        from rich.console import Console

        super().__init__(stream)
        no_color = color == "never" or (color == "auto" and "NO_COLOR" in os.environ)
        force = True if color == "always" else None
        self.console = Console(
            file=stream, no_color=no_color, force_terminal=force, highlight=False
        )
        self.is_terminal = self.console.is_terminal

    def line(self, text: str, style: str | None = None) -> None:
        from rich.markup import escape

        self.console.print(escape(text), style=style, soft_wrap=not self.is_terminal)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):  # a closed or exotic stream
        return False


def sink(stream: TextIO, color: ColorChoice) -> Plain:
    if color == "always" or os.environ.get("FORCE_COLOR") or _is_tty(stream):
        return Rich(stream, color)
    return Plain(stream)


class Output:
    def __init__(
        self,
        *,
        json_mode: bool = False,
        quiet: bool = False,
        verbose: bool = False,
        color: ColorChoice = "auto",
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.prog = program_name()
        self.quiet = quiet
        self.verbose = verbose
        self.color = color
        self._streams = (stdout, stderr)
        self._out: Plain | None = None
        self._err: Plain | None = None
        self._secrets: set[str] = set()

    @property
    def out(self) -> Plain:
        if self._out is None:
            self._out = sink(self._streams[0] or sys.stdout, self.color)
        return self._out

    @property
    def err(self) -> Plain:
        if self._err is None:
            self._err = sink(self._streams[1] or sys.stderr, self.color)
        return self._err

    # -- secrets ---------------------------------------------------------------------------
    def add_secret(self, secret: str | None) -> None:
        """Mask this string wherever it would appear (short strings would mask too much)."""
        if secret and len(secret) >= 4:
            self._secrets.add(secret)

    def add_secrets(self, secrets: Iterable[str | None]) -> None:
        for secret in secrets:
            self.add_secret(secret)

    def add_key_lines(self, pem: bytes) -> None:
        """Mask every line of a private key's body (its base64), should any path ever echo one;
        the BEGIN/END lines and PEM headers are not secret, and messages name them."""
        for raw in pem.decode("latin-1").splitlines():
            line = raw.strip()
            if line and not line.startswith("-----") and ":" not in line:
                self.add_secret(line)

    def redact(self, text: str) -> str:
        """Mask the run's secrets and whatever looks like one."""
        return mask_text(mask_secrets(text, self._secrets))

    def shown(self, text: str) -> str:
        """Text as the user sees it: redacted, and the PROGRAM placeholder of a command filled
        in with how the user launched the tool."""
        return self.redact(text).replace(f"`{PROGRAM}", f"`{self.prog}")

    # -- stderr: status, progress, warnings --------------------------------------------------
    def status(self, message: str) -> None:
        if not self.quiet:
            self._err_line(message, style="dim")

    def detail(self, message: str) -> None:
        if self.verbose and not self.quiet:
            self._err_line(message, style="dim")

    def warn(self, message: str) -> None:
        self._err_line(f"warning: {message}", style="yellow")

    def _err_line(self, message: str, style: str | None = None) -> None:
        self.err.line(self.shown(message), style)

    @contextlib.contextmanager
    def progress(self, label: str) -> Iterator[None]:
        """A spinner on a terminal, one line otherwise, for anything that may take a while."""
        label = self.shown(label)
        err = self.err
        if self.quiet:
            yield
        elif isinstance(err, Rich) and err.is_terminal:
            from rich.markup import escape

            with err.console.status(escape(label)):
                yield
        else:
            err.line(f"{label} ...")
            yield

    # -- errors -------------------------------------------------------------------------------
    def error(self, error: RecioError, *, command: str, log_path: str | None = None) -> None:
        message = self.shown(error.message)
        hint = self.shown(error.hint) if error.hint else None
        self._err_line(f"error: {message}", style="bold red")
        if hint:
            self._err_line(f"hint: {hint}", style="yellow")
        if log_path:
            self._err_line(f"details: {log_path}")
        if self.json_mode:
            payload = {"message": message, "hint": hint, "cause": error.cause, "log": log_path}
            self._write_json(command, error.exit_code, None, payload)

    # -- stdout: results ----------------------------------------------------------------------
    def result(self, result: Result) -> None:
        if self.json_mode:
            self._write_json(result.command, result.exit_code, result.to_json(), None)
            return
        if self.quiet:
            # Only errors: what failed and its fix, then the summary.
            for check in [c for c in result.checks if c.status == "fail" or c.loud]:
                self._err_line(f"[{check.status}] {check.name}: {check.detail}", "red")
                if check.fix:
                    self._err_line(f"      fix: {check.fix}")
            if result.exit_code != 0 and result.summary:
                self._err_line(result.summary)
            return
        self._render_values(result)
        self._render_actions(result)
        self._render_checks(result.checks)
        self._render_tables(result)
        for note in result.notes:
            self._print(f"note: {note}", style="cyan")
        if result.summary:
            style = "green" if result.exit_code == 0 else "red"
            self._print(result.summary, style=f"bold {style}")

    def _write_json(
        self, command: str, exit_code: int, result: dict[str, Any] | None, error: Any
    ) -> None:
        envelope = {
            "schema_version": JSON_SCHEMA_VERSION,
            "tool": "recio-setup",
            "tool_version": __version__,
            "command": command,
            "ok": exit_code == 0,
            "exit_code": exit_code,
            "result": result,
            "error": error,
        }
        # Each string is masked before encoding: in JSON text a secret holding `"` or `\\` is
        # escaped, and would no longer match.
        text = json.dumps(self._redact_json(envelope), indent=2, sort_keys=False)
        stream = self._streams[0] or sys.stdout
        stream.write(text + "\n")
        stream.flush()

    def _redact_json(self, item: Any) -> Any:
        if isinstance(item, str):
            return self.shown(item)
        if isinstance(item, dict):
            return {key: self._redact_json(value) for key, value in item.items()}
        if isinstance(item, (list, tuple)):
            return [self._redact_json(value) for value in item]
        return item

    def _print(self, text: str, style: str | None = None) -> None:
        self.out.line(self.shown(text), style)

    def table(
        self,
        title: str,
        columns: list[str],
        rows: list[list[str]],
        *,
        status_column: int | None = None,
    ) -> None:
        """A table on a terminal (fitted to its width); tab-free aligned lines otherwise. The
        cells of `status_column` (ok, warn, fail, info) get their colour; the word reads
        without it."""
        rows = [[self.shown(cell) for cell in row] for row in rows]
        out = self.out
        if isinstance(out, Rich) and out.is_terminal:
            from rich.table import Table
            from rich.text import Text

            table = Table(title=title, title_justify="left", expand=False)
            for index, column in enumerate(columns):
                # Never narrower than its longest word, so a path or name is not cut in two
                # (MASTER_PORT_MA|NIFEST.json); the prose columns wrap between words instead.
                longest = max((len(w) for row in rows for w in row[index].split()), default=0)
                table.add_column(column, overflow="fold", min_width=min(longest, 60))
            for row in rows:
                cells = [Text(cell) for cell in row]
                if status_column is not None:
                    cells[status_column].stylize(STATUS_STYLE.get(row[status_column], ""))
                table.add_row(*cells)
            out.console.print(table)
            return
        out.line(f"{title}:")
        widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
        for row in [columns, *rows]:
            out.line("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())

    def _render_values(self, result: Result) -> None:
        if result.values and result.show_values:
            rows = [[v.name, v.shown(), v.source] for v in result.values]
            self.table("Values", ["variable", "value", "source"], rows)

    def _render_actions(self, result: Result) -> None:
        actions = result.actions
        if not self.verbose and not result.dry_run:
            # Creating what was missing is routine: one line. What changed or failed gets a row.
            routine = [a for a in actions if a.state == "done" and a.kind in ROUTINE_KINDS]
            actions = [a for a in actions if a not in routine]
            if routine:
                folders = sum(1 for a in routine if a.kind == "create folder")
                self._print(
                    f"created {folders} folder(s) and {len(routine) - folders} file(s) "
                    "with their modes (--verbose lists them)"
                )
        if not actions:
            return
        title = "Plan (dry run: nothing was changed)" if result.dry_run else "Actions"
        reasons = [a.reason + (f" ({a.detail})" if a.detail else "") for a in actions]
        if not self.out.is_terminal:
            items = [
                (f"[{a.state}] {a.kind} {a.path}", why)
                for a, why in zip(actions, reasons, strict=True)
            ]
            self._plain_items(title, items, "why")
            return
        rows = [[a.state, a.kind, a.path, why] for a, why in zip(actions, reasons, strict=True)]
        self.table(title, ["state", "action", "path", "reason"], rows)

    def _plain_items(self, title: str, items: Sequence[tuple[str, str | None]], label: str) -> None:
        """For a log or a pipe, where a fixed-width table runs to hundreds of columns: one item
        per line, its explanation indented below it."""
        self.out.line(f"{title}:")
        for line, below in items:
            self.out.line(f"  {self.shown(line)}")
            if below:
                self.out.line(f"      {label}: {self.shown(below)}")

    def _render_checks(self, checks: list[Check]) -> None:
        if not checks:
            return
        if not self.out.is_terminal:
            items = [(f"[{c.status}] {c.name}: {c.detail}", c.fix) for c in checks]
            self._plain_items("Checks", items, "fix")
            return
        rows = [[c.name, c.status, c.detail, c.fix or ""] for c in checks]
        self.table("Checks", ["check", "status", "detail", "fix"], rows, status_column=1)

    def _render_tables(self, result: Result) -> None:
        for table in result.tables:
            self.table(table.title, table.columns, table.rows)

    def text(self, text: str) -> None:
        """A block of result text (a diff, a help paragraph) printed to stdout as it is."""
        if not self.json_mode:
            stream = self._streams[0] or sys.stdout
            stream.write(self.shown(text).rstrip("\n") + "\n")
            stream.flush()
