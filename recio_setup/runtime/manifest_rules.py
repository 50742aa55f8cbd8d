"""The rules a port manifest must follow, as one pure function from parsed JSON to problems.

Each problem names its JSON path (`core_services.trade_executor.port`), what is wrong, and a fix;
for a port the fix is a free port in the range the service belongs in.

Port policy, as REC.IO manifests write it (and judged by the manifest's own values when present):
  "port_ranges": {"core": {"start": 3000, "end": 4000}, "safe": {"start": 8000, "end": 8100}}
  "notes": {"avoid_ports": [5000, 7000, 9000, 10000]}
A range may also be written "8000-8100" or [8000, 8100], under `core`/`core_range` and
`safe`/`safe_range`. watchdog_services must sit in the safe range; core_services in the core
range or the safe range (the REC.IO services trade_executor, active_trade_supervisor and
auto_entry_supervisor are core services on 80xx ports). Unknown keys are allowed everywhere.

A service may say how it starts: "command": ["backend/symbol_price_watchdog.py", "BTC"], the
script relative to the project root, then its arguments; without it, `backend/<name>.py`. The
script must stay inside the project (no absolute path, no `..`), since the generated
supervisord.conf runs it relative to the checkout wherever that is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from recio_setup.errors import PROGRAM

GROUPS = ("core_services", "watchdog_services")
DEFAULT_RANGES: dict[str, tuple[int, int]] = {"core": (3000, 4000), "safe": (8000, 8100)}
DEFAULT_AVOID: tuple[int, ...] = (5000, 7000, 9000, 10000)
# The ranges a group's ports may sit in; the first is where a fix's free port is taken from.
GROUP_RANGES = {"core_services": ("core", "safe"), "watchdog_services": ("safe",)}
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RANGE_TEXT = re.compile(r"\s*(\d+)\s*-\s*(\d+)\s*")


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    fix: str
    # (group, name) of the service the problem is about, if one: `ports` shows it as its row.
    service: tuple[str, str] | None = None

    def text(self) -> str:
        return f"{self.path}: {self.message} (fix: {self.fix})"

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class Entry:
    name: str
    group: str
    port: int
    description: str
    status: str
    command: tuple[str, ...] = ()


def default_command(name: str) -> tuple[str, ...]:
    return (f"backend/{name}.py",)


@dataclass
class Checked:
    services: list[Entry] = field(default_factory=list)
    ranges: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_RANGES))
    avoid: tuple[int, ...] = DEFAULT_AVOID
    problems: list[Problem] = field(default_factory=list)

    def add(
        self, path: str, message: str, fix: str, service: tuple[str, str] | None = None
    ) -> None:
        self.problems.append(Problem(path, message, fix, service))


def json_type(value: Any) -> str:
    """A value's kind in JSON's words (null, array), not Python's (NoneType, list)."""
    if isinstance(value, bool):
        return "a boolean"
    names = {type(None): "null", list: "an array", dict: "an object", str: "a string"}
    return names.get(type(value), "a number" if isinstance(value, (int, float)) else "a value")


def json_path(*parts: str) -> str:
    """`core_services.main_app.port`; keys that are not identifiers go in ["..."]."""
    text = ""
    for part in parts:
        text += f".{part}" if IDENTIFIER.fullmatch(part) else f"[{part!r}]".replace("'", '"')
    return text.lstrip(".") or "(top level)"


def _is_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def _range_value(value: Any) -> tuple[int, int] | None:
    if isinstance(value, dict):
        bounds: Any = (value.get("start"), value.get("end"))
    elif isinstance(value, list) and len(value) == 2:
        bounds = tuple(value)
    elif isinstance(value, str) and (match := RANGE_TEXT.fullmatch(value)):
        bounds = (int(match[1]), int(match[2]))
    else:
        return None
    start, end = bounds
    return (start, end) if _is_port(start) and _is_port(end) and start <= end else None


