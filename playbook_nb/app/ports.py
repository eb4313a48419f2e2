"""What the application needs from the outside, as interfaces, and the values that cross them: an executor
runs one prepared node call (`NodeCall`) and says what happened (`AttemptResult`), a clock tells the time and
waits, a plugin is told about its attempt (`StepContext`). The faces compose the real ones
(playbook_nb.adapters.executors.LocalExecutor, SystemClock); rehearsal and replay pass in their own. The
adapters import these types from here; the application imports no executor.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from playbook_nb.domain.fleet import HostResult, SshOptions, Target
from playbook_nb.domain.model import Node

if TYPE_CHECKING:  # app.plugin_api imports StepContext from here
    from playbook_nb.app.plugin_api import PluginCatalog

OutputCallback = Callable[[str, str], None]  # (stream, text), secrets already masked


def _json_safe(value: Any) -> Any:
    """`value` itself when it survives a JSON round trip unchanged in meaning, else its `repr()`."""
    if value is None or isinstance(value, bool | str):  # a command's None, without an encoder
        return value
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return repr(value)
    return value


@dataclass
class AttemptResult:
    ok: bool
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    return_value: Any = None
    error: str | None = None  # one line for the user, e.g. "exit code 2", "ValueError: bad input"
    started_at: float = 0.0  # wall clock, seconds since the epoch
    ended_at: float = 0.0
    truncated: bool = False  # stdout or stderr lost bytes to the capture bound
    interrupted: bool = False  # stopped from outside (Abort, a signal, a storage fault): neither OK nor NOK

    @property
    def duration(self) -> float:
        """Seconds between start and end (0.0 when either is unknown)."""
        if not self.started_at or not self.ended_at:
            return 0.0
        return max(0.0, self.ended_at - self.started_at)

    def json_return_value(self) -> Any:
        """The return value, JSON-safe (else its `repr()`): what `to_dict()` holds."""
        return _json_safe(self.return_value)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (the return value falls back to its `repr()`)."""
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "return_value": self.json_return_value(),
            "error": self.error,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration": self.duration,
            "truncated": self.truncated,
            "interrupted": self.interrupted,
        }


@dataclass
class FleetAttemptResult(AttemptResult):
    """An attempt of a fleet node: the roll-up in the usual fields, every host of the attempt in `hosts`."""

    hosts: list[HostResult] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["hosts"] = [h.to_dict() for h in self.hosts]
        data["counts"] = dict(self.counts)
        return data


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
            self.artifact_dir = Path(tempfile.mkdtemp(prefix="playbook-step-"))
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        return self.artifact_dir / name


@dataclass
class FleetCall:
    """One attempt of a fleet node, planned: the hosts to run now and how. `playbook` set: Ansible runs it
    (`targets` None: its own inventory file); else `command` runs on each of `targets` over SSH."""

    targets: list[Target] | None
    batch: int
    options: SshOptions
    env: dict[str, str]
    done: list[str]  # hosts already OK in an earlier attempt: not run, counted OK
    on_host: Callable[[HostResult], None]  # a host started or ended
    on_output: Callable[[str, str], None]  # (host, text)
    timeout: float | None = None
    command: str | None = None  # SSH: rendered, values shell-quoted
    max_fail: int | None = None  # SSH: start no new host once this many failed
    playbook: str | None = None  # Ansible: the playbook's path
    inventory: str | None = None
    limit: str | None = None
    extra_vars: dict[str, Any] = field(default_factory=dict)


class CommandEnv(Mapping[str, str]):
    """A command's whole environment: this process's environment as it is when the call is built, with
    `extra` on top (later keys win, as in `{**os.environ, **extra}`). Kept in the bytes form the kernel takes
    (`os.environb`'s), so starting a command does not decode and encode again every variable of the driver's
    environment (issue 18.2); it reads as the str mapping it stands for."""

    def __init__(self, extra: Mapping[str, str] | None = None):
        data = getattr(os.environ, "_data", None)
        if os.name == "posix" and isinstance(data, dict):
            self._bytes: dict[bytes, bytes] = dict(data)  # os.environ's own encoded copy
        else:
            self._bytes = {os.fsencode(k): os.fsencode(v) for k, v in os.environ.items()}
        for key, value in (extra or {}).items():
            self._bytes[os.fsencode(str(key))] = os.fsencode(str(value))

    def encoded(self, **extra: str) -> dict[bytes, bytes]:
        """The environment to start the command with (a copy), `extra` on top."""
        spawn = dict(self._bytes)
        for key, value in extra.items():
            spawn[os.fsencode(key)] = os.fsencode(value)
        return spawn

    def __getitem__(self, key: str) -> str:
        return os.fsdecode(self._bytes[os.fsencode(key)])

    def __iter__(self) -> Iterator[str]:
        return (os.fsdecode(key) for key in self._bytes)

    def __len__(self) -> int:
        return len(self._bytes)


@dataclass
class NodeCall:
    """One attempt of one node, with every template rendered: what an executor needs and nothing else."""

    node: Node
    on_output: OutputCallback | None = None
    timeout: float | None = None  # Command and Function
    command: str | None = None  # Command: rendered, values shell-quoted
    env: Mapping[str, str] = field(default_factory=dict)  # Command: the whole environment (a CommandEnv)
    stdin_tty: bool = False  # Command: `interactive = true` in a terminal
    params: dict[str, Any] = field(default_factory=dict)  # Function: rendered, not yet converted
    plugin_config: dict[str, Any] = field(default_factory=dict)  # Function: runbook's merged with the node's
    step_context: StepContext | None = None  # Function: files, rehearsal stand-ins
    code: str | None = None  # Python: the code (a notebook cell may have edited it)
    namespace: dict[str, Any] | None = None  # Python: the kernel namespace it runs in
    # a fleet node (targets, Ansible): its hosts planned and recorded when the call was built; the executor
    # runs them (over SSH, or with ansible-runner) and returns a FleetAttemptResult
    fleet: FleetCall | None = None
    # Abort means stop now: set from any thread, the executor stops the attempt (a command's whole process
    # group; NodeStopped raised in Python code) and returns an `interrupted` result
    cancel: threading.Event | None = None
    idle: Callable[[], None] | None = None  # called while the attempt waits on the driving thread
    on_spawn: Callable[[int], None] | None = None  # Command: its process group id, once it has run 50 ms
    # Command: the watchdog token its processes carry (recorded with the attempt's start)
    process_token: str | None = None


class Executor(Protocol):
    """Runs one prepared node call and says what happened; never raises for a failure of the node itself.
    `plugins`: the plugins its Function nodes may call (app.plugin_api.PluginCatalog), which the session
    checks a runbook's Function nodes against and asks which parameters are secret."""

    plugins: PluginCatalog

    def run(self, call: NodeCall) -> AttemptResult: ...


class Clock(Protocol):
    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock time and real waiting."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()
