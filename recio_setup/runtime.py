"""The REC.IO v2 runtime API, with its names, so services can `from recio_setup import get_port`.

Differences from v2 (on purpose): an unknown service raises UnknownServiceError instead of
answering 3000; a missing or broken manifest raises ManifestError instead of falling back to
defaults or regenerating the file; lookups are cached and re-read only when the file changes; the
host is found without sending a packet. Paths are returned as `str`, as v2 did.

Every function takes optional `root=` (else resolved by paths.resolve_project_root: explicit >
REC_PROJECT_ROOT > the nearest ancestor of the working folder holding the manifest > the
checkout) and, for per-user paths, `user=` (else REC_USER_ID, else user_0001).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path, PurePath
from typing import Any, TypeAlias

from recio_setup.env_values import env_file_value
from recio_setup.errors import RecioError
from recio_setup.manifest_cache import cached_manifest, lookup_port
from recio_setup.paths import (
    DEFAULT_USER,
    MANIFEST_REL,
    ROOT_ENV,
    USER_ENV,
    Paths,
    resolve_project_root,
    root_from_folder,
    validate_user,
)
from recio_setup.ports import Manifest, ManifestMissing

Root: TypeAlias = "str | os.PathLike[str] | None"

# Where get_port's manifest is, per way of naming the root. A service calls get_port often, and
# resolving the root each time (Path objects, an ancestor walk with a stat per level) would cost
# more than the lookup itself. Only what cannot change meaning is kept: an absolute root given
# (by `root=` or REC_PROJECT_ROOT), and a working folder whose ancestor holds the manifest (so a
# manifest installed later is still found). A relative root means something else after a chdir.
_explicit_paths: dict[object, str] = {}  # the root object as given (str or Path)
_env_paths: dict[bytes, str] = {}  # REC_PROJECT_ROOT's raw value
# the working folder -> (the manifest found, the manifests that would be nearer if installed)
_cwd_paths: dict[bytes, tuple[str, tuple[str, ...]]] = {}

# os.environ.get of an unset variable raises and catches a KeyError inside (~1.3 us, more than
# the whole lookup), so get_port reads the bytes mapping os.environ keeps in sync, where it has
# one, and as long as os.environ is still the mapping it was at import.
_ROOT_ENV_KEY = os.fsencode(ROOT_ENV)
_environ_at_import = os.environ
_environ_bytes = getattr(os.environ, "_data", None)


def _root_env_slow(key: bytes) -> bytes | None:
    text = os.environ.get(os.fsdecode(key))
    return os.fsencode(text) if text else None


_root_env_fast = _environ_bytes.get if isinstance(_environ_bytes, dict) else _root_env_slow


def _root(root: Root) -> Path:
    return resolve_project_root(root)


def _manifest_path(root: Root) -> str:
    if root:
        path = _explicit_paths.get(root) if isinstance(root, (str, PurePath)) else None
        return path or _remember(_explicit_paths, root, os.fspath(root))
    if os.environ is _environ_at_import:
        from_env = _root_env_fast(_ROOT_ENV_KEY)
    else:  # someone rebound os.environ
        from_env = _root_env_slow(_ROOT_ENV_KEY)
    if from_env:
        path = _env_paths.get(from_env)
        return path or _remember(_env_paths, from_env, os.fsdecode(from_env))
    try:
        cwd = os.getcwdb()  # noqa: PTH109 (a bytes key: no decoding on the hot path)
    except OSError:  # the working folder was deleted: the checkout is next in the order
        return str(root_from_folder(None) / MANIFEST_REL)
    hit = _cwd_paths.get(cwd)
    if hit is not None and (not hit[1] or not any(map(_exists, hit[1]))):
        return hit[0]
    return _from_working_folder(cwd)


def _exists(path: str) -> bool:
    try:
        os.stat(path)  # noqa: PTH116 (a str, on the hot path)
    except OSError:
        return False
    return True


def _from_working_folder(cwd: bytes) -> str:
    """The manifest found from this working folder up, kept with the places in between where
    a manifest installed later would be nearer (each lookup checks them: one stat per level).
    The key is resolved, not Path.cwd(): another thread may have changed folder meanwhile."""
    start = Path(os.fsdecode(cwd))
    found = root_from_folder(start)
    if found == start or found in start.parents:
        between = [start, *start.parents[: start.parents.index(found)]] if found != start else []
        _cwd_paths[cwd] = (str(found / MANIFEST_REL), tuple(str(f / MANIFEST_REL) for f in between))
    return str(found / MANIFEST_REL)


def _forget_working_folder(path: str) -> bool:
    """The manifest a working folder led to is gone: forget it (True if it was one of those),
    so the next resolution can find the project above."""
    stale = [cwd for cwd, (found, _) in _cwd_paths.items() if found == path]
    for cwd in stale:
        _cwd_paths.pop(cwd, None)
    return bool(stale)


def _remember(cache: dict[Any, str], key: object, given: str) -> str:
    """The manifest under a given root; kept under `key` when the root is absolute (it then
    resolves to itself): a relative one means another folder after a chdir."""
    found = resolve_project_root(given)
    path = str(found / MANIFEST_REL)
    if found == Path(given) and isinstance(key, (str, bytes, PurePath)):
        cache[key] = path
    return path


def clear_caches() -> None:
    """Forget resolved roots (tests; a long-running process whose tree moved)."""
    _explicit_paths.clear()
    _env_paths.clear()
    _cwd_paths.clear()


def _paths(root: Root, user: str | None = None) -> Paths:
    return Paths(_root(root), validate_user(user or os.environ.get(USER_ENV) or DEFAULT_USER))


# -- ports ------------------------------------------------------------------------------------
def get_port(service_name: str, *, root: Root = None) -> int:
    """The port of a service; UnknownServiceError (a KeyError) if the manifest lacks it."""
    path = _manifest_path(root)
    try:
        return lookup_port(path, service_name)
    except ManifestMissing:
        if root or not _forget_working_folder(path):
            raise
        return lookup_port(_manifest_path(root), service_name)


def _current_manifest(root: Root) -> tuple[str, Manifest]:
    path = _manifest_path(root)
    try:
        return path, cached_manifest(path)
    except ManifestMissing:
        if root or not _forget_working_folder(path):
            raise
        path = _manifest_path(root)
        return path, cached_manifest(path)


def list_all_ports(*, root: Root = None) -> dict[str, int]:
    return _current_manifest(root)[1].ports()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def get_service_url(service_name: str, endpoint: str = "", *, root: Root = None) -> str:
    port = get_port(service_name, root=root)
    return f"http://{_url_host(get_host(root=root))}:{port}{endpoint}"


def get_port_info(*, root: Root = None) -> dict[str, Any]:
    manifest_path, manifest = _current_manifest(root)
    ports = manifest.ports()
    host = get_host(root=root)
    return {
        "ports": ports,
        "service_urls": {name: f"http://{_url_host(host)}:{port}" for name, port in ports.items()},
        "config_file": manifest_path,
        "host": host,
    }


# -- host -------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _detected_host() -> str:
    from recio_setup.host import detect_host

    return detect_host({})[0]


def env_file_host(root: Root = None) -> str | None:
    """TRADING_SYSTEM_HOST as written in the project's .env (what init chose), if any."""
    from recio_setup.host import HOST_ENV

    try:
        env_file = _root(root) / ".env"
    except RecioError:
        return None
    return env_file_value(str(env_file), HOST_ENV)