def _read_policy(document: dict[str, Any], checked: Checked) -> None:
    ranges = document.get("port_ranges")
    if ranges is not None and not isinstance(ranges, dict):
        checked.add("port_ranges", "must be an object", 'write {"safe": {"start": 8000, ...}}')
    elif isinstance(ranges, dict):
        for name, default in DEFAULT_RANGES.items():
            key = name if name in ranges else f"{name}_range"
            if key not in ranges:
                continue
            parsed = _range_value(ranges[key])
            if parsed is None:
                checked.add(
                    json_path("port_ranges", key),
                    f"is not a port range: {ranges[key]!r}",
                    f'write {{"start": {default[0]}, "end": {default[1]}}}',
                )
            else:
                checked.ranges[name] = parsed
    notes = document.get("notes")
    avoid = notes.get("avoid_ports") if isinstance(notes, dict) else None
    if avoid is None:
        return
    if isinstance(avoid, list) and all(_is_port(port) for port in avoid):
        checked.avoid = tuple(avoid)
    else:
        checked.add(
            "notes.avoid_ports",
            f"must be a list of port numbers, not {avoid!r}",
            "write e.g. [5000, 7000, 9000, 10000]",
        )


def _bad_name(name: str) -> tuple[str, str]:
    if name.endswith(".py"):
        stem = name[:-3]
        return (
            "is a script name, not a service name",
            f"use the service name `{stem}` (without .py) as the key, or remove the entry",
        )
    cleaned = re.sub(r"\W", "_", name).strip("_") or "service_name"
    if cleaned[0].isdigit():
        cleaned = f"service_{cleaned}"
    return (
        "is not a service name (letters, digits and _, not starting with a digit)",
        f"rename it, e.g. to `{cleaned}`",
    )


def _port_problem(value: Any) -> tuple[str, str] | None:
    if isinstance(value, bool):
        return f"is a boolean ({str(value).lower()}), not a port number", ""
    if isinstance(value, str):
        if value.strip().isdigit():
            return f"is a string ({value!r}), not a number", f"write {value.strip()} without quotes"
        return f"is a string ({value!r}), not a port number", ""
    if isinstance(value, float):
        return f"is not a whole number ({value!r})", ""
    if isinstance(value, int):
        return None if _is_port(value) else (f"{value} is not from 1 to 65535", "")
    return f"must be a port number, not {json_type(value)}", ""


def _read_services(
    document: dict[str, Any], checked: Checked, bad_ports: list[tuple[str, str, str, str, str]]
) -> list[tuple[Entry, str]]:
    """Every well-formed entry with its path; malformed ones become problems.

    Port problems go to bad_ports (group, name, path, message, fix) because their fix, a free port,
    can only be chosen once every port is known.
    """
    entries: list[tuple[Entry, str]] = []
    seen: dict[str, str] = {}
    for group in GROUPS:
        services = document.get(group)
        if not isinstance(services, dict):
            what = "is missing" if services is None else "must be an object of services"
            checked.add(group, what, f'add "{group}": {{...}} as in the template')
            continue
        for name, spec in services.items():
            path = json_path(group, name)
            if not IDENTIFIER.fullmatch(name):
                checked.add(path, *_bad_name(name))
                continue
            if name in seen:
                checked.add(path, f"is also defined in {seen[name]}", "keep only one of them")
                continue
            seen[name] = group
            if not isinstance(spec, dict):
                fix = 'write {"port": ..., "description": ...}'
                checked.add(path, "must be an object", fix, (group, name))
                continue
            port_path = json_path(group, name, "port")
            wrong = ("is missing", "") if "port" not in spec else _port_problem(spec["port"])
            if wrong is not None:
                bad_ports.append((group, name, port_path, *wrong))
                continue
            description = spec.get("description")
            status = spec.get("status")
            entry = Entry(
                name,
                group,
                spec["port"],
                description if isinstance(description, str) else "",
                status if isinstance(status, str) else "",
                _read_command(name, group, spec, checked),
            )
            entries.append((entry, port_path))
    return entries


