"""The REC.IO v2 runtime API, with its names, so services can `from recio_setup import get_port`.

Differences from v2 (on purpose): an unknown service raises UnknownServiceError instead of
answering 3000; a missing or broken manifest raises ManifestError instead of falling back to
defaults or regenerating the file; lookups are cached and re-read only when the file changes; the
host is found without sending a packet. Paths are returned as `str`, as v2 did.

Every function takes optional `root=` (else found in paths.resolve_project_root's order: explicit
> REC_PROJECT_ROOT > the nearest ancestor of the working folder holding the manifest > the
checkout; kept per way of naming it, see _project) and, for per-user paths, `user=` (else
REC_USER_ID, else user_0001).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path, PurePath
from typing import Any, NamedTuple, TypeAlias

from recio_setup.errors import RecioError
from recio_setup.runtime.env_values import clear_cache as clear_env_files
from recio_setup.runtime.env_values import env_file_value, parse_env, read_env_bytes
from recio_setup.runtime.file_cache import FileCache
from recio_setup.runtime.manifest_cache import cached_manifest
from recio_setup.runtime.manifest_cache import clear_cache as clear_manifests
from recio_setup.runtime.paths import (
    ACCOUNTS_FOLDER,
    ACTIVE_TRADES_FOLDER,
    BTC_PRICE_HISTORY_REL,
    COINBASE_DATA_REL,
    DATA_REL,
    DEFAULT_USER,
    ENV_REL,
    FRONTEND_REL,
    HOST_ENV,
    KALSHI_CREDENTIALS_FOLDER,
    KALSHI_DATA_REL,
    LOGS_REL,
    MANIFEST_REL,
    PRICE_HISTORY_REL,
    ROOT_ENV,
    SUPERVISOR_CONFIG_REL,
    TRADE_HISTORY_FOLDER,
    USER_ENV,
    USERS_REL,
    VENV_PYTHON_REL,
    resolve_project_root,
    root_from_folder,
    validate_user,
)
from recio_setup.runtime.ports import Manifest, ManifestMissing

Root: TypeAlias = "str | os.PathLike[str] | None"


class _Project(NamedTuple):
    """One project root and the files lookups read there, as str (no Path per call)."""

    root: str
    manifest: str
    env_file: str


def _project_at(root: Path) -> _Project:
    return _Project(str(root), str(root / MANIFEST_REL), str(root / ENV_REL))


# The project, per way of naming the root. A service calls get_port often, and resolving the
# root each time (Path objects, an ancestor walk with a stat per level) would cost more than the
# lookup itself. Only what cannot change meaning is kept: an absolute root given (by `root=` or
# REC_PROJECT_ROOT), and a working folder whose ancestor holds the manifest (so a manifest
# installed later is still found). A relative root means something else after a chdir.
_by_explicit_root: dict[object, _Project] = {}  # the root object as given (str or Path)
_by_env_root: dict[str, _Project] = {}  # REC_PROJECT_ROOT's value
# the working folder -> (the project found, the manifests that would be nearer if installed)
_by_working_folder: dict[bytes, tuple[_Project, tuple[str, ...]]] = {}


def _project(root: Root, *, confirm: bool = False) -> _Project:
    """The project `root` names. With `confirm`, one found from the working folder must still
    hold its manifest: for callers that do not read the manifest, so cannot notice it is gone."""
    if root:
        try:
            return _by_explicit_root[root]
        except (KeyError, TypeError):  # not kept (yet), or a PathLike that is no dict key
            return _remember(_by_explicit_root, root, os.fspath(root))
    from_env = os.environ.get(ROOT_ENV)
    if from_env:
        project = _by_env_root.get(from_env)
        return project or _remember(_by_env_root, from_env, from_env)
    try:
        cwd = os.getcwdb()  # noqa: PTH109 (a bytes key: no decoding on the hot path)
    except OSError:  # the working folder was deleted: the checkout is next in the order
        return _project_at(root_from_folder(None))
    hit = _by_working_folder.get(cwd)
    if hit is not None and (not hit[1] or not any(map(_exists, hit[1]))):
        if not confirm or _exists(hit[0].manifest):
            return hit[0]
        _forget_working_folder(hit[0].manifest)
    return _from_working_folder(cwd)


def _exists(path: str) -> bool:
    try:
        os.stat(path)  # noqa: PTH116 (a str, on the hot path)
    except OSError:
        return False
    return True


def _from_working_folder(cwd: bytes) -> _Project:
    """The project found from this working folder up, kept with the places in between where
    a manifest installed later would be nearer (each lookup checks them: one stat per level).
    The key is resolved, not Path.cwd(): another thread may have changed folder meanwhile."""
    start = Path(os.fsdecode(cwd))
    found = root_from_folder(start)
    project = _project_at(found)
    if found == start or found in start.parents:
        between = [start, *start.parents[: start.parents.index(found)]] if found != start else []
        _by_working_folder[cwd] = (project, tuple(str(f / MANIFEST_REL) for f in between))
    return project


def _forget_working_folder(manifest: str) -> bool:
    """The manifest a working folder led to is gone: forget it (True if it was one of those),
    so the next resolution can find the project above."""
    stale = [cwd for cwd, (found, _) in _by_working_folder.items() if found.manifest == manifest]
    for cwd in stale:
        _by_working_folder.pop(cwd, None)
    return bool(stale)


def _remember(cache: dict[Any, _Project], key: object, given: str) -> _Project:
    """The project at a given root; kept under `key` when the root is absolute (it then
    resolves to itself): a relative one means another folder after a chdir."""
    found = resolve_project_root(given)
    project = _project_at(found)
    if found == Path(given) and isinstance(key, (str, bytes, PurePath)):
        cache[key] = project
    return project


def clear_caches() -> None:
    """Forget everything looked up so far, as a new process would: resolved roots, read .env
    files and manifests, the detected host (tests; a long-running process whose tree moved)."""
    _by_explicit_root.clear()
    _by_env_root.clear()
    _by_working_folder.clear()
    clear_env_files()
    clear_manifests()
    _written_hosts.clear()
    _detected_host.cache_clear()


# -- ports ------------------------------------------------------------------------------------
def _current_manifest(root: Root) -> tuple[_Project, Manifest]:
    project = _project(root)
    try:
        return project, cached_manifest(project.manifest)
    except ManifestMissing:
        if root or not _forget_working_folder(project.manifest):
            raise
        project = _project(root)
        return project, cached_manifest(project.manifest)


def get_port(service_name: str, *, root: Root = None) -> int:
    """The port of a service; UnknownServiceError (a KeyError) if the manifest lacks it."""
    return _current_manifest(root)[1].port(service_name)


def list_all_ports(*, root: Root = None) -> dict[str, int]:
    return _current_manifest(root)[1].ports()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def get_service_url(service_name: str, endpoint: str = "", *, root: Root = None) -> str:
    project, manifest = _current_manifest(root)
    port = manifest.port(service_name)
    host = _environment_host() or _written_or_detected_host(project.env_file)
    if endpoint and not endpoint.startswith("/"):
        endpoint = "/" + endpoint  # "api/health" is a path: without the slash it joins the port
    return f"http://{_url_host(host)}:{port}{endpoint}"


def get_port_info(*, root: Root = None) -> dict[str, Any]:
    project, manifest = _current_manifest(root)
    ports = manifest.ports()
    host = _environment_host() or _written_or_detected_host(project.env_file)
    return {
        "ports": ports,
        "service_urls": {name: f"http://{_url_host(host)}:{port}" for name, port in ports.items()},
        "config_file": project.manifest,
        "host": host,
    }


# -- host -------------------------------------------------------------------------------------
# The order: TRADING_SYSTEM_HOST in the environment, else in the project's .env, else detected,
# else localhost. A value that is set is validated, and the result kept (per value in the
# environment, per version of the .env): a lookup would otherwise parse the address on every
# call. A refused value raises, and neither cache keeps an exception: it is refused every call.
_WRITTEN_ORIGIN = f"{HOST_ENV} in .env"


@functools.lru_cache(maxsize=1)
def _detected_host() -> str:
    from recio_setup.runtime.host import detect_host

    return detect_host({})[0]


def _validate_host(text: str, origin: str) -> str:
    from recio_setup.runtime.host import validate_host  # here: host.py costs a service's start

    return validate_host(text, origin=origin)


@functools.lru_cache(maxsize=64)
def _valid_environment_host(value: str) -> str | None:
    """TRADING_SYSTEM_HOST's value in the environment, validated; None when blank."""
    given = value.strip()
    return _validate_host(given, HOST_ENV) if given else None


