"""The Jupyter Server extension of playbook-nb: the REST API over the run index (`handlers`) and runbook
notebooks compiled on the fly from `*.playbook.toml` (`runbook_contents`).

Enabled on install by `jupyter-config/jupyter_server_config.d/playbook_nb.json` (shipped in the wheel as
`etc/jupyter/jupyter_server_config.d/playbook_nb.json`); `jupyter server extension list` shows it.
"""

from __future__ import annotations


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "playbook_nb.faces.server"}]


def _load_jupyter_server_extension(serverapp) -> None:
    from playbook_nb.faces.server.handlers import setup_handlers
    from playbook_nb.faces.server.run_index import RunIndex
    from playbook_nb.faces.server.runbook_contents import serve_runbooks_as_notebooks

    index = RunIndex()
    setup_handlers(serverapp.web_app, index)
    serve_runbooks_as_notebooks(serverapp)
    serverapp.log.info("playbook-nb: REST API at %splaybook-nb/api/", serverapp.base_url)
