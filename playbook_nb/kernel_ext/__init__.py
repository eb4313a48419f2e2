"""The kernel face of playbook-nb (installed as `playbook_nb.kernel_ext`; notebooks write `%load_ext playbook_nb`).

`%playbook_node NODE` runs a node through the engine and `%%playbook_node NODE` is a Python node whose code is
the cell body (both registered by `playbook_nb.load_ipython_extension`); `open_run` is what the notebook's setup
cell calls; `open_record`
is what the setup cell of a filed (executed) notebook calls: the recorded run, read-only.
"""

from __future__ import annotations

from playbook_nb.kernel_ext.notebook_run import NotebookRun, RunNotOK, current, open_run
from playbook_nb.kernel_ext.record_view import RecordView, open_record

__all__ = ["NotebookRun", "RecordView", "RunNotOK", "current", "open_record", "open_run"]
