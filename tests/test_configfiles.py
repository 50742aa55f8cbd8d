"""Planning the manifest and config.json in init, check and reset, applied to real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from recio_setup.errors import UsageError
from recio_setup.runtime.paths import Paths
from recio_setup.tree.archive import Archive
from recio_setup.tree.configfiles import plan_config_files, render_config
from recio_setup.tree.fsops import Tree
from recio_setup.tree.plan import ApplyContext, Plan, apply_plan
from tests.conftest import REPO, Cli

TEMPLATE = REPO / "templates/MASTER_PORT_MANIFEST.json"
MANIFEST = "backend/core/config/MASTER_PORT_MANIFEST.json"
CONFIG = "backend/core/config/config.json"


def plan(root: Path, mode: str, host: str = "192.168.1.20") -> Plan:
    with Tree(root) as tree:
        return plan_config_files(tree, Paths(root), host, mode)  # type: ignore[arg-type]


def apply(root: Path, planned: Plan, command: str) -> list[str]:
    with Tree(root) as tree:
        records = apply_plan(planned, ApplyContext(tree, Archive(tree, command)))
    assert all(r.state == "done" for r in records), records
    return [f"{r.kind} {r.path}" for r in records]


def kinds(planned: Plan) -> list[str]:
    return [f"{a.kind} {a.path}" for a in planned.actions]


def statuses(planned: Plan) -> dict[str, str]:
    return {check.name: check.status for check in planned.findings}


def put(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_init_installs_both_files_then_plans_nothing(project: Path) -> None:
    first = plan(project, "init")
    assert kinds(first) == [
        "create folder backend/core/config",
        f"create file {MANIFEST}",
        f"create file {CONFIG}",
    ]
    apply(project, first, "init")
    manifest, config = project / MANIFEST, project / CONFIG
    assert manifest.read_bytes() == TEMPLATE.read_bytes()
    assert manifest.stat().st_mode & 0o777 == 0o644
    assert config.stat().st_mode & 0o777 == 0o644
    agents = json.loads(config.read_text())["agents"]["main"]
    assert agents == {"enabled": True, "host": "192.168.1.20", "port": 3000}
    again = plan(project, "init")
    assert again.empty
    assert statuses(again) == {"port manifest": "ok", "config.json": "ok"}


def test_config_takes_main_app_port_from_the_manifest_in_place(project: Path) -> None:
    document = json.loads(TEMPLATE.read_text())
    document["core_services"]["main_app"]["port"] = 3100
    put(project, MANIFEST, json.dumps(document))
    planned = plan(project, "init", host="box.local")
    assert kinds(planned) == [f"create file {CONFIG}"]
    apply(project, planned, "init")
    agents = json.loads((project / CONFIG).read_text())["agents"]["main"]
    assert (agents["host"], agents["port"]) == ("box.local", 3100)


def test_init_never_overwrites_an_invalid_manifest(project: Path) -> None:
    path = put(project, MANIFEST, '{"core_services": {"main_app": {"port": "3000"}}}')
    planned = plan(project, "init")
    assert not any(MANIFEST in entry for entry in kinds(planned))
    finding = next(c for c in planned.findings if c.name == "port manifest")
    assert finding.status == "fail"
    assert "core_services.main_app.port" in finding.detail and "reset" in (finding.fix or "")
    apply(project, planned, "init")
    assert path.read_text() == '{"core_services": {"main_app": {"port": "3000"}}}'


def test_check_only_reports(project: Path) -> None:
    planned = plan(project, "check")
    assert planned.empty
    assert statuses(planned) == {"port manifest": "fail", "config.json": "fail"}
    assert all("init" in (c.fix or "") for c in planned.findings)
    apply(project, plan(project, "init"), "init")
    assert statuses(plan(project, "check")) == {"port manifest": "ok", "config.json": "ok"}


def test_check_warns_when_config_port_differs(project: Path) -> None:
    apply(project, plan(project, "init"), "init")
    config = project / CONFIG
    document = json.loads(config.read_text())
    document["agents"]["main"]["port"] = 3001
    config.write_text(json.dumps(document))
    warned = [c for c in plan(project, "check").findings if c.status == "warn"]
    assert [c.name for c in warned] == ["config.json"] and "agents.main.port" in warned[0].detail


def test_init_keeps_config_in_step_with_host_and_port_and_keeps_other_keys(project: Path) -> None:
    apply(project, plan(project, "init", host="10.0.0.5"), "init")
    config = project / CONFIG
    document = json.loads(config.read_text())
    document["agents"]["extra"] = {"mine": True}
    config.write_text(json.dumps(document))
    before = config.read_text()
    apply(project, plan(project, "init", host="10.0.0.9"), "init")
    after = json.loads(config.read_text())
    assert after["agents"]["main"]["host"] == "10.0.0.9"
    assert after["agents"]["extra"] == {"mine": True}
    kept = list((project / "backend/data/archives").glob(f"*-init/files/{CONFIG}"))
    assert [path.read_text() for path in kept] == [before]
    assert plan(project, "init", host="10.0.0.9").empty


def test_reset_replaces_a_corrupt_manifest_and_archives_it(project: Path) -> None:
    put(project, MANIFEST, "{ not json")
    put(project, CONFIG, "[]")
    planned = plan(project, "reset")
    assert kinds(planned) == [f"replace file {MANIFEST}", f"replace file {CONFIG}"]
    apply(project, planned, "reset")
    assert (project / MANIFEST).read_bytes() == TEMPLATE.read_bytes()
    assert json.loads((project / CONFIG).read_text())["agents"]["main"]["port"] == 3000
    archived = list((project / "backend/data/archives").glob(f"*-reset/files/{MANIFEST}"))
    assert len(archived) == 1 and archived[0].read_text() == "{ not json"
    assert plan(project, "reset").empty


def test_symlink_is_reported_not_followed_then_archived_by_reset(
    project: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text("precious")
    (project / "backend/core/config").mkdir(parents=True)
    os.symlink(outside, project / MANIFEST)
    for mode in ("init", "check"):
        planned = plan(project, mode)
        finding = next(c for c in planned.findings if c.name == "port manifest")
        assert finding.status == "fail" and "symlink" in finding.detail
        assert not any(MANIFEST in entry for entry in kinds(planned))
    planned = plan(project, "reset")
    assert kinds(planned)[:2] == [f"archive {MANIFEST}", f"create file {MANIFEST}"]
    apply(project, planned, "reset")
    assert not (project / MANIFEST).is_symlink()
    assert (project / MANIFEST).read_bytes() == TEMPLATE.read_bytes()
    assert outside.read_text() == "precious"
    moved = list((project / "backend/data/archives").glob(f"*-reset/files/{MANIFEST}"))
    assert len(moved) == 1 and moved[0].is_symlink()


def test_symlinked_config_folder_is_not_written_through(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / "backend/core").mkdir(parents=True)
    os.symlink(elsewhere, project / "backend/core/config")
    planned = plan(project, "init")
    assert planned.empty
    assert statuses(planned)["port manifest"] == "fail"
    apply(project, planned, "init")
    assert list(elsewhere.iterdir()) == []


def test_config_host_is_validated() -> None:
    with pytest.raises(UsageError):
        render_config("not a host", 3000)


def test_reset_moves_a_symlinked_config_folder_aside_once(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / "backend/core").mkdir(parents=True)
    os.symlink(elsewhere, project / "backend/core/config")
    planned = plan(project, "reset")
    assert kinds(planned) == [
        "archive backend/core/config",
        "create folder backend/core/config",
        f"create file {MANIFEST}",
        f"create file {CONFIG}",
    ]
    apply(project, planned, "reset")
    assert (project / "backend/core/config").is_dir()
    assert not (project / "backend/core/config").is_symlink()
    assert (project / MANIFEST).read_bytes() == TEMPLATE.read_bytes()
    assert list(elsewhere.iterdir()) == []


def test_a_fifo_where_config_json_belongs_is_named_as_such(cli: Cli, project: Path) -> None:
    assert (
        cli(
            "--non-interactive",
            "--skip-db-check",
            "--host",
            "127.0.0.1",
            env={"POSTGRES_PASSWORD": "pw-fifo"},
        ).code
        == 0
    )
    config = project / "backend/core/config/config.json"
    config.unlink()
    os.mkfifo(config)
    run = cli("check", "--skip-db-check", timeout=20)
    assert run.code == 1, run.all
    assert "is a special file (a FIFO, device or socket), not a regular file" in run.out
