"""Who decides: the identity a decision is recorded under (issue 16).

The Jupyter Server's authenticated user for the server and the cockpit (`faces.server.identity`); inside a
JupyterHub kernel or terminal `JUPYTERHUB_USER` (every Hub user is the OS user "jovyan"); else the OS user.
"""

from __future__ import annotations

import os

from playbook_nb.domain.decisions import default_actor

HUB_USER_ENV = "JUPYTERHUB_USER"


def local_identity() -> str:
    """The person at this process: the JupyterHub user it runs for, else the OS user."""
    return os.environ.get(HUB_USER_ENV, "").strip() or default_actor()
