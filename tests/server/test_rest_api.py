"""The REST API of the Jupyter Server extension, through pytest-jupyter's real in-process server.

Runs are made by the real engine (RunSession, real commands) into a real SQLite file or PostgreSQL database,
which the server finds through PLAYBOOK_DB_PATH / PLAYBOOK_DB_URL, as the CLI does.
"""

from __future__ import annotations

import json
import os

import pytest
from tornado.httpclient import HTTPClientError

from playbook_nb.adapters.executors.local import LocalExecutor
from playbook_nb.adapters.store import Store
from playbook_nb.app.session import RunOptions, RunSession
from playbook_nb.domain.validation import parse_runbook

HANDLED = """
[runbook]
title = "Handled {{ APP }}"

[variables]
APP = { default = "web" }
TOKEN = { secret = true }

[flaky]
type = "Command"
command_name = "echo using {{ TOKEN }}; exit 4"

[next]
type = "Command"
command_name = "echo next"
"""

FAILING = """
[runbook]
title = "Failing"

[boom]
type = "Command"
command_name = "echo deploy-key-7f3a; exit 7"
critical = true
"""

SECRET = "s3cr3t-value-42"


def make_runs(location: str) -> dict[str, int]:
    """Two real runs: one OK with a handled failure (secret echoed), one NOK by alice."""
    ids = {}
    with Store.open(location) as store:
        for name, text, actor, values in (
            ("handled", HANDLED, "bob", {"APP": "web", "TOKEN": SECRET}),
            ("failing", FAILING, "alice", {}),
        ):
            runbook = parse_runbook(text)
            options = RunOptions(headless=True, actor=actor)
            session = RunSession.start(
                runbook, values, store, options, namespace={}, executor=LocalExecutor()
            )
            session.drive(lambda *args: None)
            session.close()
            ids[name] = session.run_id
    return ids


@pytest.fixture(params=["sqlite", "postgresql"])
def index(request, tmp_path, monkeypatch):
    """An index with two runs, named to the server as the CLI would find it."""
    if request.param == "sqlite":
        location = str(tmp_path / "index" / "runs.db")
        monkeypatch.setenv("PLAYBOOK_DB_PATH", location)
    else:
        location = request.getfixturevalue("pg_url")
        monkeypatch.setenv("PLAYBOOK_DB_URL", location)
    monkeypatch.setenv("PLAYBOOK_ARTIFACTS_URL", str(tmp_path / "artifacts"))
    return make_runs(location)


async def get_json(jp_fetch, *parts, **params):
    response = await jp_fetch("playbook-nb", "api", *parts, params=params or None)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


async def test_runs_list_newest_first_with_handled_failures(jp_fetch, index):
    runs = (await get_json(jp_fetch, "runs"))["runs"]
    assert [r["id"] for r in runs] == [index["failing"], index["handled"]]
    handled, failing = runs[1], runs[0]
    assert handled["status"] == "OK" and handled["handled_failures"] == ["flaky"]
    assert handled["status_label"] == "OK with 1 handled failure"
    assert handled["title"] == "Handled web" and handled["actor"] == "bob"
    assert handled["variables"]["TOKEN"] == "********"
    assert (
        failing["status"] == "NOK" and failing["status_label"] == "NOK" and failing["handled_failures"] == []
    )
    assert handled["colour"]["stroke"] != failing["colour"]["stroke"]


async def test_runs_list_filters(jp_fetch, index):
    assert [r["id"] for r in (await get_json(jp_fetch, "runs", status="nok"))["runs"]] == [index["failing"]]
    assert [r["id"] for r in (await get_json(jp_fetch, "runs", workflow="Failing"))["runs"]] == [
        index["failing"]
    ]
    assert [r["id"] for r in (await get_json(jp_fetch, "runs", actor="bob"))["runs"]] == [index["handled"]]
    assert len((await get_json(jp_fetch, "runs", limit="1"))["runs"]) == 1
    assert (await get_json(jp_fetch, "runs", status="ABORTED"))["runs"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "DONE"}, "status must be one of"),
        ({"limit": "x"}, "whole number"),
        ({"limit": "0"}, "between"),
    ],
)
async def test_runs_list_bad_arguments_are_400(jp_fetch, index, params, message):
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("playbook-nb", "api", "runs", params=params)
    assert err.value.code == 400
    assert message in json.loads(err.value.response.body)["message"]


