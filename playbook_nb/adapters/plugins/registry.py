"""Plugin discovery (entry point group `playbook.plugins`) and plugin configuration; `INSTALLED` is the
`PluginCatalog` the faces give the application (the parameter rules are app.plugin_api's, re-exported).

Every user-caused problem (unknown plugin, a plugin that cannot be imported, unknown function, bad parameter,
missing environment variable) raises `PluginError` with one line naming what and where.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from playbook_nb.app.plugin_api import (  # the rules, re-exported for the executors and plugin authors
    Plugin,
    PluginMetadata,
    check_params,
    merge_plugin_config,
    secret_param_values,
)
from playbook_nb.domain.errors import PluginError

ENTRY_POINT_GROUP = "playbook.plugins"
_REQUIRED_METHODS = ("get_metadata", "initialize", "execute", "cleanup")


@cache
def _entry_points() -> dict[str, EntryPoint]:
    """Installed plugins by name, read once per process (the first distribution wins on a duplicate name)."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def reset_cache() -> None:
    """Forget discovered and loaded plugins (after installing one into a running process)."""
    _entry_points.cache_clear()
    get_plugin.cache_clear()
    plugin_metadata.cache_clear()


def plugin_names() -> list[str]:
    return sorted(_entry_points())


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@cache
def get_plugin(name: str) -> type[Plugin]:
    """The plugin class registered as `name`; loaded once per process."""
    eps = _entry_points()
    ep = eps.get(name)
    if ep is None:
        available = ", ".join(sorted(eps)) or "none installed"
        raise PluginError(f"unknown plugin '{name}' (available: {available})")
    try:
        obj = ep.load()
    except Exception as exc:
        raise PluginError(f"plugin '{name}' ({ep.value}) failed to load: {_one_line(exc)}") from None
    if not isinstance(obj, type) or any(not callable(getattr(obj, m, None)) for m in _REQUIRED_METHODS):
        raise PluginError(
            f"plugin '{name}' ({ep.value}) is not a plugin class "
            f"(it needs the methods {', '.join(_REQUIRED_METHODS)})"
        )
    return obj


@cache
def plugin_metadata(name: str) -> PluginMetadata:
    """The metadata of plugin `name` (from a fresh instance's `get_metadata()`)."""
    cls = get_plugin(name)
    try:
        metadata = cls().get_metadata()
    except Exception as exc:
        raise PluginError(f"plugin '{name}' failed to describe itself: {_one_line(exc)}") from None
    if not isinstance(getattr(metadata, "functions", None), dict):
        raise PluginError(f"plugin '{name}': get_metadata() did not return a PluginMetadata")
    return metadata


def list_plugins(errors: list[PluginError] | None = None) -> list[PluginMetadata]:
    """Metadata of every installed plugin, by entry point name.

    A plugin that fails to load raises its `PluginError`; pass a list as `errors` to collect those instead and
    list the others (what `info --plugins` wants).
    """
    result = []
    for name in plugin_names():
        try:
            result.append(plugin_metadata(name))
        except PluginError as err:
            if errors is None:
                raise
            errors.append(err)
    return result


_ENV_REF = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_env(cfg: Any, env: Mapping[str, str] | None = None, *, where: str = "plugin_config") -> Any:
    """`cfg` with every `${VAR}` in its strings (at any depth) replaced by the environment variable's value.

    `$${VAR}` stands for a literal `${VAR}`. A variable that is not set raises PluginError naming it and
    the key. `env` defaults to `os.environ`.
    """
    environ = os.environ if env is None else env
    if isinstance(cfg, str):

        def substitute(match: re.Match) -> str:
            escaped, name = match.groups()
            if escaped:
                return "${" + name + "}"
            if name not in environ:
                raise PluginError(f"{where}: environment variable '{name}' is not set")
            return environ[name]

        return _ENV_REF.sub(substitute, cfg)
    if isinstance(cfg, Mapping):
        return {k: expand_env(v, environ, where=f"{where}.{k}") for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return [expand_env(v, environ, where=f"{where}[{i}]") for i, v in enumerate(cfg)]
    return cfg


class InstalledPlugins:
    """The `PluginCatalog` of the plugins installed in this environment (entry points, loaded once)."""

    def names(self) -> list[str]:
        return plugin_names()

    def metadata(self, name: str) -> PluginMetadata:
        return plugin_metadata(name)

    def plugin(self, name: str) -> type[Plugin]:
        return get_plugin(name)


INSTALLED = InstalledPlugins()

__all__ = [
    "ENTRY_POINT_GROUP",
    "INSTALLED",
    "InstalledPlugins",
    "check_params",
    "expand_env",
    "get_plugin",
    "list_plugins",
    "merge_plugin_config",
    "plugin_metadata",
    "plugin_names",
    "reset_cache",
    "secret_param_values",
]
