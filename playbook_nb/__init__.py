"""playbook-nb: runbooks for SREs as Jupyter notebooks.

`%load_ext playbook_nb` in a notebook registers the node cell magics (the kernel face lives in
`playbook_nb.kernel_ext`, imported only when a kernel loads the extension).
"""

__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    from playbook_nb.kernel_ext.magics import PlaybookMagics

    ipython.register_magics(PlaybookMagics)


def unload_ipython_extension(ipython) -> None:  # nothing to release: runs live in the index
    pass
