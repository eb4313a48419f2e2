"""The built-in step types (http, schema_check, metrics_publish) run for real against local servers the tests
start on 127.0.0.1: a REST + GraphQL application and a recorder that answers like a Prometheus Pushgateway."""

from __future__ import annotations

import json

import pytest

from playbook_nb.adapters.executors.local import LocalExecutor
from playbook_nb.adapters.store import Store
from playbook_nb.app.recorder import load_outputs
from playbook_nb.app.session import RunOptions, RunSession
from playbook_nb.domain.validation import parse_runbook
from tests.local_servers import EntityApi, PushgatewayRecorder

ENTITIES = [{"id": 1, "name": "alpha"}, {"id": 2, "name": "beta"}, {"id": "three", "name": 3}]
SCHEMA = {
    "type": "object",
    "required": ["id", "name"],
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
}
QUERY = "query Enrich($entities: [Entity!]!) { enrichEntities(entities: $entities) { id risk } }\n"


def pipeline(api: str, gateway: str) -> str:
    return f"""
[variables]
API = {{ default = "{api}" }}
TOKEN = {{ required = true }}

[runbook]
title = "enrichment"

[ingest]
type = "Function"
plugin = "http"
function = "fetch"
function_params = {{ source_url = "{{{{ API }}}}/entities", auth_token = "{{{{ TOKEN }}}}" }}
outputs = {{ entities = "$.data.entities", ids = "$.data.entities[*].id" }}

[validate]
type = "Function"
plugin = "schema_check"
function = "validate"
function_params = {{ entities = "{{{{ steps.ingest.outputs.entities }}}}", schema = "entity-v2.json" }}
outputs = {{ valid_entities = "$.valid", errors = "$.errors" }}

[enrich]
type = "Function"
plugin = "http"
function = "call"
function_params = {{ endpoint = "/graphql", base_url = "{{{{ API }}}}", query = "enrich.graphql", entities = "{{{{ steps.validate.outputs.valid_entities }}}}" }}
outputs = {{ enriched = "$.data.enrichEntities" }}

[report]
type = "Function"
plugin = "metrics_publish"
function = "push"
function_params = {{ gateway = "{gateway}", job = "enrichment", metrics = {{ entities_processed = "{{{{ steps.enrich.outputs.enriched | length }}}}", schema_errors = "{{{{ steps.validate.outputs.errors | length }}}}" }} }}
outputs = {{ published = true }}
"""


@pytest.fixture(scope="module")
def running_servers():
    with EntityApi(entities=ENTITIES) as api, PushgatewayRecorder() as gateway:
        yield api, gateway


@pytest.fixture
def servers(running_servers):
    """The module's two servers, with what they recorded for earlier tests forgotten."""
    for server in running_servers:
        server.requests.clear()
    return running_servers


def run(tmp_path, text: str, values: dict):
    book = tmp_path / "enrich.playbook.toml"
    book.write_text(text)
    (tmp_path / "entity-v2.json").write_text(json.dumps(SCHEMA))
    (tmp_path / "enrich.graphql").write_text(QUERY)
    from playbook_nb.app.inputs import load_runbook

    runbook = load_runbook(book)
    store = Store.open(tmp_path / "runs.db")
    session = RunSession.start(
        runbook, values, store, RunOptions(headless=True), namespace={}, executor=LocalExecutor()
    )
    session.drive(lambda *_: None)
    session.close()
    return store, session.run_id


def test_fetch_validate_enrich_publish_against_real_servers(tmp_path, servers):
    api, gateway = servers
    store, run_id = run(tmp_path, pipeline(api.url, gateway.url), {"API": api.url, "TOKEN": api.token})
    with store:
        states = {r.node_id: r.state for r in store.node_states(run_id)}
        assert states == {"ingest": "OK", "validate": "OK", "enrich": "OK", "report": "OK"}
        outputs = load_outputs(store, run_id)
    assert outputs["ingest"]["ids"] == [1, 2, "three"]
    assert [e["id"] for e in outputs["validate"]["valid_entities"]] == [1, 2]
    assert {(e["index"], e["path"], e["type"]) for e in outputs["validate"]["errors"]} == {
        (2, "$.id", "schema_validation"),
        (2, "$.name", "schema_validation"),
    }
    assert outputs["enrich"]["enriched"] == [
        {"id": 1, "name": "alpha", "risk": 5},
        {"id": 2, "name": "beta", "risk": 4},
    ]
    assert outputs["report"] == {"published": True}
    # the application saw the bearer token, a GraphQL body with the valid entities as a variable
    fetch, graphql = api.requests
    assert fetch.headers["Authorization"] == f"Bearer {api.token}"
    body = json.loads(graphql.body)
    assert body["query"] == QUERY and [e["id"] for e in body["variables"]["entities"]] == [1, 2]
    # the Pushgateway got a PUT of both gauges under the job
    (push,) = gateway.pushes
    assert push.method == "PUT" and push.path == "/metrics/job/enrichment"
    assert "entities_processed 2.0" in push.text and "schema_errors 2.0" in push.text


def test_a_token_in_a_header_is_masked_in_the_whole_record(tmp_path, servers):
    api, gateway = servers
    store, run_id = run(tmp_path, pipeline(api.url, gateway.url), {"API": api.url, "TOKEN": api.token})
    store.close()
    # TOKEN is not declared secret; it reached the plugin's auth_token, which the http plugin declares secret
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix != ".toml":
            assert api.token.encode() not in path.read_bytes(), path
    with Store.open(tmp_path / "runs.db") as store:
        attempt = store.attempts(run_id, "ingest")[-1]
    assert "Authorization: ********" in attempt.stdout
    assert "GET " + api.url + "/entities" in attempt.stdout and "-> 200" in attempt.stdout


def test_a_wrong_status_fails_the_step_in_one_line(tmp_path, servers):
    api, gateway = servers
    store, run_id = run(tmp_path, pipeline(api.url, gateway.url), {"API": api.url, "TOKEN": "wrong-token"})
    with store:
        states = {r.node_id: r.state for r in store.node_states(run_id)}
        error = store.attempts(run_id, "ingest")[-1].error
    assert states["ingest"] in ("NOK", "SKIPPED") and states["report"] == "SKIPPED"
    assert (
        error
        == f'HttpStatusError: GET {api.url}/entities answered 401, expected 200: {{"error": "unauthorized"}}'
    )
    assert gateway.pushes == []


def test_metrics_publish_without_a_gateway_says_where_to_set_one(tmp_path, monkeypatch):
    monkeypatch.delenv("PLAYBOOK_PUSHGATEWAY_URL", raising=False)
    text = """[runbook]
title = "m"
[report]
type = "Function"
plugin = "metrics_publish"
function = "push"
function_params = { metrics = { x = 1 } }
"""
    store, run_id = run(tmp_path, text, {})
    with store:
        error = store.attempts(run_id, "report")[-1].error
    assert error.startswith("plugin 'metrics_publish': no Pushgateway: give gateway")


def test_invalid_jsonpath_output_is_a_validation_error_naming_the_node():
    from playbook_nb.domain.errors import RunbookError

    with pytest.raises(RunbookError, match=r"node 'a', field 'outputs'.*invalid JSONPath '\$\.\['"):
        parse_runbook(
            '[runbook]\ntitle = "x"\n[a]\ntype = "Function"\nplugin = "http"\nfunction = "fetch"\n'
            'function_params = { url = "http://x" }\noutputs = { e = "$.[" }\n'
        )