def get_host(*, root: Root = None) -> str:
    """TRADING_SYSTEM_HOST from the environment, else from the project's .env, else detected,
    else localhost. A value that is set is validated."""
    from recio_setup.host import HOST_ENV, validate_host

    given = os.environ.get(HOST_ENV, "").strip()
    if given:
        return validate_host(given, origin=HOST_ENV)
    written = env_file_host(root)
    if written:
        return validate_host(written, origin=f"{HOST_ENV} in .env")
    return _detected_host()


# -- paths ------------------------------------------------------------------------------------
def get_project_root(*, root: Root = None) -> str:
    return str(_root(root))


def get_data_dir(*, root: Root = None) -> str:
    return str(_paths(root).data_dir)


def _user_dir(root: Root, user: str | None, *parts: str) -> str:
    return str(_paths(root, user).user_dir.joinpath(*parts))


def get_accounts_data_dir(*, root: Root = None, user: str | None = None) -> str:
    return _user_dir(root, user, "accounts")


def get_trade_history_dir(*, root: Root = None, user: str | None = None) -> str:
    return _user_dir(root, user, "trade_history")


def get_active_trades_dir(*, root: Root = None, user: str | None = None) -> str:
    return _user_dir(root, user, "active_trades")


def get_kalshi_credentials_dir(*, root: Root = None, user: str | None = None) -> str:
    return _user_dir(root, user, "credentials", "kalshi-credentials")


def get_kalshi_data_dir(*, root: Root = None) -> str:
    return str(_paths(root).data_dir / "live_data" / "markets" / "kalshi")


def get_coinbase_data_dir(*, root: Root = None) -> str:
    return str(_paths(root).data_dir / "coinbase")


def get_price_history_dir(*, root: Root = None) -> str:
    return str(_paths(root).data_dir / "live_data" / "price_history")


def get_btc_price_history_dir(*, root: Root = None) -> str:
    return str(Path(get_price_history_dir(root=root)) / "btc")


def get_logs_dir(*, root: Root = None) -> str:
    return str(_paths(root).logs_dir)


def get_frontend_dir(*, root: Root = None) -> str:
    return str(_root(root) / "frontend")


def get_venv_python_path(*, root: Root = None) -> str:
    return str(_root(root) / "venv" / "bin" / "python")


def get_supervisor_config_path(*, root: Root = None) -> str:
    return str(_root(root) / "backend" / "supervisord.conf")