def _written_host(data: bytes, path: str) -> str | None:
    """TRADING_SYSTEM_HOST in a .env with these bytes, validated; None when unset or blank."""
    written = (parse_env(data, path).get(HOST_ENV) or "").strip()
    return _validate_host(written, _WRITTEN_ORIGIN) if written else None


# The .env's host, validated once per version of the file, in the manifest's stat cache: one
# stat per call, every edit seen by the next. A refused host is not kept: refused every call.
_written_hosts: FileCache[str | None] = FileCache(read_env_bytes, _written_host)


def _environment_host() -> str | None:
    """TRADING_SYSTEM_HOST from the environment, validated; None when unset or blank. Asked
    first, so a host set there needs no project resolved and no .env read."""
    value = os.environ.get(HOST_ENV)
    return _valid_environment_host(value) if value else None


def _written_or_detected_host(env_file: str | None) -> str:
    """The next steps of the order: env_file's TRADING_SYSTEM_HOST (env_file is the project's
    .env; None when there is no project), else detected, else localhost."""
    try:
        written = _written_hosts.get(env_file) if env_file else None
    except OSError:  # no .env there (or it went before it was read)
        written = None
    return written or _detected_host()


def _env_file(root: Root) -> str | None:
    try:
        return _project(root, confirm=True).env_file
    except RecioError:
        return None


