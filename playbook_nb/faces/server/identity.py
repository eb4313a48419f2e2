"""Who the server's authenticated user is, in the words the run record uses (`runs.actor`)."""

from __future__ import annotations

import os

from playbook_nb.domain.decisions import default_actor


def actor_of(user) -> str:
    """Under JupyterHub, the Hub user the server authenticated (the name a Hub kernel records too, from
    `JUPYTERHUB_USER`). On a plain single-user server the identity is the anonymous token user, a random
    name: the person is the OS user the server (and its kernels) runs as, as for every other face."""
    if os.environ.get("JUPYTERHUB_USER") and getattr(user, "username", None):
        return user.username
    return default_actor()
