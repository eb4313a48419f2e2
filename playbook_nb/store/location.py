"""Where the run index lives: `--state-path` > `PLAYBOOK_DB_PATH` > config `[database] path` > default."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import platformdirs

if TYPE_CHECKING:
    from playbook_nb.config import Config

DB_PATH_ENV = "PLAYBOOK_DB_PATH"


def default_db_path() -> Path:
    return Path(platformdirs.user_data_dir("playbook-nb")) / "runs.db"


def resolve_db_path(
    cli_value: str | os.PathLike[str] | None = None,
    config: Config | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """The run index path. Without `config`, the configuration is loaded (from the current directory)."""
    env = os.environ if env is None else env
    if cli_value:
        return Path(cli_value).expanduser()
    if env.get(DB_PATH_ENV):
        return Path(env[DB_PATH_ENV]).expanduser()
    if config is None:
        from playbook_nb.config import load_config

        config = load_config(env=env)
    if config.database.path is not None:
        return Path(config.database.path).expanduser()
    return default_db_path()