async def test_run_detail_has_nodes_attempts_decisions_events_and_no_secret(jp_fetch, index):
    response = await jp_fetch("playbook-nb", "api", "runs", str(index["handled"]))
    body = response.body.decode()
    assert SECRET not in body
    data = json.loads(body)
    assert data["run"]["id"] == index["handled"] and data["run"]["status"] == "OK"
    assert {n["node"]: n["state"] for n in data["nodes"]} == {"flaky": "SKIPPED", "next": "OK"}
    assert [n["handled_failure"] for n in data["nodes"]] == [True, False]
    flaky = next(a for a in data["attempts"] if a["node"] == "flaky")
    assert flaky["exit_code"] == 4 and "using ********" in flaky["stdout"]
    assert data["decisions"] == []
    kinds = [e["kind"] for e in data["events"]]
    assert kinds[0] == "run_started" and kinds[-1] == "run_state"
    assert [e["seq"] for e in data["events"]] == list(range(1, len(kinds) + 1))
    assert "snapshot" not in data["run"] and "runbook_text" not in data["run"]


async def test_run_detail_masks_the_secrets_the_server_was_given(jp_fetch, index, monkeypatch):
    """A value not declared secret in the runbook, but handed to the server as PLAYBOOK_SECRET_*, is masked
    in every answer, as `export --html` masks it."""
    parts = ("playbook-nb", "api", "runs", str(index["failing"]))
    assert "deploy-key-7f3a" in (await jp_fetch(*parts)).body.decode()
    monkeypatch.setenv("PLAYBOOK_SECRET_DEPLOY_KEY", "deploy-key-7f3a")
    for extra in ((), ("report",)):
        text = (await jp_fetch(*parts, *extra)).body.decode()
        assert "deploy-key-7f3a" not in text and "********" in text
    listing = (await jp_fetch("playbook-nb", "api", "runs")).body.decode()
    assert "deploy-key-7f3a" not in listing


async def test_report_is_the_html_post_mortem(jp_fetch, index):
    response = await jp_fetch("playbook-nb", "api", "runs", str(index["handled"]), "report")
    assert response.code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    html = response.body.decode()
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "Handled web" in html and 'data-node-id="flaky"' in html
    assert SECRET not in html


@pytest.mark.parametrize("parts", [("runs", "999"), ("runs", "999", "report"), ("runs", "abc")])
async def test_unknown_run_is_404(jp_fetch, index, parts):
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("playbook-nb", "api", *parts)
    assert err.value.code == 404


@pytest.mark.parametrize("parts", [("runs",), ("runs", "1"), ("runs", "1", "report"), ("me",)])
async def test_no_token_no_answer(http_server_client, jp_base_url, index, parts):
    url = jp_base_url + "playbook-nb/api/" + "/".join(parts)
    with pytest.raises(HTTPClientError) as err:
        await http_server_client.fetch(url)
    assert err.value.code == 403
    with pytest.raises(HTTPClientError) as err:
        await http_server_client.fetch(url, headers={"Authorization": "token wrong"})
    assert err.value.code == 403


