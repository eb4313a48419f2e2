"""The executed notebook of a run as its record (issue 13): what a run files in its artifact directory.

A filed notebook is brought up to date from the run index, so it never disagrees with it: each node cell shows
the node's recorded outcome (state, last attempt, what it printed), the summary cell the recorded summary, and
the setup cell becomes a *record* setup cell: running the filed notebook again (Run All, nbconvert, papermill)
shows the recorded run read-only and never starts a run, so the approvals injected for the original run can
never approve another one. The graph is an image output (PNG, with the SVG for trusted notebooks), which
JupyterLab shows also in an untrusted notebook.

nbformat (with jsonschema: about 0.1 s of CPU to import through light_nbformat, 0.9 s otherwise), the
notebook compiler and Pillow are imported where they are used: a kernel imports this module for its summary,
and a headless kernel whose driver files the record needs none of them (issue 18.3).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import html
import os
import tempfile
from typing import Any

from playbook_nb.adapters.export.dag_render import to_svg
from playbook_nb.adapters.store import Store
from playbook_nb.constants import RUN_MIME
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.model import Runbook
from playbook_nb.domain.validation import parse_runbook
from playbook_nb.presentation import mark

RECORD_KEY = "record"  # notebook metadata["playbook_nb"]["record"]: {run_id, number, status, db}
FILED_NAME = "notebook.ipynb"
PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def dag_bundle(runbook: Runbook, states: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data, metadata) of a display output drawing the graph: PNG (rendered by JupyterLab also in an
    untrusted notebook), SVG (preferred once trusted) and a text line."""
    from playbook_nb.adapters.export.dag_png import to_png_scaled

    png, scale = to_png_scaled(runbook, {k: v.lower() for k, v in states.items()})
    counts: dict[str, int] = {}
    for state in states.values():
        counts[state] = counts.get(state, 0) + 1
    text = f"DAG of {runbook.meta.title!r}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    data = {
        "image/png": base64.b64encode(png).decode("ascii"),
        "image/svg+xml": to_svg(runbook, states),
        "text/plain": text,
    }
    width = int.from_bytes(png[16:20], "big") // scale  # drawn at `scale` pixels a point
    return data, {"image/png": {"width": width}}


def summary_html(store: Store, run_id: int) -> str:
    """The summary table of a run, from the index (the summary cell of a live run and of a filed one)."""
    run = store.get_run(run_id)
    rows = "".join(
        f"<tr><td>{mark(r.state)} {html.escape(r.node_id)}</td><td>{r.state}</td>"
        f"<td>{r.attempts or 0}</td><td>{html.escape(r.reason or '')}</td></tr>"
        for r in store.node_states(run_id)
    )
    reason = f" ({html.escape(run.status_reason)})" if run.status_reason and run.status != "OK" else ""
    return (
        f"<h3>Run {run.id} (#{run.number}): {run.status}{reason}</h3>"
        f"<table><tr><th>node</th><th>state</th><th>attempts</th><th>reason</th></tr>{rows}</table>"
        f"<p>record: run {run.id} in <code>{html.escape(str(store.path))}</code></p>"
    )


def node_line(state: str, node_id: str, reason: str | None, attempt: Any = None) -> str:
    """The one line a node cell ends with: its state, attempt and duration, or why it did not run."""
    if attempt is not None:
        line = f"{mark(state)} {node_id}: {state} (attempt {attempt.attempt}"
        line += f", {attempt.duration:.2f}s)" if attempt.duration is not None else ")"
        if attempt.error:
            line += f"\n  error: {attempt.error}"
        if reason and state != "OK":
            line += f"\n  {reason}"
        return line
    return f"{mark(state)} {node_id}: {state}" + (f" ({reason})" if reason else "")


def record_setup_source(run_id: int, db: str) -> str:
    return (
        "%load_ext playbook_nb\n"
        "from playbook_nb.kernel_ext import open_record\n"
        f"# This notebook is the record of run {run_id}: running it shows that run and never starts one.\n"
        f"pb = open_record({run_id}, state_path={db!r})\n"
        "pb.show()"
    )


def _stream(name: str, text: str) -> Any:
    from playbook_nb.adapters.notebook.light_nbformat import nbformat

    return nbformat.v4.new_output("stream", name=name, text=text if text.endswith("\n") else text + "\n")


def _display(data: dict[str, Any], metadata: dict[str, Any] | None = None) -> Any:
    from playbook_nb.adapters.notebook.light_nbformat import nbformat

    return nbformat.v4.new_output("display_data", data=data, metadata=metadata or {})


def _node_outputs(cell: Any, state: str, node_id: str, reason: str | None, last: Any) -> list[Any]:
    """A node cell's outputs from the record: what its last attempt printed and its state line. A Python
    node's rich outputs (tables, plots) are kept; their text is taken from the record."""
    outputs = [
        o for o in cell.get("outputs", []) if o.get("output_type") in ("display_data", "execute_result")
    ]
    outputs = [o for o in outputs if RUN_MIME not in o.get("data", {})]
    if last is not None and last.stdout:
        outputs.append(_stream("stdout", last.stdout))
    if last is not None and last.stderr:
        outputs.append(_stream("stderr", last.stderr))
    outputs.append(_stream("stdout", node_line(state, node_id, reason, last)))
    return outputs


