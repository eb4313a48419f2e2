"""Who the server's authenticated user is, in the words the run record uses (`runs.actor`, `decisions.actor`)."""

from __future__ import annotations

import os

from playbook_nb.app.identity import HUB_USER_ENV, local_identity


def _names_people(provider) -> bool:
    """Whether the server's identity provider says who each user is: JupyterHub's, or one configured for a
    team (`ServerApp.identity_provider_class`). jupyter_server's own (one token or password for the whole
    server) makes a random anonymous name for whoever holds the token."""
    if provider is None:
        return False
    from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider

    return type(provider) not in (IdentityProvider, PasswordIdentityProvider)


def actor_of(user, provider=None) -> str:
    """Under JupyterHub, the Hub user the server authenticated (the name a Hub kernel records too, from
    `JUPYTERHUB_USER`); with an identity provider that names people, its user name. On a plain single-user
    server the identity is the anonymous token user, a random name: the person is the OS user the server (and
    its kernels) runs as, as for every other face."""
    username = getattr(user, "username", None)
    if username and (os.environ.get(HUB_USER_ENV) or _names_people(provider)):
        return username
    return local_identity()
