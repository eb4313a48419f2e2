"""Fleet steps: run one command on many hosts, `batch` at a time (rolling: a host starts as soon as another
ends), starting no new host once `max_fail` have failed, each host under its own timeout.

The hosts run on an asyncio loop in a thread of its own (a Jupyter kernel already runs a loop on its main
thread). Progress comes back through a queue and reaches the callbacks on the thread that called
`run_fleet`, as the command executor does for its output lines. A KeyboardInterrupt (kernel interrupt,
Ctrl-C) or any exception there cancels every host: their connections close, which hangs their remote
commands up; then it is raised again.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from playbook_nb.adapters.executors.result import AttemptResult
from playbook_nb.adapters.executors.ssh import SshOptions, run_on_host
from playbook_nb.domain.fleet import (
    HOST_OUTPUT_BYTES,
    NOT_STARTED,
    HostResult,
    HostState,
    Target,
    roll_up,
)

HostCallback = Callable[[HostResult], None]  # a host started (state RUNNING) or ended (final state)
HostOutputCallback = Callable[[str, str], None]  # (host, text)


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


_DONE = object()


def run_fleet(  # noqa: C901
    command: str,
    targets: Sequence[Target],
    *,
    batch: int,
    max_fail: int | None = None,
    timeout: float | None = None,
    options: SshOptions | None = None,
    env: Mapping[str, str] | None = None,
    host_env: Callable[[Target], Mapping[str, str]] | None = None,
    done: Sequence[str] = (),
    on_host: HostCallback | None = None,
    on_output: HostOutputCallback | None = None,
    max_output_bytes: int = HOST_OUTPUT_BYTES,
) -> FleetAttemptResult:
    """Run `command` on `targets` over SSH and roll the hosts up into one attempt result.

    `done`: hosts of the inventory already OK in an earlier attempt (not run; they count as OK).
    `host_env(target)`: extra environment for one host (PLAYBOOK_HOST is always set).
    """
    options = options or SshOptions()
    events: queue.Queue = queue.Queue()
    started = time.time()
    results: dict[str, HostResult] = {}
    state: dict[str, Any] = {"loop": None, "main": None}

    async def one(target: Target, gate: asyncio.Semaphore, failures: list[int]) -> None:
        async with gate:
            if max_fail is not None and failures[0] >= max_fail:
                result = HostResult(host=target.text, state=HostState.SKIPPED, error=NOT_STARTED)
                events.put(("end", result))
                return
            events.put(
                ("start", HostResult(host=target.text, state=HostState.RUNNING, started_at=time.time()))
            )
            environment = {
                **(env or {}),
                "PLAYBOOK_HOST": target.text,
                **(host_env(target) if host_env else {}),
            }
            result = await run_on_host(
                target,
                command,
                options=options,
                env=environment,
                timeout=timeout,
                on_output=lambda text, host=target.text: events.put(("output", host, text)),
                max_output_bytes=max_output_bytes,
            )
            if result.state is not HostState.OK:
                failures[0] += 1
            events.put(("end", result))

    async def main() -> None:
        gate = asyncio.Semaphore(max(1, int(batch)))
        failures = [0]
        tasks = [asyncio.create_task(one(t, gate, failures)) for t in targets]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def thread_main() -> None:
        loop = asyncio.new_event_loop()
        state["loop"] = loop
        try:
            task = loop.create_task(main())
            state["main"] = task
            loop.run_until_complete(task)
        except BaseException as err:  # reported to the caller's thread
            if not isinstance(err, asyncio.CancelledError):
                events.put(("error", err))
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            events.put(_DONE)

    worker = threading.Thread(target=thread_main, name="playbook-fleet", daemon=True)
    worker.start()
    error: BaseException | None = None
    try:
        while True:
            item = events.get()
            if item is _DONE:
                break
            kind = item[0]
            if kind == "start":
                if on_host is not None:
                    _safe(on_host, item[1])
            elif kind == "output":
                if on_output is not None:
                    _safe(on_output, item[1], item[2])
            elif kind == "end":
                results[item[1].host] = item[1]
                if on_host is not None:
                    _safe(on_host, item[1])
            elif kind == "error":
                error = item[1]
    except BaseException:
        _cancel(state)
        worker.join(10)
        raise
    worker.join()
    if error is not None:
        raise error

    ordered = [
        results.get(t.text) or HostResult(host=t.text, state=HostState.SKIPPED, error=NOT_STARTED)
        for t in targets
    ]
    outcome = roll_up(ordered, done=done, max_fail=max_fail)
    return FleetAttemptResult(
        ok=outcome.ok,
        exit_code=0 if outcome.ok else 1,
        stdout=_summary_text(ordered, done),
        error=outcome.error,
        started_at=started,
        ended_at=time.time(),
        hosts=ordered,
        counts=outcome.counts,
    )


def _cancel(state: dict[str, Any]) -> None:
    loop, task = state.get("loop"), state.get("main")
    if loop is not None and task is not None:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(task.cancel)


def _safe(callback: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(Exception):  # a broken progress view must not break the attempt
        callback(*args)


def _summary_text(results: Sequence[HostResult], done: Sequence[str]) -> str:
    """The attempt's stdout: one line per host, so a plain attempt view shows the fleet at a glance."""
    lines = [f"{host}: OK (earlier attempt)" for host in done]
    for r in results:
        detail = f" ({r.error})" if r.error else ""
        lines.append(f"{r.host}: {r.state}{detail}")
    return "\n".join(lines) + ("\n" if lines else "")