def _kept(cell: Any, status: str) -> list[Any]:
    """Outputs of a summary cell that stay: the saved widget view, and the error of a run not OK."""
    kept = []
    for output in cell.get("outputs", []):
        if WIDGET_VIEW in output.get("data", {}) or (output.get("output_type") == "error" and status != "OK"):
            kept.append(output)
    return kept


def recorded_notebook(
    store: Store, run_id: int, base: Any | None = None, *, refresh_nodes: bool = True, in_place: bool = False
) -> Any:
    """The run's notebook as its record: `base` (the executed or saved working notebook; by default the
    notebook compiled from the run's own runbook text) with its setup cell a record setup cell, its summary
    from the index and, with `refresh_nodes`, each node cell's outputs from the index (a working notebook's
    cells keep what Run All printed, a resumed run's what the first part printed; a headless run's cells
    already show what ran). Returns a new notebook; `base` is not changed, unless `in_place` (a caller that
    has no further use for it: `base` itself becomes the record, without a deep copy of an O(N) notebook)."""
    from playbook_nb.adapters.notebook.compile import (
        METADATA_KEY,
        ROLE_NODE,
        ROLE_SETUP,
        ROLE_SUMMARY,
        compile_runbook,
    )

    run = store.get_run(run_id)
    runbook = parse_runbook(run.runbook_text, path=f"run {run_id}")
    nb = compile_runbook(runbook) if base is None else base if in_place else copy.deepcopy(base)
    states = {r.node_id: r for r in store.node_states(run_id)}
    last: dict[str, Any] = {}
    for attempt in store.attempts(run_id):
        if attempt.node_id not in last or attempt.attempt > last[attempt.node_id].attempt:
            last[attempt.node_id] = attempt
    db = str(store.path)
    dag, dag_meta = dag_bundle(runbook, {node_id: row.state for node_id, row in states.items()})
    record_mime = {RUN_MIME: {"run_id": run.id, "number": run.number, "db": db}}
    if run.status == "OK":  # papermill's "An Exception was encountered" cell of an earlier, unfinished part
        nb.cells = [c for c in nb.cells if PAPERMILL_ERROR_TAG not in c.get("metadata", {}).get("tags", [])]
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get(METADATA_KEY, {})
        role = meta.get("role")
        if cell.cell_type != "code":
            continue
        if role == ROLE_SETUP:
            cell.source = record_setup_source(run.id, db)
            text = f"run {run.id} (#{run.number}) of {run.title!r}: {run.status}, recorded in {db}"
            cell.outputs = [_display({**record_mime, "text/plain": text}), _display(dag, dag_meta)]
        elif role == ROLE_NODE and refresh_nodes and meta.get("node") in states:
            row = states[meta["node"]]
            cell.outputs = _node_outputs(cell, row.state, row.node_id, row.reason, last.get(row.node_id))
        elif role == ROLE_SUMMARY:
            cell.outputs = [
                _display({"text/html": summary_html(store, run_id)}),
                _display(dag, dag_meta),
                *_kept(cell, run.status),
            ]
    nb.metadata.setdefault(METADATA_KEY, {})[RECORD_KEY] = {
        "run_id": run.id,
        "number": run.number,
        "status": run.status,
        "db": db,
    }
    return nb


def file_notebook(
    store: Store,
    run_id: int,
    base: Any | None = None,
    *,
    refresh_nodes: bool = True,
    record: Any | None = None,
) -> str:
    """File the run's record notebook in its artifacts (`notebook.ipynb`) and point the run at it; returns
    its path or URL. `record`: the record `recorded_notebook` already made, filed as it is (`base` and
    `refresh_nodes` then do not apply). Raises the store's StorageFault when the artifact store refuses it."""
    from playbook_nb.adapters.notebook.light_nbformat import nbformat

    nb = record if record is not None else recorded_notebook(store, run_id, base, refresh_nodes=refresh_nodes)
    fd, tmp = tempfile.mkstemp(prefix="playbook-nb-", suffix=".ipynb")
    os.close(fd)
    try:
        nbformat.write(nb, tmp)
        url = store.put_artifact(run_id, FILED_NAME, tmp)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    store.set_notebook_path(run_id, url)
    return url


def is_filed(store: Store, run_id: int) -> bool:
    """The run points at a notebook it filed in its own artifacts (not a working or papermill output file)."""
    run = store.get_run(run_id)
    path = run.notebook_path or ""
    return bool(path) and os.path.basename(path.rstrip("/")) == FILED_NAME and str(run_id) in path


def read_filed(store: Store, run_id: int) -> Any | None:
    """The run's filed notebook, or None when it has none (or it cannot be read)."""
    if not is_filed(store, run_id):
        return None
    from playbook_nb.adapters.notebook.light_nbformat import nbformat

    try:
        with store.open_artifact(store.get_run(run_id).notebook_path or "", "rb") as handle:
            return nbformat.reads(handle.read().decode("utf-8"), as_version=4)
    except (OSError, ValueError, PlaybookError):
        return None
