"""Function nodes: one call of a plugin function, in a worker thread so a timeout or an Abort can stop it."""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from playbook_nb.adapters.executors.capture import (
    DEFAULT_MAX_OUTPUT_BYTES,
    OutputCallback,
    capture_thread_output,
)
from playbook_nb.adapters.executors.stopper import NodeStopped, Stopper
from playbook_nb.adapters.plugins.registry import check_params, expand_env, get_plugin, plugin_metadata
from playbook_nb.app.ports import AttemptResult, StepContext
from playbook_nb.domain.errors import PlaybookError

STOP_GRACE = 2.0  # seconds a stopped plugin has to return before it is reported as still running


class _Either:
    """Set when either event is set (what `Stopper` asks of a cancel event)."""

    def __init__(self, *events: threading.Event | None):
        self.events = [e for e in events if e is not None]

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)


def describe_exception(exc: BaseException) -> str:
    """One line for the user: the message of a PlaybookError, else "<ExceptionType>: message"."""
    if isinstance(exc, PlaybookError):
        return str(exc)
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def run_function(
    plugin_name: str,
    function: str,
    params: Mapping[str, Any],
    *,
    plugin_config: Mapping[str, Any],
    timeout: float | None = None,
    on_output: OutputCallback | None = None,
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
    cancel: threading.Event | None = None,
    idle: Callable[[], None] | None = None,
    context: StepContext | None = None,
) -> AttemptResult:
    """Call `function` of plugin `plugin_name` with `params` (rendered, not yet converted).

    `plugin_config` is the merged configuration (see `merge_plugin_config`); its `${VAR}` references are
    expanded here. The plugin is instantiated, initialized, executed and cleaned up in a worker thread; what
    it prints is captured into `stdout` / `stderr` and shown (to `on_output` line by line when given, else to
    the original streams). Unknown plugin or function, bad parameters, a missing environment variable or an
    exception all give `ok=False` with a one-line `error`; an unexpected exception's traceback goes to
    `stderr` (unless the exception class sets `show_traceback = False`, as deliberate failures do).
    On timeout, or when `cancel` is set (Abort), `NodeStopped` is raised in the plugin's code (see
    `stopper`); cleanup() still runs. A plugin blocked in C that does not return within STOP_GRACE seconds
    is reported as such and left to finish in the background (its output then goes to the original streams).
    A KeyboardInterrupt while waiting stops the plugin the same way, then propagates. `idle()` is called
    on this thread about every 50 ms while the plugin runs. `context` is set as the plugin's `context`
    before `initialize` (a default StepContext when none is given).
    """
    started = time.time()

    def failed(error: str, stderr: str = "") -> AttemptResult:
        return AttemptResult(ok=False, error=error, stderr=stderr, started_at=started, ended_at=time.time())

    try:
        plugin_cls = get_plugin(plugin_name)
        kwargs = check_params(plugin_metadata(plugin_name), function, params)
        config = expand_env(dict(plugin_config or {}), where=f"plugin '{plugin_name}', plugin_config")
    except PlaybookError as err:
        return failed(str(err))

    outcome: dict[str, Any] = {}
    ready = threading.Event()
    interrupted = threading.Event()  # a KeyboardInterrupt reached the waiting thread
    stopper = Stopper(timeout, _Either(cancel, interrupted))  # type: ignore[arg-type]

    def work() -> None:
        try:
            with capture_thread_output(on_output, max_output_bytes) as capture:
                outcome["capture"] = capture
                stopper.ident = threading.get_ident()
                ready.set()
                try:
                    with stopper:
                        plugin = plugin_cls()
                        plugin.context = context or StepContext()
                        plugin.initialize(config)
                        try:
                            outcome["value"] = plugin.execute(function, kwargs)
                        finally:
                            plugin.cleanup()
                except NodeStopped:
                    outcome["stopped"] = stopper.reason or "cancelled"
                except BaseException as exc:  # every failure of plugin code is the node's failure
                    outcome["error"] = exc
                    if not isinstance(exc, PlaybookError) and getattr(exc, "show_traceback", True):
                        tb = exc.__traceback__.tb_next if exc.__traceback__ else None  # not our frame
                        text = "".join(traceback.format_exception(type(exc), exc, tb))
                        print(text, end="", file=sys.stderr)
        except NodeStopped:  # delivered just as the stopper was leaving
            outcome["stopped"] = stopper.reason or "cancelled"
        finally:
            ready.set()

    worker = threading.Thread(target=work, name=f"playbook-function-{plugin_name}.{function}", daemon=True)
    worker.start()
    try:
        _wait(worker, stopper, idle)
    except KeyboardInterrupt:
        interrupted.set()
        _wait(worker, stopper, None)
        raise
    finally:
        ready.wait()
        capture = outcome["capture"]
        # A worker still running (blocked in C) keeps running; its later output no longer belongs here.
        capture.close()
    still_running = worker.is_alive()
    ended = time.time()

    reason = stopper.reason if (still_running or "stopped" in outcome) else None
    if reason == "timeout":
        error: str | None = f"Function timed out after {timeout:g} seconds"
    elif reason is not None:
        error = "interrupted"
    elif "error" in outcome:
        error = describe_exception(outcome["error"])
    else:
        error = None
    if still_running and error:
        error += f" (the plugin did not stop within {STOP_GRACE:g}s; it keeps running in the background)"
    return AttemptResult(
        ok=error is None,
        stdout=capture.text("stdout"),
        stderr=capture.text("stderr"),
        # A failing plugin may attach what it found (the exception's `result`, e.g. a screenshot diff's figures).
        return_value=getattr(outcome.get("error"), "result", None) if error else outcome.get("value"),
        error=error,
        started_at=started,
        ended_at=ended,
        truncated=capture.truncated,
        interrupted=reason == "cancelled",
    )


def _wait(worker: threading.Thread, stopper: Stopper, idle: Callable[[], None] | None) -> None:
    """Until the worker ends, or STOP_GRACE seconds after the stopper fired."""
    stopped_at = None
    while worker.is_alive():
        worker.join(0.05)
        if idle is not None and worker.is_alive():
            idle()
        if stopper.reason is not None:
            stopped_at = stopped_at or time.monotonic()
            if time.monotonic() - stopped_at >= STOP_GRACE:
                return
