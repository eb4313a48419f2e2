"""Store backends found by URL scheme, as papermill finds its I/O handlers.

A backend registers the schemes it serves with the name of its class ("module:Class"); the class is imported
only when a location with that scheme is opened, so opening a SQLite file never imports psycopg. A plain
path (no scheme) is a SQLite file. The `Store` base class knows no backend: `Store.open` asks this registry.

    register_backend(("mysql",), "mypackage.store:MySQLStore")   # a class with open(location, ...)
    backend_for("postgresql://db/runs")  -> PostgresStore
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import TYPE_CHECKING, Any

from playbook_nb.domain.errors import StoreError

if TYPE_CHECKING:
    from playbook_nb.adapters.store.base import Store

PATH_SCHEME = ""  # a location without a scheme: a file path

# scheme -> "module:Class"; the built-in backends
_BACKENDS: dict[str, str] = {
    PATH_SCHEME: "playbook_nb.adapters.store.sqlite:SQLiteStore",
    "sqlite": "playbook_nb.adapters.store.sqlite:SQLiteStore",
    "postgresql": "playbook_nb.adapters.store.postgres:PostgresStore",
    "postgres": "playbook_nb.adapters.store.postgres:PostgresStore",
}


def register_backend(schemes: tuple[str, ...] | list[str], target: str) -> None:
    """Serve locations with these URL schemes by the class named `target` ("module:Class")."""
    if ":" not in target:
        raise ValueError(f"store backend {target!r}: expected 'module:Class'")
    for scheme in schemes:
        _BACKENDS[scheme.lower()] = target


def schemes() -> list[str]:
    """The URL schemes a location may use (the file path form aside)."""
    return sorted(scheme for scheme in _BACKENDS if scheme)


def scheme_of(location: str | os.PathLike[str]) -> str:
    """`postgresql` for "postgresql://...", "" for a path (a Windows drive letter is no scheme)."""
    text = os.fspath(location)
    head, sep, _rest = text.partition("://")
    if not sep or len(head) < 2 or not head.replace("+", "").replace("-", "").isalnum():
        return PATH_SCHEME
    return head.lower()


def is_url(location: str | os.PathLike[str]) -> bool:
    """A location one of the registered backends serves by URL (not a file path)."""
    return (
        isinstance(location, str) and scheme_of(location) in _BACKENDS and scheme_of(location) != PATH_SCHEME
    )


def backend_for(location: str | os.PathLike[str]) -> type[Store]:
    scheme = scheme_of(location)
    target = _BACKENDS.get(scheme)
    if target is None:
        known = ", ".join(f"{s}://" for s in schemes())
        raise StoreError(
            f"run index {os.fspath(location)!r}: no store backend for '{scheme}://' (known: {known})"
        )
    module_name, _, attr = target.partition(":")
    backend: Any = getattr(import_module(module_name), attr)
    return backend