def _command_problem(value: Any) -> str | None:
    """What is wrong with a service's `command`, or None."""
    if not isinstance(value, list) or not value:
        return f"must be a non-empty list of strings (script, then arguments), not {value!r}"
    for index, word in enumerate(value):
        if not isinstance(word, str) or not word:
            return f"item {index} must be a non-empty string, not {word!r}"
        if any(char in word for char in "\n\r\0"):
            # One line of supervisord.conf per program: a line break would start a new setting.
            return f"item {index} holds a line break or NUL character"
        if re.search(r"\s[;#]", word):
            # supervisord reads ` ;` or ` #` as the start of a comment, even inside quotes.
            return f"item {index} ({word!r}) holds a space before ; or #, which starts a comment"
    script = value[0]
    if script.startswith(("/", "~")) or re.match(r"[A-Za-z]:", script):
        return f"the script {script!r} is an absolute path; it must be relative to the project root"
    if ".." in script.replace("\\", "/").split("/"):
        return f"the script {script!r} leads out of the project with `..`"
    if script.startswith("-") or not script.endswith(".py"):
        # python runs it: `-c ...` or `-m ...` would run code from outside the project.
        return f"the script {script!r} must be a .py file of the project, not an option"
    return None


def _read_command(name: str, group: str, spec: dict[str, Any], checked: Checked) -> tuple[str, ...]:
    if "command" not in spec:
        return default_command(name)
    wrong = _command_problem(spec["command"])
    if wrong is None:
        return tuple(spec["command"])
    fix = f'write e.g. ["backend/{name}.py"], the script relative to the project root'
    checked.add(json_path(group, name, "command"), wrong, fix)
    return default_command(name)


def free_port_fix(group: str, checked: Checked, used: set[int]) -> str:
    """A fix naming the first free port where the group belongs; it is then taken."""
    for range_name in GROUP_RANGES[group]:
        start, end = checked.ranges[range_name]
        for port in range(start, end + 1):
            if port not in used and port not in checked.avoid:
                used.add(port)  # two problems never get the same suggestion
                return f"use a free port such as {port} ({range_name} range {start}-{end})"
    return "no free port is left in its range; widen port_ranges"


def _judge_ports(entries: list[tuple[Entry, str]], checked: Checked, used: set[int]) -> None:
    owner: dict[int, str] = {}
    for entry, path in entries:
        allowed = [checked.ranges[name] for name in GROUP_RANGES[entry.group]]
        if entry.port in owner:
            message = f"port {entry.port} is also used by {owner[entry.port]}"
        elif entry.port in checked.avoid:
            listed = ", ".join(map(str, checked.avoid))
            message = f"port {entry.port} is on the avoided list (notes.avoid_ports: {listed})"
        elif not any(start <= entry.port <= end for start, end in allowed):
            spans = " or ".join(f"{start}-{end}" for start, end in allowed)
            message = f"port {entry.port} is outside the range for {entry.group} ({spans})"
        else:
            owner[entry.port] = json_path(entry.group, entry.name)
            continue
        fix = free_port_fix(entry.group, checked, used)
        checked.add(path, message, fix, (entry.group, entry.name))


def validate(document: Any) -> Checked:
    checked = Checked()
    if not isinstance(document, dict):
        checked.add(
            "(top level)",
            f"must be a JSON object with {' and '.join(GROUPS)}, not {json_type(document)}",
            f"run `{PROGRAM} reset` to reinstall the template",
        )
        return checked
    _read_policy(document, checked)
    bad_ports: list[tuple[str, str, str, str, str]] = []
    entries = _read_services(document, checked, bad_ports)
    used = {entry.port for entry, _ in entries}
    for group, name, path, message, fix in bad_ports:
        checked.add(path, message, fix or free_port_fix(group, checked, used), (group, name))
    _judge_ports(entries, checked, used)
    checked.services = [entry for entry, _ in entries]
    return checked
