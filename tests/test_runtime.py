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
from recio_setup.errors import UsageError
from recio_setup.runtime import api as runtime
from recio_setup.runtime.manifest_cache import clear_cache
from recio_setup.runtime.ports import ManifestError, ManifestMissing, UnknownServiceError
from tests.conftest import REPO, ROOT_ON_LINUX, mounted

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
        "heavy = [m for m in ('rich', 'psycopg', 'questionary', 'recio_setup.runtime.api') "
        "if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert callable(recio_setup.get_port) and 'recio_setup.runtime.api' in sys.modules\n"
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


@pytest.mark.usefixtures("clock_moved_on")
def test_environment_changes_are_seen_by_the_next_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lookups read the environment's own dict (not os.environ.get, too slow for an unset
    # name): every way a program changes os.environ must still show on the very next call.
    first, second = tmp_path / "a", tmp_path / "b"
    host_project(first, host="10.0.0.1", main_app=3001)
    host_project(second, host="10.0.0.2", main_app=3002)
    monkeypatch.delenv("TRADING_SYSTEM_HOST", raising=False)
    monkeypatch.setenv("REC_PROJECT_ROOT", str(first))
    assert runtime.get_service_url("main_app") == "http://10.0.0.1:3001"
    os.environ["REC_PROJECT_ROOT"] = str(second)
    assert runtime.get_service_url("main_app") == "http://10.0.0.2:3002"
    os.environ["TRADING_SYSTEM_HOST"] = "10.7.7.7"
    assert runtime.get_service_url("main_app") == "http://10.7.7.7:3002"
    os.environ["TRADING_SYSTEM_HOST"] = "10.7.7.8"
    assert runtime.get_host() == "10.7.7.8"
    os.environ["TRADING_SYSTEM_HOST"] = "  "  # blank: as if unset, the .env is next
    assert runtime.get_service_url("main_app") == "http://10.0.0.2:3002"
    del os.environ["TRADING_SYSTEM_HOST"]
    assert runtime.get_host() == "10.0.0.2"
    os.environ.update({"REC_PROJECT_ROOT": str(first), "TRADING_SYSTEM_HOST": "10.7.7.9"})
    assert runtime.get_service_url("main_app") == "http://10.7.7.9:3001"
    monkeypatch.setattr(os, "environ", {"REC_PROJECT_ROOT": str(second)})  # rebound
    assert runtime.get_service_url("main_app") == "http://10.0.0.2:3002"
    os.environ["TRADING_SYSTEM_HOST"] = "10.7.7.10"
    assert runtime.get_host() == "10.7.7.10"


