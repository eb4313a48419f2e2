"""`*.playbook.toml` as a notebook through the server's contents API: compiled on every open, read-only,
never written over the TOML; ordinary notebooks and text files behave as without the extension."""

from __future__ import annotations

import json

import nbformat
import pytest
from tornado.httpclient import HTTPClientError

RUNBOOK = """[runbook]
title = "Disk check"

[check]
type = "Command"
command_name = "df -h /"
"""


async def contents(jp_fetch, path, method="GET", body=None, **params):
    response = await jp_fetch(
        "api",
        "contents",
        path,
        method=method,
        params=params or None,
        body=None if body is None else json.dumps(body),
    )
    return json.loads(response.body)


@pytest.fixture
def runbook(jp_root_dir):
    path = jp_root_dir / "ops" / "disk.playbook.toml"
    path.parent.mkdir()
    path.write_text(RUNBOOK)
    return path


def node_cells(model):
    return [
        c for c in model["content"]["cells"] if c["metadata"].get("playbook_nb", {}).get("role") == "node"
    ]


async def test_a_runbook_opens_as_its_compiled_notebook(jp_fetch, runbook):
    model = await contents(jp_fetch, "ops/disk.playbook.toml", type="notebook")
    assert model["type"] == "notebook" and model["format"] == "json" and model["writable"] is False
    nbformat.validate(nbformat.from_dict(model["content"]))
    assert model["content"]["metadata"]["playbook_nb"]["runbook_text"] == RUNBOOK
    assert [c["source"] for c in node_cells(model)] == ["%playbook_node check"]

    as_text = await contents(jp_fetch, "ops/disk.playbook.toml")  # the editor still sees the TOML
    assert as_text["type"] == "file" and as_text["content"] == RUNBOOK and as_text["writable"] is True
    listing = await contents(jp_fetch, "ops")
    assert [(m["name"], m["type"]) for m in listing["content"]] == [("disk.playbook.toml", "file")]


async def test_a_runbook_notebook_without_content_is_not_compiled(jp_fetch, runbook):
    # JupyterLab asks for the model alone (content=0) to check the file's date: no compile, still read-only
    model = await contents(jp_fetch, "ops/disk.playbook.toml", type="notebook", content="0")
    assert model["type"] == "notebook" and model["writable"] is False
    assert model["content"] is None and model["format"] is None


async def test_editing_the_toml_changes_the_next_open(jp_fetch, runbook):
    edited = RUNBOOK + '\n[report]\ntype = "Command"\ncommand_name = "echo done"\n'
    saved = await contents(
        jp_fetch, "ops/disk.playbook.toml", "PUT", {"type": "file", "format": "text", "content": edited}
    )
    assert saved["type"] == "file"
    model = await contents(jp_fetch, "ops/disk.playbook.toml", type="notebook")
    assert [c["source"] for c in node_cells(model)] == ["%playbook_node check", "%playbook_node report"]


async def test_saving_the_notebook_never_overwrites_the_toml(jp_fetch, runbook):
    model = await contents(jp_fetch, "ops/disk.playbook.toml", type="notebook")
    with pytest.raises(HTTPClientError) as err:
        await contents(
            jp_fetch,
            "ops/disk.playbook.toml",
            "PUT",
            {"type": "notebook", "format": "json", "content": model["content"]},
        )
    assert err.value.code == 400
    assert "compiled from the TOML" in json.loads(err.value.response.body)["message"]
    assert runbook.read_text() == RUNBOOK


async def test_an_invalid_runbook_is_one_line_400(jp_fetch, runbook):
    runbook.write_text(RUNBOOK.replace('type = "Command"', 'type = "Telepathy"'))
    with pytest.raises(HTTPClientError) as err:
        await contents(jp_fetch, "ops/disk.playbook.toml", type="notebook")
    assert err.value.code == 400
    message = json.loads(err.value.response.body)["message"]
    assert "\n" not in message and "check" in message and "Telepathy" in message


async def test_ordinary_notebooks_are_untouched(jp_fetch, jp_root_dir):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    await contents(jp_fetch, "plain.ipynb", "PUT", {"type": "notebook", "format": "json", "content": nb})
    model = await contents(jp_fetch, "plain.ipynb")
    assert model["type"] == "notebook" and model["writable"] is True
    assert model["content"]["cells"][0]["source"] == "1 + 1"
    (jp_root_dir / "notes.toml").write_text("a = 1\n")  # a TOML that is not a runbook stays a file
    with pytest.raises(HTTPClientError) as err:
        await contents(jp_fetch, "notes.toml", type="notebook")
    assert err.value.code == 400
    assert (await contents(jp_fetch, "notes.toml"))["content"] == "a = 1\n"


def test_the_running_contents_manager_gained_the_runbook_base(jp_serverapp):
    from playbook_nb.faces.server.runbook_contents import AsyncRunbookNotebooks

    manager = jp_serverapp.contents_manager
    assert isinstance(manager, AsyncRunbookNotebooks)
    assert jp_serverapp.session_manager.contents_manager is manager
    assert type(manager).__mro__[2].__name__ == "AsyncLargeFileManager"
