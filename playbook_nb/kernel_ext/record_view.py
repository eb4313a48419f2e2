"""A filed notebook run again (Run All, nbconvert, papermill on an executed notebook): the record, read-only.

The setup cell of a filed notebook calls `open_record(run_id, state_path=...)` instead of `open_run`: its node
cells and summary show the recorded run and nothing starts, whatever its parameters cell says (the approvals
injected for the original run apply to that run only). To run the runbook again, use its compiled notebook or
`playbook-nb run FILE`.
"""

from __future__ import annotations

from IPython.display import HTML, display

import playbook_nb.kernel_ext.notebook_run as notebook_run
from playbook_nb.adapters.notebook.record import dag_bundle, node_line, summary_html
from playbook_nb.adapters.store import Store, resolve_db_path
from playbook_nb.app.config import load_config
from playbook_nb.constants import RUN_MIME
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.validation import parse_runbook

READ_ONLY = (
    "This notebook is the record of run {id}: running it shows that run and starts nothing. "
    "To run the runbook again, open its compiled notebook or use `playbook-nb run FILE`."
)


class RecordView:
    """What a record setup cell returns: the cells of a filed notebook, answered from the index."""

    headless = True
    widget = None

    def __init__(self, store: Store, run_id: int):
        self.store = store
        self.run_id = run_id
        self.run = store.get_run(run_id)
        self.runbook = parse_runbook(self.run.runbook_text, path=f"run {run_id}")

    def _states(self) -> dict[str, str]:
        return {r.node_id: r.state for r in self.store.node_states(self.run_id)}

    def show(self) -> None:
        run = self.run
        display(
            {
                RUN_MIME: {"run_id": run.id, "number": run.number, "db": str(self.store.path)},
                "text/plain": f"run {run.id} (#{run.number}) of {run.title!r}: {run.status}, "
                f"recorded in {self.store.path}",
            },
            raw=True,
        )
        print(READ_ONLY.format(id=run.id))
        data, metadata = dag_bundle(self.runbook, self._states())
        display(data, metadata=metadata, raw=True)

    def cell(self, node_id: str, code: str | None = None) -> None:
        rows = {r.node_id: r for r in self.store.node_states(self.run_id)}
        if node_id not in rows:
            raise PlaybookError(f"run {self.run_id} has no node '{node_id}'")
        row = rows[node_id]
        attempts = self.store.attempts(self.run_id, node_id)
        last = max(attempts, key=lambda a: a.attempt) if attempts else None
        if last is not None and last.stdout:
            print(last.stdout, end="" if last.stdout.endswith("\n") else "\n")
        print(node_line(row.state, node_id, row.reason, last) + "  (recorded)")

    async def cell_async(self, node_id: str) -> None:
        self.cell(node_id)

    def summary(self) -> None:
        display(HTML(summary_html(self.store, self.run_id)))
        data, metadata = dag_bundle(self.runbook, self._states())
        display(data, metadata=metadata, raw=True)


def open_record(run_id: int, *, state_path: str = "") -> RecordView:
    """The record setup cell of a filed notebook: the recorded run, read-only (never a new run)."""
    store = Store.open(resolve_db_path(state_path or None, load_config()))
    view = RecordView(store, int(run_id))
    notebook_run._current = view
    return view
