"""Where the run index and the artifacts live.

Run index: `--state-path` > `PLAYBOOK_DB_URL` > `PLAYBOOK_DB_PATH` > config `[database] url` > config
`[database] path` > default (the user data dir's runs.db). A `postgresql://` (or `postgres://`, `sqlite:///`)
value is returned as the URL text; anything else as a `Path`.

Artifacts: `PLAYBOOK_ARTIFACTS_URL` > config `[artifacts] url` > None (the backend's default directory).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from playbook_nb.adapters.store.registry import is_url
from playbook_nb.constants import ARTIFACTS_URL_ENV
from playbook_nb.user_dirs import user_dir

if TYPE_CHECKING:
    from playbook_nb.app.config import Config

DB_PATH_ENV = "PLAYBOOK_DB_PATH"
DB_URL_ENV = "PLAYBOOK_DB_URL"


def default_db_path() -> Path:
    return Path(user_dir("data")) / "runs.db"


def default_artifacts_dir(key: str | None = None) -> Path:
    """Local artifacts of a store that has no file of its own (PostgreSQL) and no configured URL: a folder
    of its own per index (`key`), never the default SQLite index's."""
    base = Path(user_dir("data")) / "artifacts"
    return base / key if key else base


def default_sqlite_artifacts(db_path: Path) -> Path:
    """The artifact root of a SQLite index with no configured one: `artifacts/<file stem>/` beside the file,
    so two index files in one folder never share `artifacts/<run id>/` (nor prune each other's files)."""
    return db_path.parent / "artifacts" / (db_path.stem or "runs")


def postgres_artifacts_key(url: str) -> str:
    """A folder name for one PostgreSQL index: its database name and a short hash of host, port and name."""
    import hashlib  # at use: hashlib loads OpenSSL, which a SQLite index never needs
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    database = parts.path.lstrip("/") or "postgres"
    where = f"{parts.hostname or ''}:{parts.port or ''}/{database}"
    digest = hashlib.sha256(where.encode("utf-8")).hexdigest()[:10]
    return "postgresql-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", database) + "-" + digest


def is_db_url(value: str | os.PathLike[str]) -> bool:
    """A location a registered store backend serves by URL (`postgresql://`, `sqlite:///`), not a path."""
    return is_url(value)


def _location(value: str | os.PathLike[str]) -> Path | str:
    text = os.fspath(value)
    return text if is_db_url(text) else Path(text).expanduser()


def resolve_db_path(
    cli_value: str | os.PathLike[str] | None = None,
    config: Config | None = None,
    env: Mapping[str, str] | None = None,
) -> Path | str:
    """The run index path (or URL). `config` is the command's configuration (`app.settings.Settings` passes
    it); without it, only the CLI value and the environment decide, else the default path."""
    env = os.environ if env is None else env
    if cli_value:
        return _location(cli_value)
    if env.get(DB_URL_ENV):
        return _location(env[DB_URL_ENV])
    if env.get(DB_PATH_ENV):
        return _location(env[DB_PATH_ENV])
    if config is None:  # the caller's settings decide the rest (app.settings); nothing is read here
        return default_db_path()
    url = getattr(config.database, "url", None)
    if url:
        return _location(url)
    if config.database.path is not None:
        return Path(config.database.path).expanduser()
    return default_db_path()


def resolve_artifacts_url(
    cli_value: str | os.PathLike[str] | None = None,
    config: Config | None = None,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """The artifact root URL or directory, or None for the backend's default.

    `config` is the command's configuration (`app.settings.Settings` passes it); without it, only the CLI
    value and the environment decide.
    """
    env = os.environ if env is None else env
    if cli_value:
        return os.fspath(cli_value)
    if env.get(ARTIFACTS_URL_ENV):
        return env[ARTIFACTS_URL_ENV]
    if config is None:
        return None
    artifacts = getattr(config, "artifacts", None)
    return getattr(artifacts, "url", None)
