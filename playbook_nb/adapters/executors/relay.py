"""Work in a thread of its own, its progress handled on the caller's thread (the fleet and Ansible executors).

A fleet attempt runs its hosts on an asyncio loop (a Jupyter kernel already runs one on its main thread), an
Ansible attempt runs ansible-runner; both report progress that the session's listeners must receive on the
thread that runs the attempt, as the command executor does for its output lines.

    relay(work, handle, cancel=..., name="playbook-fleet")

`work(put)` runs in the worker thread and calls `put(item)` for each piece of progress; `handle(item)` gets
them, in order, on the calling thread. An exception of `work` is raised again on the calling thread once the
worker has ended. A KeyboardInterrupt (kernel interrupt, Ctrl-C) or any exception in `handle` calls `cancel()`,
waits up to `cancel_wait` seconds for the worker, and is raised again.

`run_loop_in_thread(main, handle, name=...)` is the asyncio form: `main(put)` is a coroutine function run on a
new event loop of the worker thread; cancelling cancels its task (connections close, remote commands hang up).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any

Put = Callable[[Any], None]

_DONE = object()


def relay(
    work: Callable[[Put], None],
    handle: Callable[[Any], None],
    *,
    cancel: Callable[[], None],
    name: str,
    cancel_wait: float = 10.0,
) -> None:
    items: queue.Queue = queue.Queue()
    failure: list[BaseException] = []

    def thread_main() -> None:
        try:
            work(items.put)
        except BaseException as err:  # raised again on the calling thread
            failure.append(err)
        finally:
            items.put(_DONE)

    worker = threading.Thread(target=thread_main, name=name, daemon=True)
    worker.start()
    try:
        while (item := items.get()) is not _DONE:
            handle(item)
    except BaseException:
        cancel()
        worker.join(cancel_wait)
        raise
    worker.join()
    if failure:
        raise failure[0]


def run_loop_in_thread(
    main: Callable[[Put], Coroutine[Any, Any, None]],
    handle: Callable[[Any], None],
    *,
    name: str,
    cancel_wait: float = 10.0,
) -> None:
    running: dict[str, Any] = {}
    lock = threading.Lock()

    def work(put: Put) -> None:
        loop = asyncio.new_event_loop()
        try:
            with lock:
                task: asyncio.Task[None] = loop.create_task(main(put))
                running["loop"], running["task"] = loop, task
                if running.get("cancelled"):  # cancelled before the loop was there
                    task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(task)
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            with lock:
                running.pop("loop", None)
            loop.close()

    def cancel() -> None:
        with lock:
            running["cancelled"] = True
            loop, task = running.get("loop"), running.get("task")
            if loop is not None and task is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closing
                    loop.call_soon_threadsafe(task.cancel)

    relay(work, handle, cancel=cancel, name=name, cancel_wait=cancel_wait)
