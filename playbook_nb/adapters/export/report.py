"""The HTML post-mortem report of one run: one self-contained file (inline CSS and SVG, no script, no network).

Everything comes from the run index (which holds secrets masked already) and is passed once more through a
`Redactor` when secret values are known, then rendered by the autoescaping environment of our own templates.

    html = render_report(store, run_id, redactor=Redactor([...]))
"""

from __future__ import annotations

import base64
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from playbook_nb.adapters.export.dag_render import render_internal, to_svg
from playbook_nb.adapters.store import AttemptRow, Run, Store
from playbook_nb.constants import ARTIFACT_EVENT, VERSION
from playbook_nb.domain import templating
from playbook_nb.domain.attempt_ran import ran_by_attempt, ran_text
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.model import Node, NodeType, Runbook
from playbook_nb.domain.outcome import handled_failures, status_label
from playbook_nb.domain.redact import Redactor
from playbook_nb.domain.validation import parse_runbook
from playbook_nb.presentation import AWAITING_RING, STATE_LOOKS, look, run_look_state

TEMPLATE = "report.html.j2"
MIN_BAR_PERCENT = 0.6
MAX_INLINE_IMAGE = 8 * 1024 * 1024  # bytes: a larger image artifact is linked, not embedded


class ExportError(PlaybookError):
    """The export cannot be made as asked (no notebook for the run, unwritable output, secret found)."""


# ---- small formatters -------------------------------------------------------------------------------------