def env_file_host(root: Root = None) -> str | None:
    """TRADING_SYSTEM_HOST as written in the project's .env (what init chose), if any."""
    env_file = _env_file(root)
    return env_file_value(env_file, HOST_ENV) if env_file else None


def get_host(*, root: Root = None) -> str:
    """TRADING_SYSTEM_HOST from the environment, else from the project's .env, else detected,
    else localhost. A value that is set is validated."""
    return _environment_host() or _written_or_detected_host(_env_file(root))


# -- paths ------------------------------------------------------------------------------------
# The project cache answers these too, rather than resolve_project_root: no Path objects nor an
# ancestor walk per call. `confirm`: a folder that led to a project must still hold its manifest.
def _in_project(root: Root, *rel: str) -> str:
    return os.path.join(_project(root, confirm=True).root, *rel)  # noqa: PTH118 (str in, str out)


def _user_dir(root: Root, user: str | None, folder: str) -> str:
    user = validate_user(user or os.environ.get(USER_ENV) or DEFAULT_USER)
    return _in_project(root, USERS_REL, user, folder)


def get_project_root(*, root: Root = None) -> str:
    return _project(root, confirm=True).root


def get_data_dir(*, root: Root = None) -> str:
    return _in_project(root, DATA_REL)


def get_accounts_data_dir(*, root: Root = None, user: str | None = None) -> str:
    return _user_dir(root, user, ACCOUNTS_FOLDER)


def get_trade_history_dir(*, root: Root = None, user: str | None = None) -> str:
    return _user_dir(root, user, TRADE_HISTORY_FOLDER)


def get_active_trades_dir(*, root: Root = None, user: str | None = None) -> str:
    return _user_dir(root, user, ACTIVE_TRADES_FOLDER)


def get_kalshi_credentials_dir(*, root: Root = None, user: str | None = None) -> str:
    return _user_dir(root, user, KALSHI_CREDENTIALS_FOLDER)


def get_kalshi_data_dir(*, root: Root = None) -> str:
    return _in_project(root, KALSHI_DATA_REL)


def get_coinbase_data_dir(*, root: Root = None) -> str:
    return _in_project(root, COINBASE_DATA_REL)


def get_price_history_dir(*, root: Root = None) -> str:
    return _in_project(root, PRICE_HISTORY_REL)


def get_btc_price_history_dir(*, root: Root = None) -> str:
    return _in_project(root, BTC_PRICE_HISTORY_REL)


def get_logs_dir(*, root: Root = None) -> str:
    return _in_project(root, LOGS_REL)


def get_frontend_dir(*, root: Root = None) -> str:
    return _in_project(root, FRONTEND_REL)


def get_venv_python_path(*, root: Root = None) -> str:
    return _in_project(root, VENV_PYTHON_REL)


def get_supervisor_config_path(*, root: Root = None) -> str:
    return _in_project(root, SUPERVISOR_CONFIG_REL)
