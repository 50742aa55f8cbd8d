"""Repairing a corrupt .env for reset: keep every line that can still be read, archive the rest."""

from __future__ import annotations

from recio_setup.env.document import EnvDocument
from recio_setup.env.plan import ENV_MODE, env_mode_plan
from recio_setup.env.settings import FIELD_BY_KEY
from recio_setup.errors import PROGRAM, RecioError
from recio_setup.result import Check
from recio_setup.runtime.paths import Paths
from recio_setup.runtime.readfile import TEXT_LIMIT, FileRefused
from recio_setup.tree.fsentry import env_link_target
from recio_setup.tree.fsops import Tree
from recio_setup.tree.plan import Plan, ReplaceFile


def readable_lines(data: bytes) -> tuple[str, list[int]]:
    """The text of every line python-dotenv can read, and the numbers of the lines it cannot."""
    kept: list[str] = []
    lost: list[int] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            lost.append(number)
            continue
        if "\x00" in line or EnvDocument.parse(line + "\n").bad_lines():
            lost.append(number)
            continue
        kept.append(line)
    # The empty string after a final newline is kept as a line, so the ending survives the join.
    return "\n".join(kept), lost


def _host_from(document: EnvDocument) -> str:
    raw = document.values().get("TRADING_SYSTEM_HOST") or ""
    try:
        return FIELD_BY_KEY["TRADING_SYSTEM_HOST"].normalise(raw)
    except ValueError:
        from recio_setup.runtime.host import detect_host

        return detect_host({})[0]


def plan_env_repair(tree: Tree, paths: Paths) -> tuple[Plan, str]:
    """The repair of .env (if any), and the host config.json should be generated with."""
    plan = Plan()
    rel = paths.env_rel
    found = tree.inspect(rel)
    if found.kind == "symlink":
        try:
            rel = env_link_target(paths.root, rel)
        except RecioError as error:
            plan.note(Check("env.file", ".env", "fail", error.message, error.hint))
            return plan, "localhost"
        found = tree.inspect(rel)
    if found.kind == "missing":
        plan.note(
            Check(
                "env.file",
                ".env",
                "fail",
                ".env is missing; reset does not invent values",
                f"run `{PROGRAM} init`",
            )
        )
        from recio_setup.runtime.host import detect_host

        return plan, detect_host({})[0]
    if found.kind != "file":
        plan.note(
            Check(
                "env.file",
                ".env",
                "fail",
                f"{rel} is {found.describe()}, not a file",
                f"move {rel} away, then run `{PROGRAM} init`",
            )
        )
        return plan, "localhost"
    try:
        data = tree.read_file(rel, TEXT_LIMIT)
    except FileRefused as refused:
        # Nothing may cut it; the rest of the tree is still repaired.
        plan.note(Check("env.file", ".env", "fail", refused.message, refused.hint))
        return plan, "localhost"
    text, lost = readable_lines(data)
    if lost:
        numbers = ", ".join(map(str, lost))
        plan.add(
            ReplaceFile(
                rel,
                f"rewrite .env without unreadable line(s) {numbers}; the archived copy keeps them",
                text.encode(),
                ENV_MODE,
            )
        )
    else:
        plan.extend(env_mode_plan(rel, found))
    return plan, _host_from(EnvDocument.parse(text))
