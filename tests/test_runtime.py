"""The runtime API services import: root resolution order, ports, URLs, paths, cheap import."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import recio_setup
from recio_setup import runtime
from recio_setup.errors import UsageError
from recio_setup.manifest_cache import clear_cache
from recio_setup.ports import ManifestError, ManifestMissing, UnknownServiceError
from tests.conftest import REPO

TEMPLATE = REPO / "templates/MASTER_PORT_MANIFEST.json"
MANIFEST_REL = "backend/core/config/MASTER_PORT_MANIFEST.json"


def install_manifest(root: Path, main_app: int = 3000) -> Path:
    path = root / MANIFEST_REL
    path.parent.mkdir(parents=True, exist_ok=True)
    document = json.loads(TEMPLATE.read_text())
    document["core_services"]["main_app"]["port"] = main_app
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    clear_cache()
    runtime.clear_caches()


def test_root_order_explicit_then_env_then_cwd_ancestor_then_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    explicit, from_env, ancestor = (tmp_path / name for name in ("explicit", "env", "anc"))
    install_manifest(ancestor)
    nested = ancestor / "backend" / "somewhere"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    monkeypatch.setenv("REC_PROJECT_ROOT", str(from_env))
    assert runtime.get_project_root(root=explicit) == str(explicit)
    assert runtime.get_project_root() == str(from_env)
    monkeypatch.delenv("REC_PROJECT_ROOT")
    assert runtime.get_project_root() == str(ancestor)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert runtime.get_project_root() == str(REPO)  # the checkout holding the package


def test_ports_urls_and_info_from_the_resolved_root(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_manifest(project, main_app=3100)
    monkeypatch.setenv("REC_PROJECT_ROOT", str(project))
    monkeypatch.setenv("TRADING_SYSTEM_HOST", "10.1.2.3")
    assert recio_setup.get_port("main_app") == 3100
    assert recio_setup.get_port("db_poller") == 8003
    assert recio_setup.list_all_ports()["kalshi_api_watchdog"] == 8005
    assert recio_setup.get_host() == "10.1.2.3"
    assert recio_setup.get_service_url("trade_manager", "/api/x") == "http://10.1.2.3:4000/api/x"
    info = recio_setup.get_port_info()
    assert info["host"] == "10.1.2.3"
    assert info["service_urls"]["main_app"] == "http://10.1.2.3:3100"
    assert info["config_file"] == str(project / MANIFEST_REL)
    monkeypatch.setenv("TRADING_SYSTEM_HOST", "::1")
    assert recio_setup.get_service_url("main_app") == "http://[::1]:3100"


def test_unknown_service_and_missing_manifest_never_give_a_default(
    project: Path, tmp_path: Path
) -> None:
    install_manifest(project)
    with pytest.raises(KeyError) as info:
        recio_setup.get_port("main_ap", root=project)
    assert isinstance(info.value, UnknownServiceError) and "main_app" in str(info.value)
    with pytest.raises(ManifestMissing, match="does not exist"):
        recio_setup.get_port("main_app", root=tmp_path)


def test_an_edit_is_seen_by_the_very_next_call(project: Path) -> None:
    path = install_manifest(project, main_app=3000)
    assert runtime.get_port("main_app", root=project) == 3000
    document = json.loads(path.read_text())
    document["core_services"]["main_app"]["port"] = 3001
    path.write_text(json.dumps(document, indent=4))
    assert runtime.get_port("main_app", root=project) == 3001


def test_path_functions_follow_the_reference_layout(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REC_PROJECT_ROOT", str(project))
    data = project / "backend" / "data"
    user = data / "users" / "user_0001"
    assert runtime.get_data_dir() == str(data)
    assert runtime.get_accounts_data_dir() == str(user / "accounts")
    assert runtime.get_trade_history_dir() == str(user / "trade_history")
    assert runtime.get_active_trades_dir() == str(user / "active_trades")
    assert runtime.get_kalshi_credentials_dir() == str(user / "credentials" / "kalshi-credentials")
    assert runtime.get_kalshi_data_dir() == str(data / "live_data" / "markets" / "kalshi")
    assert runtime.get_coinbase_data_dir() == str(data / "coinbase")
    assert runtime.get_price_history_dir() == str(data / "live_data" / "price_history")
    assert runtime.get_btc_price_history_dir() == str(data / "live_data" / "price_history" / "btc")
    assert runtime.get_logs_dir() == str(project / "logs")
    assert runtime.get_frontend_dir() == str(project / "frontend")
    assert runtime.get_venv_python_path() == str(project / "venv" / "bin" / "python")
    assert runtime.get_supervisor_config_path() == str(project / "backend" / "supervisord.conf")


def test_user_comes_from_argument_then_env(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    users = project / "backend" / "data" / "users"
    monkeypatch.setenv("REC_USER_ID", "user_0042")
    assert runtime.get_accounts_data_dir(root=project) == str(users / "user_0042" / "accounts")
    assert runtime.get_trade_history_dir(root=project, user="user_0007") == str(
        users / "user_0007" / "trade_history"
    )
    monkeypatch.setenv("REC_USER_ID", "../../etc")
    with pytest.raises(UsageError):
        runtime.get_accounts_data_dir(root=project)


def test_import_is_cheap_and_exports_are_lazy() -> None:
    code = (
        "import sys, recio_setup\n"
        "heavy = [m for m in ('rich', 'psycopg', 'questionary', 'recio_setup.runtime') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert callable(recio_setup.get_port) and 'recio_setup.runtime' in sys.modules\n"
        "assert 'rich' not in sys.modules\n"
        "assert set(recio_setup.__all__) >= {'get_port', 'ensure_data_dirs', 'get_host'}\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    with pytest.raises(AttributeError):
        _ = recio_setup.no_such_thing  # type: ignore[attr-defined]


def test_services_can_use_it_without_the_cli(project: Path) -> None:
    # A service process: cwd inside the project, nothing else configured.
    service_dir = project / "backend" / "api"
    service_dir.mkdir(parents=True)
    (project / MANIFEST_REL).parent.mkdir(parents=True)
    shutil.copy(TEMPLATE, project / MANIFEST_REL)
    code = (
        "from recio_setup import get_port, get_data_dir\n"
        "print(get_port('db_poller'), get_data_dir())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=service_dir
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["8003", str(project / "backend" / "data")]


def test_get_port_on_a_manifest_that_goes_bad_names_file_and_problem(project: Path) -> None:
    path = install_manifest(project)
    assert runtime.get_port("db_poller", root=project) == 8003
    document = json.loads(path.read_text())
    document["watchdog_services"]["db_poller"]["port"] = 8002
    path.write_text(json.dumps(document))
    with pytest.raises(ManifestError) as info:
        runtime.get_port("main_app", root=project)  # no default, even for an untouched service
    assert str(path) in info.value.message
    assert "watchdog_services.db_poller.port: port 8002 is also used" in info.value.message


def test_a_relative_root_follows_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    install_manifest(first, main_app=3001)
    install_manifest(second, main_app=3002)
    monkeypatch.chdir(first)
    assert runtime.get_port("main_app", root=".") == 3001
    monkeypatch.chdir(second)
    assert runtime.get_port("main_app", root=".") == 3002


def test_get_host_reads_env_file_between_environment_and_detection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recio_setup import get_host, get_service_url

    root = tmp_path / "hostproj"
    (root / "backend/core/config").mkdir(parents=True)
    shutil.copy(TEMPLATE, root / "backend/core/config/MASTER_PORT_MANIFEST.json")
    (root / ".env").write_text("TRADING_SYSTEM_HOST=10.9.8.7\n")
    monkeypatch.delenv("TRADING_SYSTEM_HOST", raising=False)
    assert get_host(root=root) == "10.9.8.7"
    assert get_service_url("main_app", "/x", root=root) == "http://10.9.8.7:3000/x"
    (root / ".env").write_text("TRADING_SYSTEM_HOST=10.9.8.66\n")
    assert get_host(root=root) == "10.9.8.66"  # an edit is seen
    monkeypatch.setenv("TRADING_SYSTEM_HOST", "192.168.5.5")
    assert get_host(root=root) == "192.168.5.5"


def test_get_port_follows_each_way_of_naming_the_root_between_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # get_port keeps resolved roots, keyed by how the root was named: none may go stale.
    roots = {port: tmp_path / f"p{port}" for port in (3001, 3002, 3003, 3004, 3005)}
    for port, root in roots.items():
        install_manifest(root, main_app=port)
    monkeypatch.chdir(roots[3004])
    monkeypatch.setenv("REC_PROJECT_ROOT", str(roots[3001]))
    assert runtime.get_port("main_app") == 3001
    monkeypatch.setenv("REC_PROJECT_ROOT", str(roots[3002]))
    assert runtime.get_port("main_app") == 3002
    monkeypatch.setenv("REC_PROJECT_ROOT", ".")  # relative: the working folder's meaning
    assert runtime.get_port("main_app") == 3004
    monkeypatch.chdir(roots[3005])
    assert runtime.get_port("main_app") == 3005
    monkeypatch.delenv("REC_PROJECT_ROOT")
    assert runtime.get_port("main_app") == 3005
    monkeypatch.chdir(roots[3004] / "backend" / "core")  # below the root: the walk finds it
    assert runtime.get_port("main_app") == 3004
    assert runtime.get_port("main_app", root=roots[3003]) == 3003
    assert runtime.get_port("main_app", root=str(roots[3001])) == 3001
    assert runtime.get_port("main_app") == 3004


def test_a_manifest_installed_later_nearer_the_working_folder_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer = tmp_path / "outer"
    inner = outer / "sub" / "inner"
    work = inner / "work"
    work.mkdir(parents=True)
    install_manifest(outer, main_app=3000)
    monkeypatch.chdir(work)
    monkeypatch.delenv("REC_PROJECT_ROOT", raising=False)
    assert runtime.get_port("main_app") == 3000
    install_manifest(inner, main_app=3555)
    assert runtime.get_port("main_app") == 3555
    assert runtime.get_project_root() == str(inner)


def test_the_working_folder_is_resolved_as_named_not_as_it_is_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another thread may chdir between reading the working folder and resolving it.
    first, second = tmp_path / "a", tmp_path / "b"
    install_manifest(first, main_app=3001)
    install_manifest(second, main_app=3002)
    monkeypatch.chdir(first)
    assert runtime._from_working_folder(bytes(second)).startswith(str(second))
    monkeypatch.chdir(second)
    assert runtime.get_port("main_app") == 3002


def test_a_deleted_working_folder_falls_back_to_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    monkeypatch.delenv("REC_PROJECT_ROOT", raising=False)
    gone.rmdir()
    assert runtime.get_project_root() == str(REPO)
    try:  # the checkout's own manifest, if it was set up, else an error naming it
        assert isinstance(runtime.get_port("main_app"), int)
    except ManifestError as exc:
        assert str(REPO) in str(exc)


def test_a_rebound_os_environ_is_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    install_manifest(first, main_app=3001)
    install_manifest(second, main_app=3002)
    monkeypatch.setenv("REC_PROJECT_ROOT", str(first))
    assert runtime.get_port("main_app") == 3001
    monkeypatch.setattr(os, "environ", {**os.environ, "REC_PROJECT_ROOT": str(second)})
    assert runtime.get_port("main_app") == 3002


def test_a_working_folder_below_the_root_is_resolved_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A service started in backend/ looked the root up again on every call (~60 us).
    install_manifest(tmp_path / "rec", main_app=3001)
    monkeypatch.chdir(tmp_path / "rec" / "backend" / "core")
    monkeypatch.delenv("REC_PROJECT_ROOT", raising=False)
    assert runtime.get_port("main_app") == 3001
    walks: list[Path | None] = []
    real = runtime.root_from_folder

    def counted(start: Path | None) -> Path:
        walks.append(start)
        return real(start)

    monkeypatch.setattr(runtime, "root_from_folder", counted)
    for _ in range(20):
        assert runtime.get_port("main_app") == 3001
    assert walks == []
    install_manifest(tmp_path / "rec" / "backend", main_app=3002)  # nearer, installed later
    assert runtime.get_port("main_app") == 3002


def test_a_removed_nearer_manifest_gives_way_to_the_project_above(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer, inner = tmp_path / "outer", tmp_path / "outer" / "inner"
    install_manifest(outer, main_app=3001)
    install_manifest(inner, main_app=3002)
    monkeypatch.chdir(inner)
    monkeypatch.delenv("REC_PROJECT_ROOT", raising=False)
    assert runtime.get_port("main_app") == 3002
    shutil.rmtree(inner / "backend")
    assert runtime.get_port("main_app") == 3001
    assert runtime.list_all_ports()["main_app"] == 3001
    assert runtime.get_project_root() == str(outer)
