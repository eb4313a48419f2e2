"""playbook-nb: runbooks for SREs as Jupyter notebooks.

`%load_ext playbook_nb` in a notebook registers the node cell magics (the kernel face lives in
`playbook_nb.kernel_ext`, imported only when a kernel loads the extension).
"""

from importlib.metadata import PackageNotFoundError, version

try:  # the one place the version lives is pyproject.toml; the installed package's metadata carries it
    __version__ = version("playbook-nb")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"


def load_ipython_extension(ipython) -> None:
    from playbook_nb.kernel_ext.magics import PlaybookMagics
    from playbook_nb.kernel_ext.notebook_run import async_node_cells, has_front_end

    ipython.register_magics(PlaybookMagics)
    if has_front_end() and async_node_cells not in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.append(async_node_cells)


def unload_ipython_extension(ipython) -> None:  # nothing to release: runs live in the index
    pass
