"""Resume a run from the "Runbook runs" panel (issue 17.3): a notebook set to resume it, opened in Lab.

The server never resumes a run itself. It checks that the run may be resumed (the same rules as every face:
only an ABORTED run, or a RUNNING one whose driver is gone; never one another live session drives), then
writes `resume_run_<id>.ipynb`: the notebook compiled from the runbook text the run recorded, with
`run_id = <id>` in its parameters cell. The user runs it; `open_run` resumes the run with its consent rules
(the recorded variable values; a changed value refused unless `allow_changed_vars`; a gate waits for a new
decision in the cockpit: no approval is carried over from the session that aborted).
"""

from __future__ import annotations

import re
from typing import Any

from playbook_nb.adapters.store import Store
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.lifecycle import RESUMABLE

RUN_ID_LINE = re.compile(r"^run_id = None\b", re.M)


def resume_refusal(store: Store, run_id: int) -> str | None:
    """Why run `run_id` cannot be resumed now, in one line (None: it can)."""
    run = store.get_run(run_id)
    if run.status == RESUMABLE:
        return None
    if run.status == "RUNNING":
        owner = store.owner_status(run_id)
        if owner.live:
            return f"run {run_id} is RUNNING, driven by {owner.label}: it cannot be resumed while its driver lives"
        # orphaned (its driver is gone): the notebook recovers it first, its leftover commands killed
        return None
    return f"run {run_id} is {run.status}: only an ABORTED run can be resumed"


def notebook_name(run_id: int) -> str:
    return f"resume_run_{run_id}.ipynb"


def resume_notebook(store: Store, run_id: int) -> dict[str, Any]:
    """The notebook that resumes run `run_id` when it is run: compiled from the run's recorded runbook text
    (so its sha256 is the run's), `run_id = <id>` in its parameters cell. No variable value is written: the
    resume takes the recorded ones (secrets from the kernel's environment)."""
    from playbook_nb.adapters.notebook.compile import compile_runbook
    from playbook_nb.domain.validation import parse_runbook

    run = store.get_run(run_id)
    runbook = parse_runbook(run.runbook_text, path=f"run {run_id}")
    nb = compile_runbook(runbook, source_path=f"run {run_id}")
    (params,) = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]
    source, count = RUN_ID_LINE.subn(f"run_id = {run_id}", params.source)
    if count != 1:
        raise PlaybookError(f"run {run_id}: the compiled parameters cell has no `run_id = None` line")
    params.source = source
    return nb
