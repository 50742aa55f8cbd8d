"""Every path of a REC.IO project, defined once.

`Paths(root, user)` is what the bootstrapper uses; the module-level get_*_dir functions are the
REC.IO v2 names the services import, resolved against the project root found by
`resolve_project_root` (explicit argument > REC_PROJECT_ROOT > the nearest ancestor of the working
folder that holds the port manifest > the checkout that holds this package).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from recio_setup.errors import UsageError

DEFAULT_USER = "user_0001"
USER_PATTERN = re.compile(r"user_[0-9]{1,32}")
ROOT_ENV = "REC_PROJECT_ROOT"
# Set by bootstrap.py to the checkout it launched from: that folder is the project, and hints
# name `python3 bootstrap.py` instead of `recio-setup`.
LAUNCHER_ROOT_ENV = "RECIO_SETUP_LAUNCHER_ROOT"
HOST_ENV = "TRADING_SYSTEM_HOST"
USER_ENV = "REC_USER_ID"
CONFIG_REL = "backend/core/config"
MANIFEST_REL = f"{CONFIG_REL}/MASTER_PORT_MANIFEST.json"
CONFIG_JSON_REL = f"{CONFIG_REL}/config.json"
DATA_REL = "backend/data"
ENV_REL = ".env"
LOCKS_REL = f"{DATA_REL}/locks"
LOCK_REL = f"{LOCKS_REL}/bootstrap.lock"
ARCHIVES_REL = f"{DATA_REL}/archives"
USERS_REL = f"{DATA_REL}/users"
LOGS_REL = "logs"
FRONTEND_REL = "frontend"
VENV_PYTHON_REL = "venv/bin/python"
SUPERVISOR_CONFIG_REL = "backend/supervisord.conf"
LIVE_DATA_REL = f"{DATA_REL}/live_data"
KALSHI_DATA_REL = f"{LIVE_DATA_REL}/markets/kalshi"
PRICE_HISTORY_REL = f"{LIVE_DATA_REL}/price_history"
BTC_PRICE_HISTORY_REL = f"{PRICE_HISTORY_REL}/btc"
COINBASE_DATA_REL = f"{DATA_REL}/coinbase"
# The project-local PostgreSQL (`init --local-db`): data, so check and reset never touch it.
LOCAL_DB_REL = f"{DATA_REL}/postgres"
# The data folders every user shares, parents first: what init creates, besides the user's own.
SHARED_DATA_FOLDERS = (
    LIVE_DATA_REL,
    f"{LIVE_DATA_REL}/markets",
    KALSHI_DATA_REL,
    PRICE_HISTORY_REL,
    BTC_PRICE_HISTORY_REL,
    f"{PRICE_HISTORY_REL}/eth",
    f"{LIVE_DATA_REL}/live_probabilities",
    f"{DATA_REL}/historical_data",
    COINBASE_DATA_REL,
)
# Inside users/USER/.
ACCOUNTS_FOLDER = "accounts"
ACTIVE_TRADES_FOLDER = "active_trades"
TRADE_HISTORY_FOLDER = "trade_history"
USER_DATA_FOLDERS = (ACCOUNTS_FOLDER, ACTIVE_TRADES_FOLDER, TRADE_HISTORY_FOLDER)
CREDENTIALS_FOLDER = "credentials"
KALSHI_CREDENTIALS_FOLDER = f"{CREDENTIALS_FOLDER}/kalshi-credentials"
KALSHI_ENVIRONMENTS = ("prod", "demo")


def validate_user(user: str) -> str:
    if not USER_PATTERN.fullmatch(user):
        shown = user if len(user) <= 40 else f"{user[:37]}..."
        raise UsageError(
            f"--user {shown!r} is not a REC.IO user id",
            hint="user ids are `user_` followed by 1 to 32 digits, e.g. --user user_0001",
        )
    return user


@dataclass(frozen=True)
class Paths:
    """The project's paths; `rel` forms are what fsops.Tree takes."""

    root: Path
    user: str = DEFAULT_USER

    def __post_init__(self) -> None:
        validate_user(self.user)

    def abs(self, rel: str) -> Path:
        return self.root / rel

    # project-relative paths, for the tree operations
    env_rel = ENV_REL
    config_rel = CONFIG_REL
    manifest_rel = MANIFEST_REL
    config_json_rel = CONFIG_JSON_REL
    data_rel = DATA_REL
    lock_rel = LOCK_REL
    archives_rel = ARCHIVES_REL
    logs_rel = LOGS_REL

    @property
    def user_rel(self) -> str:
        return f"{USERS_REL}/{self.user}"

    @property
    def credentials_rel(self) -> str:
        return f"{self.user_rel}/{CREDENTIALS_FOLDER}"

    @property
    def kalshi_credentials_rel(self) -> str:
        return f"{self.user_rel}/{KALSHI_CREDENTIALS_FOLDER}"

    # absolute paths, for messages and the runtime API
    @property
    def env_file(self) -> Path:
        return self.abs(ENV_REL)

    @property
    def manifest(self) -> Path:
        return self.abs(MANIFEST_REL)

    @property
    def config_json(self) -> Path:
        return self.abs(CONFIG_JSON_REL)

    @property
    def data_dir(self) -> Path:
        return self.abs(DATA_REL)

    @property
    def user_dir(self) -> Path:
        return self.abs(self.user_rel)

    @property
    def logs_dir(self) -> Path:
        return self.abs(self.logs_rel)


def _manifest_ancestor(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / MANIFEST_REL).is_file():
            return folder
    return None


def source_folder() -> Path:
    """The folder holding the recio_setup package: the checkout, for an editable install."""
    return Path(__file__).resolve().parents[2]  # recio_setup/runtime/paths.py


def _package_checkout() -> Path | None:
    checkout = source_folder()
    return checkout if (checkout / "bootstrap.py").is_file() else None


def resolve_project_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Find the project root, in the documented order; never guesses silently."""
    if explicit:
        return Path(explicit).expanduser().absolute()
    from_env = os.environ.get(ROOT_ENV)
    if from_env:
        return Path(from_env).expanduser().absolute()
    try:
        cwd: Path | None = Path.cwd()
    except OSError:  # the working folder was deleted: the checkout is next in the order
        cwd = None
    return root_from_folder(cwd)


def root_from_folder(start: Path | None) -> Path:
    """The nearest folder from `start` up that holds the manifest, else the checkout."""
    found = (_manifest_ancestor(start) if start is not None else None) or _package_checkout()
    if found is None:
        raise UsageError(
            "cannot tell which folder is the REC.IO project",
            hint=f"run from inside the project, or set {ROOT_ENV}=/path/to/project",
        )
    return found


def default_paths(root: str | os.PathLike[str] | None = None, user: str | None = None) -> Paths:
    return Paths(
        resolve_project_root(root), validate_user(user or os.environ.get(USER_ENV) or DEFAULT_USER)
    )
