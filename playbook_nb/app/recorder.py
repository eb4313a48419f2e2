"""The recorder: everything a run writes to its record, as it happens (so a killed process loses at most the
attempt in flight). Engine events with the snapshot in one transaction per transition, attempts, step outputs,
and the masking of secrets on the way in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playbook_nb.adapters.store import Store
from playbook_nb.app.ports import AttemptResult, Clock
from playbook_nb.domain.attempt_ran import ATTEMPT_RAN_EVENT
from playbook_nb.domain.engine import Engine, EngineEvent
from playbook_nb.domain.model import Node
from playbook_nb.domain.outputs import OUTPUT_EVENT, OutputError, extract_outputs
from playbook_nb.domain.redact import Redactor

EventListener = Callable[[EngineEvent], None]


class Recorder:
    """Writes one run's record. Every write happens on the thread that drives the engine."""

    def __init__(self, store: Store, run_id: int, redactor: Redactor, clock: Clock):
        self.store = store
        self.run_id = run_id
        self.redactor = redactor
        self.clock = clock
        self.event_listeners: list[EventListener] = []
        self._saved_engine: Engine | None = None  # the engine whose whole snapshot the store holds
        # compare-and-set (issue 13): every transition is written only if the run is still this session's
        # (owner token) at the version it last wrote; a watch-only view writes nothing
        self.owner_token: str | None = None
        self.version = 0
        self.watch_only = False

    # -- engine transitions ------------------------------------------------------------------
    def save_whole(self, engine: Engine) -> None:
        """Save the engine's whole snapshot (a new run's first): the flushes after it save what changed."""
        self.store.save_snapshot(self.run_id, engine.snapshot())
        self._saved_engine = engine

    def flush(self, engine: Engine) -> None:
        """Write every engine event to the store as it happened, then tell the listeners. The events of one
        flush describe one transition: they and the snapshot are written in one transaction."""
        events = engine.pop_events()
        if not events or self.watch_only:
            return
        # A node's snapshot entry changes only with an event naming it: after the first whole save, a flush
        # saves the run's own fields and the nodes its events name (O(changed) rows, not the whole snapshot).
        partial = self._saved_engine is engine
        snapshot = engine.snapshot(node_ids={e.node for e in events if e.node} if partial else None)
        self._saved_engine = None  # until this write commits: after a failed one, the next saves the whole
        with self.store.batch():
            version = self.store.advance(self.run_id, token=self.owner_token, version=self.version)
            for event in events:
                self._write_event(engine, event)
            self.store.save_snapshot(self.run_id, snapshot, partial=partial)
        self._saved_engine = engine
        self.version = version
        for event in events:
            for listener in self.event_listeners:
                listener(event)

    def _write_event(self, engine: Engine, event: EngineEvent) -> None:
        reason = self.redactor.redact(event.reason) if event.reason else event.reason
        payload = self.redactor.redact_obj({**event.data, "state": event.state, "reason": reason})
        if event.kind == "node_state" and event.node:
            self.store.set_node_state(
                self.run_id,
                event.node,
                str(event.state),
                reason=reason,
                attempts=engine.attempts(event.node),
                failed=engine.has_failed(event.node),
            )
        elif event.kind == "decision" and event.node:
            self.store.record_decision(
                self.run_id,
                event.node,
                str(event.data.get("decision")),
                event.data.get("actor"),
                event.data.get("comment"),
                self.clock.time(),
                source=event.data.get("source"),
            )
        elif event.kind == "run_state":
            final = event.state != "RUNNING"
            self.store.set_run_status(
                self.run_id, str(event.state), reason=reason, ended_at=self.clock.time() if final else None
            )
        self.store.append_event(
            self.run_id, event.kind, node_id=event.node, attempt=event.attempt, payload=payload
        )

    # -- attempts ----------------------------------------------------------------------------
    def retry_wait(self, node_id: str, seconds: float) -> None:
        self.store.append_event(self.run_id, "retry_wait", node_id=node_id, payload={"seconds": seconds})

    def attempt_started(
        self,
        node_id: str,
        attempt: int,
        started_at: float,
        *,
        process_token: str | None = None,
        host: str | None = None,
    ) -> None:
        """A RUNNING attempt; a command's with the token its processes will carry and the host they run on."""
        self.store.start_attempt(
            self.run_id,
            node_id,
            attempt,
            started_at,
            token=self.owner_token,
            process_token=process_token,
            host=host,
        )

    def attempt_ran(self, node_id: str, attempt: int, ran: dict[str, Any]) -> None:
        """What the attempt runs (rendered command, plugin parameters or code; secrets already masked), in the
        hash-chained events: `show`, the HTML export and `verify` read this."""
        if ran:
            self.store.append_event(
                self.run_id, ATTEMPT_RAN_EVENT, node_id=node_id, attempt=attempt, payload={"ran": ran}
            )

    def attempt_finished(self, node_id: str, attempt: int, result: AttemptResult) -> AttemptResult:
        """Mask the result's secrets and write the attempt; returns the masked result (what faces show)."""
        result = self.redact_result(result)
        self.store.finish_attempt(
            self.run_id,
            node_id,
            attempt,
            status="OK" if result.ok else "NOK",
            ended_at=result.ended_at or self.clock.time(),
            exit_code=result.exit_code,
            stdout=result.stdout,
            stderr=result.stderr,
            result=result.json_return_value(),
            error=result.error,
            token=self.owner_token,
        )
        return result

    def attempt_interrupted(self, node_id: str, attempt: int, result: AttemptResult) -> AttemptResult:
        """An attempt stopped from outside (Abort, a signal, a closed pipe, a storage fault): INTERRUPTED,
        with what it printed so far; `result.error` says why."""
        result = self.redact_result(result)
        self.store.finish_attempt(
            self.run_id, node_id, attempt, status="INTERRUPTED", ended_at=result.ended_at or self.clock.time(),
            exit_code=result.exit_code, stdout=result.stdout, stderr=result.stderr, result=None,
            error=result.error, token=self.owner_token,
        )  # fmt: skip
        return result

    def outputs(self, node_id: str, attempt: int, outputs: dict[str, Any]) -> None:
        """A successful attempt's step outputs, secrets masked, as an `outputs` event."""
        self.store.append_event(
            self.run_id,
            OUTPUT_EVENT,
            node_id=node_id,
            attempt=attempt,
            payload={"outputs": self.redactor.redact_obj(outputs)},
        )

    def take_outputs(
        self, node: Node, attempt: int, result: AttemptResult, namespace: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The declared outputs of a successful attempt, recorded masked; the real values are returned for the
        run's templates. A declared output that cannot be produced fails the attempt (None)."""
        if not result.ok or node.outputs is None:
            return None
        try:
            given = getattr(result, "outputs", None)  # a rehearsal fixture may give them directly
            outputs = dict(given) if given is not None else extract_outputs(node, result, namespace)
        except OutputError as err:
            result.ok = False
            result.error = str(err)
            return None
        self.outputs(node.id, attempt, outputs)
        return outputs

    def redact_result(self, result: AttemptResult) -> AttemptResult:
        if not self.redactor:
            return result
        result.stdout = self.redactor.redact(result.stdout)
        result.stderr = self.redactor.redact(result.stderr)
        result.error = self.redactor.redact(result.error) if result.error else result.error
        result.return_value = self.redactor.redact_obj(result.return_value)
        return result

    # -- run -----------------------------------------------------------------------------------
    def event(self, kind: str, payload: dict[str, Any]) -> None:
        self.store.append_event(self.run_id, kind, payload=payload)

    def run_reason(self) -> str:
        return self.store.get_run(self.run_id).status_reason or "no reason recorded"


def load_outputs(store: Store, run_id: int) -> dict[str, dict[str, Any]]:
    """{node id: outputs} of a recorded run, from its `outputs` events (the last one per node wins).
    Values are as recorded: secrets masked."""
    outputs: dict[str, dict[str, Any]] = {}
    for event in store.events(run_id):
        if event.kind == OUTPUT_EVENT and event.node_id:
            payload = event.payload or {}
            outputs[event.node_id] = dict(payload.get("outputs") or {})
    return outputs
