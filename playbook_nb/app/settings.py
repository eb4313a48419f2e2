"""One settings object per command, built once and passed down (as httpie passes its `Environment`).

A face builds `Settings.load()` once when a command starts (the CLI keeps it on the click context, the
kernel face in its run); everything the configuration decides is read from it: where the run index and the
artifacts live, the retry and parallelism defaults. No module below reads the configuration on its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playbook_nb.adapters.store import Store
from playbook_nb.adapters.store.location import resolve_artifacts_url, resolve_db_path
from playbook_nb.app.config import Config, load_config, parallel_workers
from playbook_nb.domain.records import Row

if TYPE_CHECKING:
    from playbook_nb.app.notify import NotifierFactory


@dataclass(eq=False, repr=False, init=False)  # __init__, frozen, eq, hash, repr: Row's
class Settings(Row):
    """The configuration and the environment of one command."""

    config: Config
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)

    @classmethod
    def load(
        cls, cwd: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
    ) -> Settings:
        """Read the configuration (files, overlay, environment): once per command."""
        env = os.environ if env is None else env
        return cls(load_config(cwd, env), env)

    def db_location(self, cli_value: str | os.PathLike[str] | None = None) -> Path | str:
        """The run index: --state-path > PLAYBOOK_DB_URL > PLAYBOOK_DB_PATH > [database] > the default."""
        return resolve_db_path(cli_value, self.config, self.env)

    def artifacts_url(self, cli_value: str | os.PathLike[str] | None = None) -> str | None:
        return resolve_artifacts_url(cli_value, self.config, self.env)

    def open_store(self, cli_value: str | os.PathLike[str] | None = None) -> Store:
        return Store.open(self.db_location(cli_value), artifacts_root=self.artifacts_url())

    def decision_options(self, build_notifier: NotifierFactory) -> dict[str, Any]:
        """The RunOptions the configuration gives a run: `[groups]` (gate approvers) and `[notify]`, its
        targets built by `build_notifier` (the faces pass adapters.notifiers.registry.build_notifier)."""
        from playbook_nb.app.notify import NotifySettings

        notify = NotifySettings.from_table(self.config.notify, build_notifier)
        return {"groups": dict(self.config.groups), "notify": notify}

    @property
    def max_retries(self) -> int:
        """Operator retries when --max-retries is not given: the seed's `[execution] max_retries` (or
        `PLAYBOOK_MAX_RETRIES`) counts attempts in all, as in the seed, so a node gets one retry fewer."""
        return max(0, self.config.execution.max_retries - 1)

    def parallel(self, value: int | None = None) -> int:
        """--parallel N, else `[execution] parallel` (true = 4), else 1."""
        return int(value) if value is not None else parallel_workers(self.config.execution.parallel)
