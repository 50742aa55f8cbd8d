"""The layout's import rule (docs/architecture.md), read from the source with ast.

Every import counts, including the ones inside functions and under TYPE_CHECKING: a cycle
hidden in a function is still a cycle a reader has to untangle.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import recio_setup
from tests.conftest import Cli

PACKAGE = Path(recio_setup.__file__).parent
CORE = {"recio_setup", "recio_setup.errors", "recio_setup.result", "recio_setup.masking"}
# Which layer may import which; a layer may always import itself and the core.
ALLOWED = {
    "core": set(),
    "runtime": set(),
    "tree": {"runtime"},
    "db": {"runtime"},
    "env": {"runtime", "tree", "db"},
    "cli": {"runtime", "tree", "db", "env"},
}
# url.py is what env/settings needs of db: it must not drag the rest of db (and psycopg) along.
LEAF_MODULES = {"recio_setup.db.url"}


def module_name(path: Path, package_dir: Path) -> str:
    parts = path.relative_to(package_dir.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    if module in CORE or module == "recio_setup.__main__":
        return "cli" if module.endswith("__main__") else "core"
    return module.split(".")[1]


def imports_of(path: Path, module: str, known: set[str]) -> Iterator[str]:
    """The package modules `path` imports, anywhere in it."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join([*parent, base] if base else parent)
            if base not in known:
                continue
            # `from recio_setup.tree import fsops` imports the module fsops, not the package.
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            found = [name for name in submodules if name in known]
            yield from found or [base]


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    files = {module_name(p, package_dir): p for p in package_dir.rglob("*.py")}
    known = set(files)
    return {name: set(imports_of(path, name, known)) - {name} for name, path in files.items()}


def rule_breaks(graph: dict[str, set[str]]) -> list[str]:
    breaks = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            mine, theirs = layer(module), layer(target)
            if theirs not in {"core", mine} | ALLOWED[mine]:
                breaks.append(f"{module} ({mine}) imports {target} ({theirs})")
            elif mine == "core" and theirs != "core":
                breaks.append(f"{module} (core) imports {target}")
            if module in LEAF_MODULES and target.rsplit(".", 1)[0] == module.rsplit(".", 1)[0]:
                breaks.append(f"{module} must import nothing else of its package, imports {target}")
    return breaks


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_import_follows_the_layer_rule() -> None:
    graph = import_graph(PACKAGE)
    assert len(graph) > 40 and {layer(m) for m in graph} == set(ALLOWED)
    assert rule_breaks(graph) == []


def test_no_module_import_cycle() -> None:
    assert cycles(import_graph(PACKAGE)) == []


def copy_with(tmp_path: Path, rel: str, added: str) -> Path:
    copy = tmp_path / "recio_setup"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "templates"))
    with (copy / rel).open("a") as file:
        file.write(added)
    return copy


def test_a_forbidden_import_inside_a_function_is_caught(tmp_path: Path) -> None:
    added = "\n\ndef _late() -> None:\n    from recio_setup.cli.output import Output  # noqa\n"
    graph = import_graph(copy_with(tmp_path, "runtime/paths.py", added))
    assert rule_breaks(graph) == [
        "recio_setup.runtime.paths (runtime) imports recio_setup.cli.output (cli)"
    ]


def test_a_cycle_under_type_checking_is_caught(tmp_path: Path) -> None:
    added = "\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import probe\n"
    graph = import_graph(copy_with(tmp_path, "db/connect.py", added))
    assert ["recio_setup.db.connect", "recio_setup.db.probe"] in cycles(graph)


def test_url_parsing_imports_nothing_else_of_db(tmp_path: Path) -> None:
    added = "\nfrom recio_setup.db import connect\n"
    graph = import_graph(copy_with(tmp_path, "db/url.py", added))
    assert rule_breaks(graph) == [
        "recio_setup.db.url must import nothing else of its package, imports recio_setup.db.connect"
    ]


def test_the_launcher_sets_the_variable_the_package_reads() -> None:
    from recio_setup.runtime.paths import LAUNCHER_ROOT_ENV

    source = (PACKAGE.parent / "bootstrap.py").read_text()
    assert f'\nLAUNCHER_ROOT_ENV = "{LAUNCHER_ROOT_ENV}"\n' in source


SERVICE = """
import json, sys
import recio_setup
from recio_setup import get_port, get_service_url, get_host, get_data_dir, get_logs_dir
from recio_setup import ensure_data_dirs, list_all_ports
looked_up = [get_port("main_app"), get_service_url("main_app", "/health"), get_host(),
             str(get_data_dir()), str(get_logs_dir()), len(list_all_ports())]
ensure_data_dirs()
print(json.dumps({"looked_up": looked_up, "modules": sorted(sys.modules)}))
"""


def test_a_service_loads_no_cli_library(cli: Cli, project: Path) -> None:
    """What a service imports to find its port loads nothing the CLI needs."""
    setup = cli("--non-interactive", "--skip-db-check", "--host", "127.0.0.1")
    assert setup.code == 0, setup.all
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["REC_PROJECT_ROOT"] = str(project)
    done = subprocess.run(
        [sys.executable, "-c", SERVICE], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["looked_up"][:3] == [3000, "http://127.0.0.1:3000/health", "127.0.0.1"]
    heavy = ("rich", "questionary", "prompt_toolkit", "psycopg", "argparse", "cryptography")
    loaded = [m for m in report["modules"] if m.split(".")[0] in heavy]
    ours = [m for m in report["modules"] if m.startswith(("recio_setup.cli", "recio_setup.env"))]
    ours += [m for m in report["modules"] if m.startswith("recio_setup.db")]
    assert (loaded, ours) == ([], [])
