"""recio-setup: the REC.IO environment bootstrapper, and the runtime library its services use.

The runtime API (get_port, get_service_url, get_data_dir, ensure_data_dirs, ...) is importable
from here under its REC.IO v2 names. It is loaded on first use, so `import recio_setup` (and
the CLI's start-up) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_RUNTIME = (
    "get_port",
    "list_all_ports",
    "get_port_info",
    "get_service_url",
    "get_host",
    "get_project_root",
    "get_data_dir",
    "get_accounts_data_dir",
    "get_trade_history_dir",
    "get_active_trades_dir",
    "get_kalshi_credentials_dir",
    "get_kalshi_data_dir",
    "get_coinbase_data_dir",
    "get_price_history_dir",
    "get_btc_price_history_dir",
    "get_logs_dir",
    "get_frontend_dir",
    "get_venv_python_path",
    "get_supervisor_config_path",
)
_LAZY = {
    **dict.fromkeys(_RUNTIME, "recio_setup.runtime.api"),
    "ensure_data_dirs": "recio_setup.tree.datatree",
    "get_db_settings": "recio_setup.runtime.database",
    "get_database_url": "recio_setup.runtime.database",
    "DatabaseSettingsError": "recio_setup.runtime.database",
    "get_kalshi_credentials": "recio_setup.runtime.kalshi",
    "KalshiCredentials": "recio_setup.runtime.kalshi",
    "CredentialsError": "recio_setup.runtime.kalshi",
    "UnknownServiceError": "recio_setup.runtime.ports",
    "ManifestError": "recio_setup.runtime.ports",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'recio_setup' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
