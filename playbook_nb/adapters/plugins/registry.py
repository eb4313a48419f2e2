"""Plugin discovery (entry point group `playbook.plugins`), parameter checks and plugin configuration.

Every user-caused problem (unknown plugin, a plugin that cannot be imported, unknown function, bad parameter,
missing environment variable) raises `PluginError` with one line naming what and where.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Collection, Mapping
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from playbook_nb.adapters.plugins.base import Plugin, PluginMetadata
from playbook_nb.domain.errors import PluginError
from playbook_nb.domain.values import convert_or_raise

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


def check_params(
    metadata: PluginMetadata, function: str, params: Mapping[str, Any], unknown_values: Collection[str] = ()
) -> dict[str, Any]:
    """`params` checked against `metadata.functions[function]`: unknown names and missing required ones are
    errors, string values are converted to the declared types, defaults fill in what was left out.

    `unknown_values`: names given whose values are not known yet (templates that read the run's state, checked
    by `validate`): their names are checked, their values are not converted and left out of the result."""
    signature = metadata.functions.get(function)
    if signature is None:
        available = ", ".join(sorted(metadata.functions)) or "none"
        raise PluginError(f"plugin '{metadata.name}' has no function '{function}' (available: {available})")
    where = f"plugin '{metadata.name}', function '{function}'"
    declared = signature.parameters
    unknown = sorted(set(params) - set(declared))
    extra = signature.extra_parameters
    if unknown and extra is None:
        accepted = ", ".join(declared) or "none"
        names = ", ".join(f"'{n}'" for n in unknown)
        noun = "parameter" if len(unknown) == 1 else "parameters"
        raise PluginError(f"{where}: unknown {noun} {names} (accepted: {accepted})")
    result: dict[str, Any] = {}
    for pname, pdef in declared.items():
        if pname in unknown_values:
            continue
        if pname not in params:
            if pdef.required:
                raise PluginError(f"{where}: missing required parameter '{pname}'")
            if pdef.default is not None:
                result[pname] = pdef.default
            continue
        value = convert_or_raise(params[pname], pdef.type, f"{where}, parameter '{pname}'", error=PluginError)
        if pdef.choices is not None and value not in pdef.choices:
            choices = ", ".join(repr(c) for c in pdef.choices)
            raise PluginError(f"{where}, parameter '{pname}': {value!r} is not one of {choices}")
        result[pname] = value
    if extra is not None:
        for pname in unknown:
            if pname in unknown_values:
                continue
            result[pname] = convert_or_raise(
                params[pname], extra.type, f"{where}, parameter '{pname}'", error=PluginError
            )
    return result


def secret_param_values(metadata: PluginMetadata, function: str, params: Mapping[str, Any]) -> list[str]:
    """The values in `params` (at any depth) that the function declares secret (`secret_params`)."""
    signature = metadata.functions.get(function)
    patterns = [p.lower() for p in (signature.secret_params if signature else ())]
    if not patterns:
        return []
    found: list[str] = []
    for path, value in _leaves("", params):
        if any(fnmatch.fnmatchcase(path.lower(), p) for p in patterns) and value not in (None, ""):
            found.append(str(value))
    return found


def is_secret_param(metadata: PluginMetadata, function: str, path: str) -> bool:
    """True when the dotted parameter path (e.g. "headers.Authorization") holds a secret."""
    signature = metadata.functions.get(function)
    patterns = [p.lower() for p in (signature.secret_params if signature else ())]
    return any(fnmatch.fnmatchcase(path.lower(), p) for p in patterns)


def _leaves(prefix: str, value: Any):
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(f"{prefix}.{key}" if prefix else str(key), item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(prefix, item)
    else:
        yield prefix, value


def merge_plugin_config(global_cfg: Mapping[str, Any] | None, node_cfg: Mapping[str, Any] | None) -> dict:
    """The node's `plugin_config` over the runbook's `[runbook.plugin_config.<plugin>]`.

    Nested tables merge key by key (the node wins on each key); anything else is replaced.
    """
    merged: dict[str, Any] = dict(global_cfg or {})
    for key, value in (node_cfg or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_plugin_config(merged[key], value)
        else:
            merged[key] = value
    return merged


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
