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
from pathlib import Path
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
    # Dotted parameter paths whose values are secrets, as case-insensitive fnmatch patterns ("auth_token",
    # "headers.authorization", "headers.*token*"): the run masks them, and the variables they use, everywhere.
    secret_params: tuple[str, ...] = ()
    # Parameters the function accepts besides the declared ones (passed through unchanged), e.g. GraphQL
    # variables; None: an undeclared parameter is an error.
    extra_parameters: ParameterDef | None = None


@dataclass
class StepContext:
    """What one attempt of a Function node knows about its run (set as `plugin.context` before initialize)."""

    run_id: int | None = None
    node_id: str = ""
    attempt: int = 1
    runbook_dir: Path | None = None  # relative files (schemas, queries, baselines) are looked up here
    artifact_dir: Path | None = None  # files written here become the run's artifacts after the attempt
    rehearsal: dict[str, Any] | None = None  # the node's fixture entry when rehearsing: touch nothing real
    update_baselines: bool = False  # screenshot steps write their capture as the new baseline
    started_at: float | None = None  # when the run started (wall clock), for `execution.duration`

    def resolve(self, name: str) -> Path:
        """A path from the runbook: absolute as given, else relative to the runbook's folder (or the cwd)."""
        path = Path(name).expanduser()
        if path.is_absolute() or self.runbook_dir is None:
            return path
        return self.runbook_dir / path

    def artifact_path(self, name: str) -> Path:
        """Where to write the artifact `name` (a scratch folder when the run keeps no artifacts)."""
        if self.artifact_dir is None:
            import tempfile

            self.artifact_dir = Path(tempfile.mkdtemp(prefix="playbook-step-"))
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        return self.artifact_dir / name


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
