"""Fleet steps: run one command on many hosts, `batch` at a time (rolling: a host starts as soon as another
ends), starting no new host once `max_fail` have failed, each host under its own timeout.

The hosts run on an asyncio loop in a thread of its own (`relay.run_loop_in_thread`: a Jupyter kernel
already runs a loop on its main thread); progress reaches the callbacks on the thread that called
`run_fleet`. A KeyboardInterrupt (kernel interrupt, Ctrl-C) there cancels every host: their connections
close, which hangs their remote commands up; then it is raised again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from playbook_nb.adapters.executors.relay import Put, run_loop_in_thread
from playbook_nb.adapters.executors.ssh import run_on_host
from playbook_nb.app.ports import FleetAttemptResult
from playbook_nb.domain.fleet import (
    HOST_OUTPUT_BYTES,
    NOT_STARTED,
    HostResult,
    HostState,
    SshOptions,
    Target,
    roll_up,
)

HostCallback = Callable[[HostResult], None]  # a host started (state RUNNING) or ended (final state)
HostOutputCallback = Callable[[str, str], None]  # (host, text)


def run_fleet(
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
    started = time.time()
    results: dict[str, HostResult] = {}

    async def one(put: Put, target: Target, gate: asyncio.Semaphore, failures: list[int]) -> None:
        async with gate:
            if max_fail is not None and failures[0] >= max_fail:
                put(("end", HostResult(host=target.text, state=HostState.SKIPPED, error=NOT_STARTED)))
                return
            put(("start", HostResult(host=target.text, state=HostState.RUNNING, started_at=time.time())))
            environment = {
                **(env or {}),
                "PLAYBOOK_HOST": target.text,
                **(host_env(target) if host_env else {}),
            }

            def on_output(text: str, host: str = target.text) -> None:
                put(("output", host, text))

            result = await run_on_host(
                target,
                command,
                options=options,
                env=environment,
                timeout=timeout,
                on_output=on_output,
                max_output_bytes=max_output_bytes,
            )
            if result.state is not HostState.OK:
                failures[0] += 1
            put(("end", result))

    async def main(put: Put) -> None:
        gate = asyncio.Semaphore(max(1, int(batch)))
        failures = [0]
        tasks = [asyncio.create_task(one(put, t, gate, failures)) for t in targets]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def handle(item: tuple) -> None:
        kind = item[0]
        if kind == "output":
            if on_output is not None:
                _safe(on_output, item[1], item[2])
            return
        if kind == "end":
            results[item[1].host] = item[1]
        if on_host is not None:
            _safe(on_host, item[1])

    run_loop_in_thread(main, handle, name="playbook-fleet")

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
