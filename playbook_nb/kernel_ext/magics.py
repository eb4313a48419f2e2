"""`%playbook_node NODE` and `%%playbook_node NODE`: a node's cell, kept thin."""

from __future__ import annotations

from IPython.core.magic import Magics, line_cell_magic, magics_class

from playbook_nb.domain.errors import PlaybookError


@magics_class
class PlaybookMagics(Magics):
    @line_cell_magic
    def playbook_node(self, line: str, cell: str | None = None):
        from playbook_nb.kernel_ext.notebook_run import current

        node_id = line.strip()
        try:
            current().cell(node_id, code=cell)
        except PlaybookError as err:  # one clear line under the cell, never a traceback
            print(f"error: {err}")
