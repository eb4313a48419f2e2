"""The plugin interface, compatible with the seed's `playbook.domain.plugins`.

A plugin is a class registered under the `playbook.plugins` entry point group. For each Function node the
executor creates an instance, calls `initialize(config)`, `execute(function_name, params)` and `cleanup()`.
`params` have been checked and converted against `get_metadata().functions[function_name]` beforehand.

Before `initialize`, the executor sets `plugin.context` to a `StepContext` (which run, node and attempt, where
the runbook lives, a folder for files that become the run's artifacts, and the fixture stand-in during a
rehearsal). Plugins that need none of it ignore it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from playbook_nb.app.ports import StepContext  # the attempt a plugin is told about, defined with the ports


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
