"""A run's story in the standard library's logging (logger `playbook_nb.run`), whatever face drives it.

INFO: the run starts, gates are decided, the run ends; DEBUG: every node transition and scheduled retry. Every message goes through the run's redactor (declared secrets and
well-known secret shapes are masked). Where the records go (a terminal, plain stderr, a rotating file) is the
face's business: `playbook_nb.faces.logs.configure_logging`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from playbook_nb.domain.engine import EngineEvent, EventKind

if TYPE_CHECKING:
    from playbook_nb.app.session import RunSession

logger = logging.getLogger("playbook_nb.run")
# A library's manners: nothing printed by logging's last resort where no face configured logging (a kernel's
# stderr is a notebook cell's output).
logging.getLogger("playbook_nb").addHandler(logging.NullHandler())


def attach_run_log(session: RunSession) -> None:
    """Log this session's run: its start now, then every event as it is recorded."""
    redact = session.redactor.redact
    run_id = session.run_id
    logger.info(
        "run %s of %r %s (%s, actor %s)",
        run_id,
        redact(session.runbook.meta.title),
        "resumed" if session.options.trigger == "resume" else "started",
        session.options.trigger,
        redact(session.options.actor or ""),
    )

    def on_event(event: EngineEvent) -> None:
        reason = f" ({redact(event.reason)})" if event.reason else ""
        if event.kind == EventKind.NODE_STATE:
            attempt = f" attempt {event.attempt}" if event.attempt else ""
            logger.debug("run %s: %s %s%s%s", run_id, event.node, event.state, attempt, reason)
        elif event.kind == EventKind.RETRY_SCHEDULED:
            logger.debug("run %s: %s retry scheduled%s", run_id, event.node, reason)
        elif event.kind == EventKind.DECISION:
            data = event.data or {}
            logger.info(
                "run %s: %s on %s by %s",
                run_id,
                data.get("decision"),
                event.node,
                redact(str(data.get("actor"))),
            )
        elif event.kind == EventKind.RUN_STATE and str(event.state) != "RUNNING":
            logger.info("run %s ended %s%s", run_id, event.state, reason)

    session.event_listeners.append(on_event)
