"""playbook-nb: runbooks for SREs as Jupyter notebooks."""

__version__ = "0.1.0"
