"""What a command returns: actions, checks and values, rendered by cli/output.py as text or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "warn", "fail", "info"]
# The command that repairs a finding by itself, when one does (check's summary note uses it).
Repair = Literal["init", "reset"]
ActionState = Literal["planned", "done", "failed", "skipped"]

MASK = "********"


@dataclass
class Value:
    """A configuration value and where it came from (flag, environment, .env, detected, default)."""

    name: str
    value: str
    source: str
    secret: bool = False

    def shown(self) -> str:
        return MASK if self.secret and self.value else self.value

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.shown(),
            "source": self.source,
            "secret": self.secret,
        }


@dataclass
class Check:
    """One finding of an inspection: what was looked at, how it is, and how to fix it.

    `id` is stable for scripts (README lists them: env.mode, tree.entry, db.connect, ...);
    `name` and `detail` are for people and may change."""

    id: str
    name: str
    status: Status
    detail: str
    fix: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    repair: Repair | None = None
    # Said even with -q, like a failure: a file of the user's was replaced (it is archived).
    loud: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
            "repair": self.repair,
            **({"data": self.data} if self.data else {}),
        }


@dataclass
class ActionRecord:
    """An action as reported: planned (dry run), done, failed or skipped."""

    kind: str
    path: str
    reason: str
    state: ActionState
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "path": self.path,
            "reason": self.reason,
            "state": self.state,
            "detail": self.detail,
        }


@dataclass
class Table:
    """Rows a command shows as a table in text output (JSON carries the data they come from)."""

    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Result:
    """Everything a command has to say. exit_code follows docs/architecture.md (0, 1, 2, 3, 130)."""

    command: str
    exit_code: int = 0
    summary: str = ""
    values: list[Value] = field(default_factory=list)
    actions: list[ActionRecord] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # what one command alone reports
    dry_run: bool | None = None  # None: the command has no --dry-run, and JSON leaves it out
    env_diff: str | None = None  # the masked .env change of a dry run
    tables: list[Table] = field(default_factory=list)
    # Text output only: False when the wizard has just shown the values.
    show_values: bool = True

    @property
    def failed_checks(self) -> list[Check]:
        return [check for check in self.checks if check.status == "fail"]

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"summary": self.summary}
        if self.dry_run is not None:
            document["dry_run"] = self.dry_run
        document.update(
            {
                "values": [value.to_json() for value in self.values],
                # The same values by name, for a script: result.values_by_name.POSTGRES_PORT.value
                "values_by_name": {value.name: value.to_json() for value in self.values},
                "actions": [action.to_json() for action in self.actions],
                "checks": [check.to_json() for check in self.checks],
                "notes": self.notes,
                "env_diff": self.env_diff,
                "data": self.data,
            }
        )
        return document
