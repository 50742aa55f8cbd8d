"""Plan the two configuration files: the port manifest and config.json.

init installs each from the package's template when it is missing and never overwrites one that
exists; check only reports; reset replaces a corrupt or invalid one (the old one is archived). A
symlink standing where a file belongs is never followed: init and check report it, reset moves
the symlink itself into the archive and writes a real file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from recio_setup.errors import PROGRAM
from recio_setup.result import Check
from recio_setup.runtime.host import validate_host
from recio_setup.runtime.jsondoc import NotJson, load_json
from recio_setup.runtime.paths import Paths, source_folder
from recio_setup.runtime.ports import ManifestError, parse_manifest
from recio_setup.runtime.readfile import TEXT_LIMIT
from recio_setup.tree.fsentry import Found, permission_hint
from recio_setup.tree.fsops import Tree
from recio_setup.tree.modes import mode_to_set, what_is_wrong
from recio_setup.tree.plan import (
    Action,
    ApplyContext,
    ArchiveEntry,
    Plan,
    ReplaceFile,
    SetMode,
    WriteFile,
    separate_link,
)

Mode = Literal["init", "check", "reset"]
FILE_MODE = 0o644
DIR_MODE = 0o755
MANIFEST_CHECK = "port manifest"
CONFIG_CHECK = "config.json"
# The stable ids (for --json) of the two files' checks, by their names above.
CHECK_IDS = {MANIFEST_CHECK: "manifest.file", CONFIG_CHECK: "config.file"}
RESET_FIX = f"run `{PROGRAM} reset` (the current file is archived, a fresh one written)"


def template_bytes(name: str) -> bytes:
    """A template: from the installed wheel, else from templates/ of the checkout (editable).

    A plain path, not importlib.resources: the package is never imported from a zip, and
    resources would cost every start zipfile's import."""
    folder = source_folder()
    installed = folder / "recio_setup" / "templates" / name
    if installed.is_file():
        return installed.read_bytes()
    return (folder / "templates" / name).read_bytes()


def manifest_template() -> bytes:
    return template_bytes("MASTER_PORT_MANIFEST.json")


def render_config(host: str, port: int) -> bytes:
    """config.json from its template, with this machine's host and main_app's port."""
    document = json.loads(template_bytes("config.json"))
    document["agents"]["main"]["host"] = validate_host(host)
    document["agents"]["main"]["port"] = port
    return (json.dumps(document, indent=2) + "\n").encode()


@dataclass
class EnsureFolder(Action):
    """Create a folder and its missing parents (0755); existing folders are left as they are.

    Idempotent on purpose: the data-tree plan may create the same parents (backend/) in the
    same run, and a second MakeDir of one folder would fail as a conflict.
    """

    mode: int = DIR_MODE
    kind: ClassVar[str] = "create folder"

    def outcome(self, done: bool) -> str:
        created = "created" if done else "will be created"
        return f"{created} with its missing parents, mode {self.mode:04o}"

    def apply(self, ctx: ApplyContext) -> str | None:
        ctx.tree.ensure_dirs(self.path, self.mode)
        return None


@dataclass
class Judged:
    """What stands at a config path and what is wrong with it (None: it is fine)."""

    found: Found
    problem: str | None
    document: Any = None


def _judge(tree: Tree, rel: str, validate: Any) -> Judged:
    found = tree.inspect(rel)
    if found.kind == "missing":
        return Judged(found, None)
    if found.kind == "symlink":
        return Judged(found, f"is a symlink to {found.link_target}; it was not followed")
    if found.kind == "blocked":
        return Judged(found, f"cannot be reached: {found.blocked_by} is not a real folder")
    if found.kind == "denied":
        return Judged(found, f"cannot be reached: permission denied on {found.blocked_by}")
    if found.kind != "file":
        return Judged(found, f"is a {found.describe()}, not a regular file")
    try:
        data = tree.read_file(rel, TEXT_LIMIT)
    except OSError as exc:
        return Judged(found, f"cannot be read: {exc.strerror}")
    problem, document = validate(data, rel)
    return Judged(found, problem, document)


def _validate_manifest(data: bytes, rel: str) -> tuple[str | None, Any]:
    try:
        manifest = parse_manifest(data, rel)
    except ManifestError as exc:
        return exc.message.removeprefix(f"port manifest {rel}: "), None
    if manifest.problems:
        return "; ".join(problem.text() for problem in manifest.problems), manifest
    return None, manifest


def _validate_config(data: bytes, rel: str) -> tuple[str | None, Any]:
    del rel
    try:
        document = load_json(data)
    except NotJson as exc:
        return exc.problem, None
    if not isinstance(document, dict):
        return f"must be a JSON object, not {type(document).__name__}", None
    agents = document.get("agents")
    if not isinstance(agents, dict):
        return f"agents must be an object, not {type(agents).__name__}", None
    main = agents.get("main")
    if not isinstance(main, dict):
        return "agents.main is missing or not an object", None
    port = main.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        return f"agents.main.port must be a port number, not {port!r}", None
    if not isinstance(main.get("host"), str) or not main["host"].strip():
        return "agents.main.host must be a host name or address", None
    return None, document


def _main_app_port(judged: Judged) -> int:
    """main_app's port from the manifest in place if usable, else from the template."""
    manifest = judged.document if judged.problem is None else None
    if manifest is not None and "main_app" in manifest.services:
        return int(manifest.services["main_app"].port)
    return int(parse_manifest(manifest_template(), "template").port("main_app"))


