"""`recio-setup ports`: every service of the manifest, its port and URL, and whether it listens."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from recio_setup.result import Check, Result, Table, Value

if TYPE_CHECKING:
    from recio_setup.cli.commands import Context
    from recio_setup.runtime.ports import Manifest

# A command that never writes into the project: even its crash log goes to the temp folder.
READ_ONLY = True
HELP = "show the port of every service, its URL, and whether something listens on it"
DESCRIPTION = """\
Read backend/core/config/MASTER_PORT_MANIFEST.json, validate it, and print one row per service:
group, port, URL (on the host from TRADING_SYSTEM_HOST or detected), whether something listens
on that port on 127.0.0.1 now, and its problems. Nothing is written.

Exit 1 when the manifest is missing, is not valid JSON, or breaks a rule (each problem is listed
with its JSON path and a fix).
"""
COLUMNS = ["service", "group", "port", "URL", "listening", "problems"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # only the common options (--root, --user, --json, ...)


def _listening_text(state: bool | None, owner: dict[str, Any] | None) -> str:
    if state and owner is not None:
        from recio_setup.cli.listening import Owner

        return f"yes ({Owner(owner['pid'], owner['command']).text()})"
    return {True: "yes", False: "no", None: "no answer"}[state]


def _rows(manifest: Manifest, host: str) -> list[dict[str, Any]]:
    """One row per service, in file order, a service whose entry is broken (a port that is a
    string, a bool, missing) included: its row shows the problem instead of a port."""
    from recio_setup.cli.listening import port_owners, probe_listening

    url_host = f"[{host}]" if ":" in host else host
    listening = probe_listening([s.port for s in manifest.services.values() if s.port])
    owners = port_owners(port for port, busy in listening.items() if busy)
    problems: dict[tuple[str, str], list[str]] = {}
    for problem in manifest.problems:
        if problem.service is not None:
            problems.setdefault(problem.service, []).append(problem.message)
    services = {(s.group, s.name): s for s in manifest.services.values()}
    rows = []
    for key in dict.fromkeys([*services, *problems]):
        service = services.get(key)
        port = service.port if service else None
        rows.append(
            {
                "service": key[1],
                "group": key[0],
                "port": port,
                "url": f"http://{url_host}:{port}" if port else None,
                "listening": listening.get(port) if port else None,
                "owner": owners[port].to_json() if port in owners else None,
                "description": service.description if service else "",
                "problems": problems.get(key, []),
            }
        )
    return rows


def _table(rows: list[dict[str, Any]]) -> Table:
    return Table(
        "Services",
        COLUMNS,
        [
            [
                row["service"],
                row["group"],  # as the JSON and the manifest name it
                str(row["port"] or "-"),
                row["url"] or "-",
                _listening_text(row["listening"], row["owner"]) if row["port"] else "-",
                "; ".join(row["problems"]) or "-",
            ]
            for row in rows
        ],
    )


def run(ctx: Context) -> Result:
    from recio_setup.runtime.api import env_file_host
    from recio_setup.runtime.host import detect_host, validate_host
    from recio_setup.runtime.paths import HOST_ENV
    from recio_setup.runtime.ports import load_manifest

    manifest = load_manifest(ctx.paths.manifest)  # ManifestMissing / bad JSON: exit 1, hint
    written = None if ctx.environ.get(HOST_ENV) else env_file_host(ctx.paths.root)
    if written:
        host, source = validate_host(written, origin=f"{HOST_ENV} in .env"), ".env"
    else:
        host, source = detect_host(ctx.environ)
    rows = _rows(manifest, host)
    checks = [
        Check(
            "manifest.entry",
            f"manifest {problem.path}",
            "fail",
            problem.message,
            problem.fix or None,
        )
        for problem in manifest.problems
    ]
    count = len(manifest.problems)
    summary = (
        f"{len(rows)} services in {ctx.paths.manifest}; the manifest is valid"
        if not count
        else f"the manifest {ctx.paths.manifest} has {count} problem{'s' * (count != 1)}"
    )
    return Result(
        command=ctx.command,
        exit_code=1 if count else 0,
        summary=summary,
        values=[Value("host", host, source)],
        checks=checks,
        data={
            "manifest": str(ctx.paths.manifest),
            "host": host,
            "services": rows,
            "problems": [problem.to_json() for problem in manifest.problems],
        },
        tables=[_table(rows)],
    )
