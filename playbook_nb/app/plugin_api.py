"""The plugin port: the interface a plugin implements (seed-compatible: `playbook.domain.plugins`), the rules
its parameters follow, and `PluginCatalog`, what the application asks about the installed plugins.

A plugin is a class registered under the `playbook.plugins` entry point group. For each Function node the
executor creates an instance, calls `initialize(config)`, `execute(function_name, params)` and `cleanup()`.
`params` have been checked and converted against `get_metadata().functions[function_name]` beforehand.

Before `initialize`, the executor sets `plugin.context` to a `StepContext` (which run, node and attempt, where
the runbook lives, a folder for files that become the run's artifacts, and the fixture stand-in during a
rehearsal). Plugins that need none of it ignore it.

The application reaches the installed plugins only through a `PluginCatalog` the faces compose (the
executor's `plugins`: adapters.plugins.registry.INSTALLED, entry-point discovery); plugin authors import
these names from `playbook_nb.adapters.plugins` (or `.base`), which re-exports them.
"""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from playbook_nb.app.ports import StepContext
from playbook_nb.domain.errors import PluginError
from playbook_nb.domain.values import convert_or_raise


@dataclass
class ParameterDef:
    type: str  # str, int, float, bool, list, dict (or "any": passed through unchanged)
    required: bool = False
    default: Any = None
    description: str = ""
    choices: list | None = None


@dataclass
class FunctionSignature:
    name: str
    description: str
    parameters: dict[str, ParameterDef] = field(default_factory=dict)
    returns: str | None = None
    # Dotted parameter paths whose values are secrets, as case-insensitive fnmatch patterns ("auth_token",
    # "headers.authorization", "headers.*token*"): the run masks them, and the variables they use, everywhere.
    secret_params: tuple[str, ...] = ()
    # Parameters the function accepts besides the declared ones (passed through unchanged), e.g. GraphQL
    # variables; None: an undeclared parameter is an error.
    extra_parameters: ParameterDef | None = None


@dataclass
class PluginMetadata:
    name: str
    version: str
    author: str
    description: str
    functions: dict[str, FunctionSignature] = field(default_factory=dict)


class Plugin(ABC):
    """Base class of every plugin. Instances are created with no arguments."""

    context: StepContext | None = None  # set by the executor before initialize()

    def rehearses(self, spec: dict[str, Any]) -> bool:
        """True when the plugin can run in a rehearsal with this fixture entry (`context.rehearsal`) standing
        in for the world, touching nothing outside the process; the rehearsal then runs it instead of
        answering for it from the fixture. The default: never."""
        return False

    @abstractmethod
    def get_metadata(self) -> PluginMetadata:
        """What the plugin offers: its name, version and functions with their parameters."""

    @abstractmethod
    def initialize(self, config: dict[str, Any]) -> None:
        """Receive the configuration: `[runbook.plugin_config.<name>]` merged with the node's own."""

    @abstractmethod
    def execute(self, function_name: str, params: dict[str, Any]) -> Any:
        """Run one function; the return value is recorded. Raise to fail the node."""

    @abstractmethod
    def cleanup(self) -> None:
        """Release what `initialize` acquired; called even when `execute` raised."""


class PluginCatalog(Protocol):
    """The installed plugins, by name. Every problem (unknown plugin, one that fails to load or describe
    itself) raises PluginError with one line."""

    def names(self) -> list[str]: ...

    def metadata(self, name: str) -> PluginMetadata: ...

    def plugin(self, name: str) -> type[Plugin]: ...


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
