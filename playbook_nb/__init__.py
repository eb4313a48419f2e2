"""playbook-nb: runbooks for SREs as Jupyter notebooks.

`%load_ext playbook_nb` in a notebook registers the node cell magics (the kernel face lives in
`playbook_nb.kernel_ext`, imported only when a kernel loads the extension).
"""

from playbook_nb.constants import VERSION as __version__

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython) -> None:
    from playbook_nb.kernel_ext.magics import PlaybookMagics
    from playbook_nb.kernel_ext.notebook_run import async_node_cells

    ipython.register_magics(PlaybookMagics)
    if async_node_cells not in ipython.input_transformers_cleanup:  # a no-op unless the run is interactive
        ipython.input_transformers_cleanup.append(async_node_cells)


def unload_ipython_extension(ipython) -> None:  # nothing to release: runs live in the index
    pass
