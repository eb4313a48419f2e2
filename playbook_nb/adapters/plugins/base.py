"""The plugin interface, compatible with the seed's `playbook.domain.plugins`.

A plugin is a class registered under the `playbook.plugins` entry point group. For each Function node the
executor creates an instance, calls `initialize(config)`, `execute(function_name, params)` and `cleanup()`.
`params` have been checked and converted against `get_metadata().functions[function_name]` beforehand.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


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


@dataclass
class PluginMetadata:
    name: str
    version: str
    author: str
    description: str
    functions: dict[str, FunctionSignature] = field(default_factory=dict)


class Plugin(ABC):
    """Base class of every plugin. Instances are created with no arguments."""

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
