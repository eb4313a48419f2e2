"""The run index as the server sees it: opened once, from the same configuration as the CLI
(`PLAYBOOK_DB_URL` / `PLAYBOOK_DB_PATH` / `playbook.toml` in the server's working directory), and used
from one worker thread so a slow query never blocks the server's event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from playbook_nb.adapters.store import Store
from playbook_nb.app.settings import Settings

T = TypeVar("T")


class RunIndex:
    """Lazily opened store plus the one thread that talks to it (a SQLite connection or a psycopg one)."""

    def __init__(self, location: str | None = None):
        self._location = location  # None: resolved from the configuration at first use
        self._store: Store | None = None
        self.groups: dict[str, tuple[str, ...]] = {}  # [groups] of the configuration, for gate approvers
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="playbook-nb-index")

    def _open(self) -> Store:
        with self._lock:
            if self._store is None:
                settings = Settings.load()  # once, when the index is first used
                self.groups = dict(settings.config.groups)
                self._store = Store.open(
                    self._location or settings.db_location(), artifacts_root=settings.artifacts_url()
                )
            return self._store

    async def call(self, work: Callable[[Store], T]) -> T:
        """Run `work(store)` on the index thread and return its result (its exception is raised here)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: work(self._open()))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