def fmt_time(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


# ---- node definitions -------------------------------------------------------------------------------------


def node_definition(node: Node, ran: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """(label, text) rows describing what the node does: its definition, and what its last attempt ran as
    the record keeps it (`ran`, secrets masked) where that differs; never a re-rendering with the run's
    variables, which may have changed since (issue 13)."""
    rows: list[tuple[str, str]] = [("type", str(node.type))]
    if node.description.strip():
        rows.append(("description", node.description.strip()))
    ran = ran or {}

    def as_run(label: str, value: Any) -> None:
        text = value if isinstance(value, str) else _json(value)
        if value is not None and text != rows[-1][1]:
            rows.append((f"{label} (as run)", text))

    if node.type is NodeType.COMMAND:
        if node.command_name:
            rows.append(("command", node.command_name))
            as_run("command", ran.get("command"))
        rows.append(("timeout", f"{node.timeout} s"))
    elif node.type is NodeType.FUNCTION:
        rows.append(("function", f"{node.plugin}.{node.function}"))
        if node.function_params:
            rows.append(("parameters", _json(node.function_params)))
            as_run("parameters", ran.get("params"))
    elif node.type is NodeType.MANUAL:
        if node.prompt_before:
            rows.append(("prompt before", node.prompt_before))
        if node.prompt_after:
            rows.append(("prompt", node.prompt_after))
    elif node.type is NodeType.PYTHON:
        rows.append(("code", node.code or ""))
        as_run("code", ran.get("code"))
    if node.depends_on:
        rows.append(("depends on", ", ".join(str(d) for d in node.depends_on)))
    if node.when:
        rows.append(("when", node.when))
    critical = node.critical
    rows.append(("critical", str(critical).lower() if isinstance(critical, bool) else critical))
    if node.retries:
        rows.append(("retries", f"{node.retries} (backoff {node.retry_backoff:g} s)"))
    return rows


# ---- the report -------------------------------------------------------------------------------------------


@dataclass
class Timeline:
    start: datetime
    end: datetime

    @property
    def span(self) -> float:
        return max((self.end - self.start).total_seconds(), 1e-3)

    def percent(self, moment: datetime) -> float:
        return min(max((moment - self.start).total_seconds() / self.span * 100, 0.0), 100.0)

    def bar(self, start: datetime, end: datetime | None) -> tuple[float, float]:
        left = self.percent(start)
        right = self.percent(end or self.end)
        return round(min(left, 100 - MIN_BAR_PERCENT), 3), round(max(right - left, MIN_BAR_PERCENT), 3)

    def ticks(self, count: int = 5) -> list[dict[str, Any]]:
        return [
            {"left": 100 * i / (count - 1), "label": fmt_duration(self.span * i / (count - 1))}
            for i in range(count)
        ]


def _timeline(run: Run, attempts: list[AttemptRow], decisions, events) -> Timeline:
    moments = [run.started_at]
    moments += [m for a in attempts for m in (a.started_at, a.ended_at) if m is not None]
    moments += [d.decided_at for d in decisions] + [e.at for e in events]
    if run.ended_at:
        moments.append(run.ended_at)
    return Timeline(min(moments), max(moments))


def _describe(runbook: Runbook | None, context: dict[str, Any]) -> str:
    if runbook is None or not runbook.meta.description:
        return ""
    try:
        return templating.render(runbook.meta.description, context, "runbook description")
    except PlaybookError:
        return runbook.meta.description


def artifact_entries(store: Store, events: list) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """The files each attempt left in the run's artifacts (screenshots, pixelmatch diff images), by (node,
    attempt): images are embedded as data URIs so the report stays one self-contained file."""
    found: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for event in events:
        if event.kind != ARTIFACT_EVENT or not event.node_id:
            continue
        payload = event.payload or {}
        entry = {"name": payload.get("name", ""), "url": payload.get("url", ""), "src": None}
        if str(payload.get("type", "")).startswith("image/") and entry["url"]:
            try:
                with store.open_artifact(entry["url"]) as handle:
                    data = handle.read(MAX_INLINE_IMAGE + 1)
            except (OSError, PlaybookError):
                data = b""
            if data and len(data) <= MAX_INLINE_IMAGE:
                entry["src"] = f"data:{payload['type']};base64,{base64.b64encode(data).decode()}"
        found.setdefault((event.node_id, event.attempt or 0), []).append(entry)
    return found


def host_section(rows: list) -> dict[str, Any] | None:
    """A fleet node's hosts (issue 21): each host's latest row, with the attempts it ran in, and the counts."""
    if not rows:
        return None
    latest: dict[str, Any] = {}
    attempts: dict[str, list[int]] = {}
    for row in rows:
        attempts.setdefault(row.host, []).append(row.attempt)
        if row.host not in latest or row.attempt >= latest[row.host].attempt:
            latest[row.host] = row
    counts: dict[str, int] = {}
    for row in latest.values():
        counts[row.state] = counts.get(row.state, 0) + 1
    return {
        "counts": sorted(counts.items()),
        "rows": [
            {
                "host": row.host,
                "state": row.state,
                "color": look(row.state).stroke,
                "membership": row.membership,
                "attempts": ", ".join(str(a) for a in attempts[row.host]),
                "exit_code": row.exit_code,
                "duration": fmt_duration(row.duration),
                "error": row.error,
                "output": (row.stdout or "") + (row.stderr or ""),
            }
            for row in sorted(latest.values(), key=lambda r: (r.position, r.host))
        ],
    }


def build_report(store: Store, run_id: int, redactor: Redactor | None = None) -> dict[str, Any]:
    """The template context for one run, every string already masked by `redactor`."""
    run = store.get_run(run_id)
    node_rows = store.node_states(run_id)
    attempts = store.attempts(run_id)
    decisions = store.decisions(run_id)
    events = store.events(run_id)
    problems = store.verify_events(run_id)
    host_rows = store.host_results(run_id)

    runbook: Runbook | None = None
    runbook_error = None
    try:
        runbook = parse_runbook(run.runbook_text, path=f"run {run.id}")
    except PlaybookError as err:
        runbook_error = str(err)

    states = {row.node_id: row.state for row in node_rows}
    svg = None
    if runbook is not None:
        try:
            svg = to_svg(runbook, {k: v.lower() for k, v in states.items()})
        except Exception as err:  # a drawing problem must not cost the whole report
            runbook_error = f"DAG not drawn: {err}"
    ran = ran_by_attempt(events)
    files = artifact_entries(store, events)
    timeline = _timeline(run, attempts, decisions, events)

    nodes = []
    for row in node_rows:
        node = runbook.nodes.get(row.node_id) if runbook else None
        own = [a for a in attempts if a.node_id == row.node_id]
        own.sort(key=lambda a: a.attempt)
        bars = []
        for a in own:
            left, width = timeline.bar(a.started_at, a.ended_at)
            bars.append(
                {
                    "left": left,
                    "width": width,
                    "color": look(a.status).stroke,
                    "label": f"{row.node_id} attempt {a.attempt}: {a.status}, {fmt_duration(a.duration)}"
                    f", {fmt_time(a.started_at)} → {fmt_time(a.ended_at)}",
                    "status": a.status,
                }
            )
        marks = [
            {
                "left": round(timeline.percent(d.decided_at), 3),
                "label": f"{d.decision} by {d.actor or '?'} at {fmt_time(d.decided_at)}",
            }
            for d in decisions
            if d.node_id == row.node_id
        ]
        style = look(row.state)
        nodes.append(
            {
                "id": row.node_id,
                "label": node.label if node else row.node_id,
                "type": str(node.type) if node else "?",
                "state": row.state,
                "failed": row.failed,
                "reason": row.reason,
                "fill": style.fill,
                "stroke": style.stroke,
                "definition": node_definition(node, ran.get((row.node_id, own[-1].attempt)) if own else None)
                if node
                else [],
                "attempts": [
                    {
                        "attempt": a.attempt,
                        "status": a.status,
                        "color": look(a.status).stroke,
                        "started": fmt_time(a.started_at),
                        "ended": fmt_time(a.ended_at),
                        "duration": fmt_duration(a.duration),
                        "exit_code": a.exit_code,
                        "stdout": a.stdout or "",
                        "stderr": a.stderr or "",
                        "result": None if a.result is None else _json(a.result),
                        "error": a.error,
                        "ran": ran_text(ran[(row.node_id, a.attempt)])
                        if (row.node_id, a.attempt) in ran
                        else None,
                        "artifacts": files.get((row.node_id, a.attempt), []),
                    }
                    for a in own
                ],
                "bars": bars,
                "marks": marks,
                "hosts": host_section([h for h in host_rows if h.node_id == row.node_id]),
            }
        )

    context = {
        "run": {
            "id": run.id,
            "number": run.number,
            "workflow": run.workflow,
            "title": run.title,
            "status": run.status,
            "status_reason": run.status_reason,
            "started": fmt_time(run.started_at),
            "ended": fmt_time(run.ended_at),
            "duration": fmt_duration(run.duration),
            "actor": run.actor,
            "host": run.host,
            "trigger": run.trigger,
            "mode": run.mode,
            "version": run.runbook_version,
            "sha256": run.runbook_sha256,
            "notebook_path": run.notebook_path,
            "counts": run.counts,
        },
        "description": _describe(runbook, templating.make_context(dict(run.variables))),
        "author": runbook.meta.author if runbook else "",
        "legal_basis": (run.params or {}).get("legal_basis") or (runbook.meta.legal_basis if runbook else ""),
        "variables": [(name, _json(value)) for name, value in sorted(run.variables.items())],
        "params": [(name, _json(value)) for name, value in sorted(run.params.items())],
        "runbook_error": runbook_error,
        "runbook_text": run.runbook_text,
        "nodes": nodes,
        "ticks": timeline.ticks(),
        "timeline_span": fmt_duration(timeline.span),
        "decisions": [
            {
                "node_id": d.node_id,
                "decision": d.decision,
                "actor": d.actor,
                "source": d.source,
                "comment": d.comment,
                "at": fmt_time(d.decided_at),
            }
            for d in decisions
        ],
        "events": [
            {
                "seq": e.seq,
                "at": fmt_time(e.at),
                "kind": e.kind,
                "node_id": e.node_id,
                "attempt": e.attempt,
                "payload": _json(e.payload),
                "hash": e.hash,
            }
            for e in events
        ],
        "chain": {"intact": not problems, "problems": problems, "count": len(events), "head": run.event_head},
        "generated": fmt_time(datetime.now(UTC)),
        "tool_version": VERSION,
        # solid colours (badges, attempt bars, decision marks) from the one presentation table
        "status_colors": {state: shown.stroke for state, shown in STATE_LOOKS.items()},
        # "OK with 1 handled failure", drawn amber (presentation.HANDLED)
        "status_label": status_label(run.status, len(handled := handled_failures(node_rows))),
        "status_look": run_look_state(run.status, len(handled)),
        "decision_color": AWAITING_RING,
    }
    if redactor:
        context = redactor.redact_obj(context)
        svg = redactor.redact(svg) if svg else svg
    # The SVG comes from our own autoescaping template: safe to embed as markup.
    context["svg"] = Markup(svg) if svg else None
    return context


def render_report(store: Store, run_id: int, redactor: Redactor | None = None) -> str:
    return render_internal(TEMPLATE, **build_report(store, run_id, redactor))


def copy_notebook(store: Store, run_id: int, output: Path) -> str:
    """Copy the run's executed notebook to `output`; a clear error when the run has none."""
    run = store.get_run(run_id)
    if not run.notebook_path:
        if run.status == "RUNNING" and run.trigger in ("notebook", "widget"):
            raise ExportError(
                f"run {run_id} is RUNNING: its notebook is filed when it ends or aborts; "
                "export --html gives its report so far"
            )
        raise ExportError(
            f"run {run_id} has no executed notebook (it ran from the {run.trigger} face); "
            "export --html gives its report"
        )
    source = run.notebook_path
    try:
        opener = getattr(store, "open_artifact", None)  # local path or remote (fsspec) URL
        if opener is not None:
            with opener(source) as handle:
                data = handle.read()
        else:
            data = Path(source).read_bytes()
    except (OSError, PlaybookError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ExportError(f"run {run_id}: cannot read its notebook {source}: {reason}") from None
    write_output(output, data)
    return source


def write_output(output: Path, data: str | bytes) -> None:
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(output.name + ".partial")
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
        shutil.move(tmp, output)
    except OSError as err:
        raise ExportError(f"cannot write {output}: {err.strerror or err}") from None