def test_a_host_set_is_validated_on_every_call(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Validation is kept per value, so a refused value is refused again, not remembered as fine.
    host_project(project, host="10.9.8.7")
    monkeypatch.setenv("TRADING_SYSTEM_HOST", "not a host")
    for _ in range(2):
        with pytest.raises(UsageError, match="TRADING_SYSTEM_HOST 'not a host'"):
            runtime.get_service_url("main_app", root=project)
    monkeypatch.delenv("TRADING_SYSTEM_HOST")
    (project / ".env").write_text("TRADING_SYSTEM_HOST=bad..host\n")
    for _ in range(2):
        with pytest.raises(UsageError, match=r"TRADING_SYSTEM_HOST in \.env 'bad\.\.host'"):
            runtime.get_host(root=project)


def test_a_host_in_the_environment_needs_no_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The environment comes first in the order: get_host must not resolve the project for it.
    monkeypatch.setenv("TRADING_SYSTEM_HOST", "10.1.1.1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REC_PROJECT_ROOT", raising=False)

    def no_walk(start: Path | None) -> Path:
        raise AssertionError(f"the project was resolved from {start}")

    monkeypatch.setattr(runtime, "root_from_folder", no_walk)
    assert runtime.get_host() == "10.1.1.1"


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
    assert runtime._from_working_folder(bytes(second)).manifest.startswith(str(second))
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


def test_path_functions_follow_the_project_from_one_call_to_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # They share get_port's project cache: a manifest installed or removed nearer the working
    # folder, or REC_PROJECT_ROOT changed, must show on the very next call.
    outer = tmp_path / "outer"
    inner = outer / "inner"
    (inner / "work").mkdir(parents=True)
    install_manifest(outer)
    monkeypatch.chdir(inner / "work")
    monkeypatch.delenv("REC_PROJECT_ROOT", raising=False)
    assert runtime.get_data_dir() == str(outer / "backend/data")
    install_manifest(inner)
    assert runtime.get_data_dir() == str(inner / "backend/data")
    assert runtime.get_logs_dir() == str(inner / "logs")
    shutil.rmtree(inner / "backend")
    assert runtime.get_accounts_data_dir(user="user_0002") == str(
        outer / "backend/data/users/user_0002/accounts"
    )
    assert runtime.get_project_root() == str(outer)
    monkeypatch.setenv("REC_PROJECT_ROOT", str(tmp_path / "elsewhere"))
    assert runtime.get_frontend_dir() == str(tmp_path / "elsewhere/frontend")


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


# -- the .env that get_host reads: cached like the manifest, every edit seen by the next call --
def host_project(root: Path, host: str = "10.9.8.7", main_app: int = 3000) -> Path:
    """A project with a manifest and a .env naming `host`; returns the .env."""
    install_manifest(root, main_app=main_app)
    env_file = root / ".env"
    env_file.write_text(f"# written by init\nTRADING_SYSTEM_HOST={host}\nAUTH_ENABLED=false\n")
    return env_file


def test_a_replaced_env_file_is_seen_by_the_next_call(project: Path) -> None:
    env_file = host_project(project)
    assert runtime.get_host(root=project) == "10.9.8.7"
    before = env_file.stat()
    incoming = project / ".env.new"
    incoming.write_text(env_file.read_text().replace("10.9.8.7", "10.9.8.8"))  # same size
    os.utime(incoming, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(incoming, env_file)  # a new inode, as init's atomic write makes
    assert runtime.get_host(root=project) == "10.9.8.8"
    assert runtime.get_service_url("main_app", root=project) == "http://10.9.8.8:3000"


def test_a_removed_env_file_falls_back_to_detection_and_a_new_one_is_seen(
    project: Path,
) -> None:
    env_file = host_project(project)
    assert runtime.get_host(root=project) == "10.9.8.7"
    env_file.unlink()
    assert runtime.get_host(root=project) == runtime._detected_host()
    assert runtime.env_file_host(project) is None
    env_file.write_text("TRADING_SYSTEM_HOST=10.9.8.9\n")
    assert runtime.get_host(root=project) == "10.9.8.9"


@pytest.mark.usefixtures("coarse_timestamps")
def test_same_size_edits_within_one_timestamp_tick_are_seen_by_the_next_call(
    project: Path,
) -> None:
    # The racy case: an in-place edit of the same size, in the tick of the last read, keeps
    # every field a stat shows (coarse_timestamps holds mtime and ctime still).
    env_file = host_project(project)
    manifest = project / MANIFEST_REL
    assert runtime.get_service_url("main_app", root=project) == "http://10.9.8.7:3000"
    stamps = {path: path.stat() for path in (env_file, manifest)}
    env_file.write_text(env_file.read_text().replace("10.9.8.7", "10.9.8.6"))
    assert runtime.get_host(root=project) == "10.9.8.6"
    install_manifest(project, main_app=3009)
    assert runtime.get_port("main_app", root=project) == 3009
    env_file.write_text(env_file.read_text().replace("10.9.8.6", "10.9.8.5"))
    install_manifest(project, main_app=3008)
    assert runtime.get_service_url("main_app", root=project) == "http://10.9.8.5:3008"
    for path, before in stamps.items():
        after = path.stat()
        fields = ("st_mtime_ns", "st_ctime_ns", "st_size", "st_ino", "st_dev")
        assert [getattr(after, f) for f in fields] == [getattr(before, f) for f in fields]


@pytest.mark.skipif(not ROOT_ON_LINUX, reason="needs root on Linux to mount ramfs")
def test_edits_on_a_coarse_timestamp_filesystem_are_seen(tmp_path: Path) -> None:
    mount_point = tmp_path / "ramfs"
    mount_point.mkdir()
    with mounted("-t", "ramfs", "ramfs", str(mount_point)):
        env_file = host_project(mount_point, host="10.9.8.100")
        stale = []
        for last in range(101, 200):
            runtime.get_service_url("main_app", root=mount_point)  # read, then edit at once
            with env_file.open("r+") as handle:  # in place, same size
                handle.write(f"# written by init\nTRADING_SYSTEM_HOST=10.9.8.{last}\n")
                handle.write("AUTH_ENABLED=false\n")
            install_manifest(mount_point, main_app=3000 + last)
            url = runtime.get_service_url("main_app", root=mount_point)
            if url != f"http://10.9.8.{last}:{3000 + last}":
                stale.append(url)
        assert not stale, f"{len(stale)} of 99 edits unseen"


def test_a_removed_nearer_project_gives_way_to_the_env_file_above(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outer, inner = tmp_path / "outer", tmp_path / "outer" / "inner"
    host_project(outer, host="10.0.0.1")
    host_project(inner, host="10.0.0.2")
    monkeypatch.chdir(inner)
    assert runtime.get_host() == "10.0.0.2"
    (inner / MANIFEST_REL).unlink()
    assert runtime.get_host() == "10.0.0.1"
    assert runtime.get_service_url("main_app") == "http://10.0.0.1:3000"


@pytest.mark.usefixtures("clock_moved_on")
def test_an_unchanged_lookup_costs_one_stat_per_file(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README's promise, counted rather than timed: get_port stats the manifest, and
    # get_service_url the manifest and the .env, nothing more (with files that have settled).
    host_project(project)
    assert runtime.get_service_url("main_app", root=project) == "http://10.9.8.7:3000"
    stats: list[str] = []
    real_stat = os.stat

    def counted(path: str, *args: object, **kwargs: object) -> os.stat_result:
        stats.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", counted)
    assert runtime.get_port("main_app", root=project) == 3000
    assert stats == [str(project / MANIFEST_REL)]
    stats.clear()
    assert runtime.get_service_url("main_app", root=project) == "http://10.9.8.7:3000"
    assert sorted(stats) == sorted([str(project / MANIFEST_REL), str(project / ".env")])
