"""IPython extension for playbook-nb notebooks: `%load_ext kernel_ext`.

Registers `%playbook_node NODE` (run a node through the engine) and `%%playbook_node NODE` (a Python node whose
code is the cell body), and exposes `open_run` for the notebook's setup cell.
"""

from __future__ import annotations

from kernel_ext.notebook_run import NotebookRun, RunNotOK, current, open_run

__all__ = ["NotebookRun", "RunNotOK", "current", "open_run", "load_ipython_extension"]


def load_ipython_extension(ipython) -> None:
    from kernel_ext.magics import PlaybookMagics

    ipython.register_magics(PlaybookMagics)


def unload_ipython_extension(ipython) -> None:  # nothing to release: runs live in the index
    pass
