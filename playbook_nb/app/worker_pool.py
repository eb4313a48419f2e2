"""The worker pool for parallel branches: node attempts whose executor call runs in a worker thread while the
engine and the store stay on the driving thread. The pool only runs calls and hands back their results.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from playbook_nb.app.ports import AttemptResult, Clock
from playbook_nb.domain.errors import PlaybookError


class WorkerPool:
    def __init__(self, size: int, clock: Clock):
        self.size = max(1, int(size))
        self.clock = clock
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: dict[str, tuple[int, Future[AttemptResult]]] = {}

    def __contains__(self, node_id: str) -> bool:
        return node_id in self._inflight

    def __len__(self) -> int:
        return len(self._inflight)

    @property
    def full(self) -> bool:
        return len(self._inflight) >= self.size

    def submit(
        self, node_id: str, attempt: int, call: Callable[[], AttemptResult], *, delay: float = 0.0
    ) -> None:
        """Run `call` in a worker after `delay` seconds (a retry's backoff). A PlaybookError or a bug in the
        executor becomes a failed attempt: it must not lose the attempt."""
        started = self.clock.time() + delay
        clock = self.clock

        def work() -> AttemptResult:
            if delay:
                clock.sleep(delay)
            try:
                return call()
            except PlaybookError as err:
                return AttemptResult(ok=False, error=str(err), started_at=started, ended_at=clock.time())
            except Exception as err:
                return AttemptResult(
                    ok=False, error=f"{type(err).__name__}: {err}", started_at=started, ended_at=clock.time()
                )

        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="playbook-node")
        self._inflight[node_id] = (attempt, self._pool.submit(work))

    def done(self) -> list[str]:
        """Nodes whose attempt has ended (not yet collected)."""
        return [node_id for node_id, (_, future) in self._inflight.items() if future.done()]

    def wait_any(self, timeout: float | None = None) -> list[str]:
        """Block until at least one attempt has ended (or `timeout` seconds); the nodes whose attempt has."""
        futures = [future for _, future in self._inflight.values()]
        finished, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        return [node_id for node_id, (_, future) in self._inflight.items() if future in finished]

    def collect(self, node_id: str, *, wait: bool) -> tuple[int, AttemptResult]:
        """(attempt, result) of a node's attempt, waiting for it when `wait`."""
        attempt, future = self._inflight[node_id]
        if not wait and not future.done():
            raise RuntimeError(f"'{node_id}' is still running")
        result = future.result()
        del self._inflight[node_id]
        return attempt, result

    def first(self) -> str | None:
        return next(iter(self._inflight), None)

    def shutdown(self, *, cancel: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=cancel)
            self._pool = None