async def test_filed_notebook_is_served_from_the_artifacts(jp_fetch, index, tmp_path, monkeypatch):
    import nbformat

    location = os.environ.get("PLAYBOOK_DB_URL") or os.environ["PLAYBOOK_DB_PATH"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('deploy-key-7f3a')")])
    executed = tmp_path / "executed.ipynb"
    nbformat.write(nb, executed)
    with Store.open(location) as store:  # as the headless face files it
        store.set_notebook_path(
            index["failing"], store.put_artifact(index["failing"], "notebook.ipynb", executed)
        )
    monkeypatch.setenv("PLAYBOOK_SECRET_DEPLOY_KEY", "deploy-key-7f3a")
    data = await get_json(jp_fetch, "runs", str(index["failing"]), "notebook")
    assert "".join(data["cells"][0]["source"]) == "print('********')"
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("playbook-nb", "api", "runs", str(index["handled"]), "notebook")
    assert err.value.code == 404 and "no filed notebook" in json.loads(err.value.response.body)["message"]


async def test_new_runbook_writes_a_valid_starter_without_overwriting(jp_fetch, jp_root_dir):
    from playbook_nb.app.inputs import load_runbook

    (jp_root_dir / "ops").mkdir()
    paths = []
    for _ in range(2):
        response = await jp_fetch(
            "playbook-nb", "api", "runbooks", method="POST", body=json.dumps({"directory": "ops"})
        )
        assert response.code == 201
        paths.append(json.loads(response.body)["path"])
    assert paths == ["ops/new_runbook.playbook.toml", "ops/new_runbook_2.playbook.toml"]
    runbook = load_runbook(jp_root_dir / paths[0])
    assert runbook.meta.title == "New runbook" and runbook.nodes
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch(
            "playbook-nb", "api", "runbooks", method="POST", body=json.dumps({"directory": "nope"})
        )
    assert err.value.code == 404


async def test_a_run_of_a_runbook_notebook_has_no_filed_notebook(jp_fetch, index):
    location = os.environ.get("PLAYBOOK_DB_URL") or os.environ["PLAYBOOK_DB_PATH"]
    with Store.open(location) as store:  # what the kernel records for a notebook opened on its TOML
        store.set_notebook_path(index["handled"], "/srv/ops/disk.playbook.toml")
    (listed,) = [r for r in (await get_json(jp_fetch, "runs"))["runs"] if r["id"] == index["handled"]]
    assert listed["filed_notebook"] is False and listed["notebook_path"] == "/srv/ops/disk.playbook.toml"
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("playbook-nb", "api", "runs", str(index["handled"]), "notebook")
    assert err.value.code == 404


async def test_an_orphaned_run_says_so_and_a_driven_one_names_its_owner(jp_fetch, index, tmp_path):
    """Issue 24 point 2: a RUNNING run whose owner process is gone is "orphaned (owner gone since ...)" in
    the REST API too; one whose owner lives says who drives it."""
    import subprocess

    from playbook_nb.adapters.store.owner import Owner

    location = os.environ.get("PLAYBOOK_DB_URL") or os.environ["PLAYBOOK_DB_PATH"]
    dead = subprocess.Popen(["true"])
    dead.wait()
    with Store.open(location) as store:
        ids = {}
        for name, pid in (("orphan", dead.pid), ("live", os.getpid())):
            me = Owner.this_process("carol", kind="playbook-nb run")
            run = store.create_run(
                workflow=name, title=name, runbook_text="x", runbook_sha256="0" * 64, runbook_version=None,
                variables={}, params={}, trigger="terminal", actor="carol", host=me.host, mode="interactive",
                node_ids=["a"], owner=Owner(**{**me.__dict__, "pid": pid, "pid_start": None}),
            )  # fmt: skip
            ids[name] = run.id
    runs = {r["id"]: r for r in (await get_json(jp_fetch, "runs"))["runs"]}
    orphan, live = runs[ids["orphan"]], runs[ids["live"]]
    assert orphan["status"] == "RUNNING" and orphan["orphaned"] is True
    assert orphan["owner_note"].startswith("orphaned (owner gone since ")
    assert live["orphaned"] is False and live["owner_note"].startswith(
        "driven by carol (playbook-nb run, pid "
    )
    assert live["owner"]["actor"] == "carol" and "token" not in json.dumps(live)
    detail = await get_json(jp_fetch, "runs", str(ids["orphan"]))
    assert detail["run"]["orphaned"] is True
    assert runs[index["failing"]]["owner_note"] == ""  # a finished run has no owner to speak of
