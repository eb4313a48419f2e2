"""The same runbook notebooks on a server configured with a synchronous contents manager."""

from __future__ import annotations

import json

import pytest
from traitlets.config import Config

from tests.server.test_runbook_contents import RUNBOOK


@pytest.fixture
def jp_server_config():
    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"playbook_nb.faces.server": True},
                "contents_manager_class": "jupyter_server.services.contents.filemanager.FileContentsManager",
            }
        }
    )


async def test_sync_manager_serves_the_compiled_notebook(jp_fetch, jp_root_dir, jp_serverapp):
    from playbook_nb.faces.server.runbook_contents import RunbookNotebooks

    assert isinstance(jp_serverapp.contents_manager, RunbookNotebooks)
    (jp_root_dir / "disk.playbook.toml").write_text(RUNBOOK)
    response = await jp_fetch("api", "contents", "disk.playbook.toml", params={"type": "notebook"})
    model = json.loads(response.body)
    assert model["type"] == "notebook" and model["writable"] is False
    assert model["content"]["metadata"]["playbook_nb"]["runbook_text"] == RUNBOOK
