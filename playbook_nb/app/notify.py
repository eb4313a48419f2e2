"""Notifications (issue 16.5): the right people are told when a gate waits, a node fails, a run ends.

Configured in `[notify]` (see `app.config`): which events, the Jupyter server's address for links, and one
entry per target (`webhook`, `slack`, or a notifier registered in the `playbook.notifiers` entry-point group).
`Notifications` listens to a session's engine events and hands each message to a worker thread: the run never
waits for a delivery and never fails for one. A failing delivery is logged (the target's address without its
secret path) and retried a bounded number of times with a growing pause, then given up. Every message is
masked with the run's secret values before it leaves.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from playbook_nb.domain.engine import EngineEvent
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.redact import Redactor

log = logging.getLogger("playbook_nb.notify")

EVENTS = ("gate_waiting", "node_failed", "run_finished")
FINAL = ("OK", "NOK", "ABORTED")


class NotifyError(PlaybookError):
    """A `[notify]` target that cannot be built (unknown notifier, bad options)."""


# The port to the notifiers: builds the target `kind` with its options (ValueError naming the problem); the
# faces pass adapters.notifiers.registry.build_notifier. A notifier has `send(message: dict) -> None`.
NotifierFactory = Callable[[str, dict[str, Any]], Any]


@dataclass(frozen=True)
class NotifySettings:
    events: tuple[str, ...] = EVENTS
    link: str | None = None  # the Jupyter server's base URL, for links to a run
    retries: int = 3  # deliveries tried again after a failure, per message and target
    timeout: float = 5.0  # seconds per delivery
    flush: float = 5.0  # seconds the end of a run waits, at most, for messages still being sent
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> options
    build: NotifierFactory | None = (
        None  # how a target is built (None: `notifiers` are given to Notifications)
    )

    @classmethod
    def from_table(cls, table: dict[str, Any] | None, build: NotifierFactory) -> NotifySettings | None:
        """From the checked `[notify]` table of the configuration (`app.config`), or None without targets."""
        if not table or not table.get("targets"):
            return None
        return cls(
            events=tuple(table.get("events", EVENTS)),
            link=table.get("link"),
            retries=int(table.get("retries", 3)),
            timeout=float(table.get("timeout", 5.0)),
            targets=dict(table["targets"]),
            build=build,
        )


@dataclass
class RunFacts:
    """What a message says about its run (read once when the session starts)."""

    run_id: int
    number: int | None
    workflow: str
    title: str
    actor: str | None
    prompts: dict[str, str]  # gate -> its prompt, rendered (secrets masked by the message's redactor)


class Notifications:
    """Listens to one session's engine events; sends on a worker thread (see the module docstring)."""

    def __init__(
        self,
        settings: NotifySettings,
        facts: RunFacts,
        redactor: Redactor,
        *,
        notifiers: dict[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self.facts = facts
        self.redactor = redactor
        self.sleep = sleep
        if notifiers is None:
            if settings.build is None:
                raise NotifyError("[notify]: no notifier factory given to build its targets")
            notifiers = {}
            for kind, options in settings.targets.items():
                try:
                    notifiers[kind] = settings.build(kind, {"timeout": settings.timeout, **options})
                except ValueError as err:
                    raise NotifyError(f"[notify] {kind}: {err}") from None
        self.notifiers = notifiers
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._told: set[tuple[str, int | None]] = set()  # (node, attempt) whose failure was told
        self.sent: list[tuple[str, str]] = []  # (target, event) delivered, for the record of this process
        self.failed: list[dict[str, Any]] = []  # deliveries given up: target, event, attempts, error (masked)
        self.unsent = 0  # messages still queued or in flight when `close` stopped waiting
        self._open = 0  # messages submitted and not yet through every target
        self._lock = threading.Lock()

    # -- what a run's events say -------------------------------------------------------------------
    def on_event(self, event: EngineEvent) -> None:
        message = self.message_for(event)
        if message is not None and message["event"] in self.settings.events:
            self.submit(message)

    def message_for(self, event: EngineEvent) -> dict[str, Any] | None:
        facts = self.facts
        data = event.data or {}
        node_event = event.kind == "node_state" and bool(event.node)
        if node_event and event.state == "WAITING" and data.get("pending") == "gate":
            prompt = facts.prompts.get(event.node or "", "")
            return self._message(
                "gate_waiting",
                event.node,
                event.state,
                f"Run {facts.run_id} '{facts.title}' waits for approval at '{event.node}'",
                waiting_for=f"approval of gate '{event.node}': {prompt}",
                approve=f"playbook-nb approve {facts.run_id} {event.node}",
            )
        failed = bool(data.get("failed") and data.get("error")) and event.state in (
            "NOK",
            "SKIPPED",
            "WAITING",
        )
        if node_event and failed and (event.node, event.attempt) not in self._told:
            self._told.add((event.node or "", event.attempt))  # one message per failed attempt
            then = {
                "NOK": "",
                "SKIPPED": f"; {event.reason}" if event.reason else "",
                "WAITING": "; it waits for a decision: Retry, Skip or Abort",
            }[str(event.state)]
            return self._message(
                "node_failed",
                event.node,
                event.state,
                f"Run {facts.run_id} '{facts.title}': '{event.node}' failed ({data['error']}){then}",
                error=data["error"],
                reason=event.reason,
                **({"waiting_for": "a decision after its failure"} if event.state == "WAITING" else {}),
            )
        if event.kind == "run_state" and event.state in FINAL:
            return self._message(
                "run_finished",
                None,
                event.state,
                f"Run {facts.run_id} '{facts.title}' ended {event.state}"
                + (f" ({event.reason})" if event.reason and event.state != "OK" else ""),
                reason=event.reason,
            )
        return None

    def _message(self, kind: str, node: str | None, state: str | None, summary: str, **more: Any) -> dict:
        facts = self.facts
        link = self.settings.link
        message = {
            "event": kind,
            "summary": summary,
            "run_id": facts.run_id,
            "run_number": facts.number,
            "workflow": facts.workflow,
            "title": facts.title,
            "started_by": facts.actor,
            "node": node,
            "state": state,
            "link": f"{link.rstrip('/')}/playbook-nb/api/runs/{facts.run_id}/report" if link else None,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            **more,
        }
        return self.redactor.redact_obj(message)

    # -- delivery, off the run's thread ------------------------------------------------------------
    def submit(self, message: dict[str, Any]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="playbook-nb-notify", daemon=True)
            self._thread.start()
        with self._lock:
            self._open += 1
        self._queue.put(message)

    def close(self) -> None:
        """At the end of the run: wait a bounded time for the messages still queued, then let them go
        (`unsent` says how many were left; `failed` lists the deliveries given up)."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout=self.settings.flush)
        self._thread = None
        with self._lock:
            self.unsent = self._open

    def problems(self) -> list[dict[str, Any]]:
        """What the run's record says about notifications that did not arrive (after `close`)."""
        found = [dict(f) for f in self.failed]
        if self.unsent:
            found.append(
                {
                    "target": ", ".join(self.notifiers),
                    "messages": self.unsent,
                    "error": f"still being sent when the run ended ({self.settings.flush:g} s waited)",
                }
            )
        return found

    def _work(self) -> None:
        while True:
            message = self._queue.get()
            if message is None:
                return
            for name, notifier in self.notifiers.items():
                self._deliver(name, notifier, message)
            with self._lock:
                self._open -= 1

    def _deliver(self, name: str, notifier: Any, message: dict[str, Any]) -> None:
        for attempt in range(1, self.settings.retries + 2):
            try:
                notifier.send(message)
                self.sent.append((name, message["event"]))
                return
            except Exception as err:  # whatever a notifier raises, the run goes on
                text = self.redactor.redact(str(err) or type(err).__name__)
                last = attempt > self.settings.retries
                log.warning(
                    "notifier %s: %s of run %s not delivered (attempt %d of %d): %s%s",
                    name, message["event"], message["run_id"], attempt, self.settings.retries + 1, text,
                    "; giving up" if last else "",
                )  # fmt: skip
                if last:
                    self.failed.append(
                        {"target": name, "event": message["event"], "attempts": attempt, "error": text}
                    )
                    return
                self.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