def _add_once(plan: Plan, action: Action) -> None:
    """The manifest and config.json share a folder; its repair is planned once."""
    if not any(type(a) is type(action) and a.path == action.path for a in plan.actions):
        plan.add(action)


def _parents(tree: Tree, rel: str, plan: Plan, mode: Mode, name: str) -> bool:
    """Plan the folder holding rel; False when it cannot be used in this mode."""
    folder = rel.rsplit("/", 1)[0]
    found = tree.inspect(folder)
    if found.kind == "dir":
        return True
    if found.kind == "missing":
        if mode != "check":
            _add_once(plan, EnsureFolder(folder, f"holds the {name}"))
        return mode != "check"
    blocker = found.blocked_by if found.kind == "blocked" else folder
    if mode == "reset" and blocker is not None:
        _add_once(plan, ArchiveEntry(blocker, f"{blocker} is not a real folder"))
        _add_once(plan, EnsureFolder(folder, f"holds the {name}"))
        return True
    plan.note(
        Check(
            CHECK_IDS[name],
            name,
            "fail",
            f"{blocker} is not a real folder",
            RESET_FIX,
            repair="reset",
        )
    )
    return False


def _plan_one(
    tree: Tree, rel: str, judged: Judged, plan: Plan, mode: Mode, name: str, content: bytes
) -> None:
    found = judged.found
    if found.kind == "denied":
        detail = f"{rel} {judged.problem}"
        fix = permission_hint(tree.root)
        plan.note(Check(CHECK_IDS[name], name, "fail", detail, fix, {"cause": "permission"}))
        return
    if found.kind == "missing" or found.kind == "blocked":
        if mode == "check":
            what = judged.problem or "is missing"
            plan.note(
                Check(
                    CHECK_IDS[name],
                    name,
                    "fail",
                    f"{rel} {what}",
                    f"run `{PROGRAM} init`",
                    repair="init",
                )
            )
        elif _parents(tree, rel, plan, mode, name):
            plan.add(WriteFile(rel, f"the {name} is missing", content, FILE_MODE))
        return
    if judged.problem is None:
        plan.note(Check(CHECK_IDS[name], name, "ok", f"{rel} is valid"))
        return
    if mode != "reset":
        plan.note(
            Check(
                CHECK_IDS[name], name, "fail", f"{rel}: {judged.problem}", RESET_FIX, repair="reset"
            )
        )
        return
    reason = f"the {name} is unusable: {judged.problem}"
    if found.kind == "file":
        plan.add(ReplaceFile(rel, reason, content, FILE_MODE))
    else:
        plan.add(ArchiveEntry(rel, reason))
        plan.add(WriteFile(rel, f"the {name} was not a regular file", content, FILE_MODE))


def plan_config_files(tree: Tree, paths: Paths, host: str, mode: Mode) -> Plan:
    """The actions and findings for the manifest and config.json in this mode."""
    plan = Plan()
    manifest = _judge(tree, paths.manifest_rel, _validate_manifest)
    _plan_one(tree, paths.manifest_rel, manifest, plan, mode, MANIFEST_CHECK, manifest_template())
    config = _judge(tree, paths.config_json_rel, _validate_config)
    content = render_config(host, _main_app_port(manifest))
    _plan_one(tree, paths.config_json_rel, config, plan, mode, CONFIG_CHECK, content)
    _sync_config(manifest, config, plan, mode, paths.config_json_rel, host)
    plan_mode(plan, paths.manifest_rel, manifest, MANIFEST_CHECK)
    plan_mode(plan, paths.config_json_rel, config, CONFIG_CHECK)
    return plan


def plan_mode(plan: Plan, rel: str, judged: Judged, name: str) -> None:
    """A file left in place must have the mode the tool writes it with (check reports it)."""
    found = judged.found
    if found.kind != "file" or any(action.path == rel for action in plan.actions):
        return
    new = mode_to_set(found.mode or 0, FILE_MODE, "file")
    if found.shares_its_inode:
        plan.add(separate_link(rel, found, FILE_MODE if new is None else new, name))
    elif new is not None:
        why = what_is_wrong(found.mode or 0, new)
        reason = f"the {name}'s mode {found.mode_text} is {why}"
        plan.add(SetMode(rel, reason, mode=new, expect=found))


def _sync_config(
    manifest: Judged, config: Judged, plan: Plan, mode: Mode, rel: str, host: str
) -> None:
    """Keep agents.main in step with TRADING_SYSTEM_HOST and main_app's port.

    Only those two fields change (every other key stays); the old file goes to the archive.
    """
    if manifest.problem or config.problem or manifest.document is None or config.document is None:
        return
    main = config.document["agents"]["main"]
    main_app = manifest.document.services.get("main_app")
    wanted = {"host": host, "port": main_app.port if main_app else main.get("port")}
    stale = [
        f"agents.main.{key} is {main.get(key)!r}, not {value!r}"
        for key, value in wanted.items()
        if main.get(key) != value
    ]
    if not stale:
        return
    reason = "; ".join(stale) + " (TRADING_SYSTEM_HOST and main_app's port)"
    # Valid but out of step: that is the one thing to say about the file, not "is valid" beside
    # a warning (check) or beside its own replacement (init).
    plan.findings = [
        f for f in plan.findings if not (f.id == CHECK_IDS[CONFIG_CHECK] and f.status == "ok")
    ]
    if mode == "check":
        fix = f"run `{PROGRAM} init` to update it"
        plan.note(Check("config.host", "config.json", "warn", reason, fix, repair="init"))
        return
    main.update(wanted)
    content = (json.dumps(config.document, indent=2) + "\n").encode()
    plan.add(ReplaceFile(rel, reason, content, FILE_MODE))
