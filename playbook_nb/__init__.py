"""playbook-nb: runbooks for SREs as Jupyter notebooks.

`%load_ext playbook_nb` in a notebook registers the node cell magics (the kernel face lives in
`playbook_nb.kernel_ext`, imported only when a kernel loads the extension).
"""


def __getattr__(name: str):
    """`playbook_nb.__version__`: from the installed package's metadata (the one place the version lives is
    pyproject.toml), read on first use (importlib.metadata is not a start-up cost of every command)."""
    if name != "__version__":
        raise AttributeError(f"module 'playbook_nb' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("playbook-nb")
    except PackageNotFoundError:  # a source tree that was never installed
        value = "0+unknown"
    globals()["__version__"] = value
    return value


def load_ipython_extension(ipython) -> None:
    from playbook_nb.kernel_ext.magics import PlaybookMagics
    from playbook_nb.kernel_ext.notebook_run import async_node_cells, has_front_end

    ipython.register_magics(PlaybookMagics)
    if has_front_end() and async_node_cells not in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.append(async_node_cells)


def unload_ipython_extension(ipython) -> None:  # nothing to release: runs live in the index
    pass
