"""Runbooks in OPS-001's YAML shape: the same model as TOML, in every face (validate, terminal and headless
runs, replay, test, convert), errors naming the YAML path, the legal basis on record."""

from __future__ import annotations

import json
import re

import pytest

from playbook_nb.adapters.executors.local import LocalExecutor
from playbook_nb.app.inputs import load_runbook
from playbook_nb.app.rehearsal import load_pack, run_case
from playbook_nb.domain.convert_format import convert_text
from playbook_nb.domain.errors import RunbookError
from playbook_nb.domain.validation import parse_runbook
from tests.conftest import DEPLOY, SHARED, VALID_RUNBOOKS, run_cli

SEED = next((SHARED / "seeds").glob("004_*.txt"))
REPO_PACK = SHARED.parent / "wt"  # (unused; packs come from examples/)

YAML_BOOK = """---
id: rb-yaml-drill
name: YAML drill
version: 1.0.0
owner: sre
legal_basis: "Change ticket CHG-42 authorises restarts"
assumptions:
  - staging_only: true
kpis: {max_duration_seconds: 60, min_success_rate: 0.9}
variables:
  GREETING: {default: hello}
steps:
  - id: hello
    type: Command
    command: "echo ${GREETING} from yaml"
    outputs: {word: 'regex:^(\\w+)'}
  - id: shout
    type: Command
    command: "echo ${steps.hello.outputs.word} again"
"""


def seed_example() -> str:
    return re.search(r"```yaml\n(---\nid: rb-001.*?)```", SEED.read_text(), re.S).group(1)


def test_the_seed_example_validates_as_written(tmp_path):
    book = tmp_path / "rb-001.yml"
    book.write_text(seed_example())
    done = run_cli("validate", str(book))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "API_TOKEN (required) (secret)" in done.stdout and "nodes:     5" in done.stdout
    runbook = load_runbook(book)
    assert [(n.id, n.plugin, n.function) for n in runbook.nodes.values()] == [
        ("ingest", "http", "fetch"),
        ("validate", "schema_check", "validate"),
        ("enrich", "http", "call"),
        ("report", "metrics_publish", "push"),
        ("screenshot_ui", "ui_screenshot", "capture"),
    ]
    assert runbook.meta.legal_basis.startswith("Per IC Policy 12.3")
    assert [str(a) for a in runbook.meta.assumptions][0] == "source_data_validated: true"
    assert runbook.meta.kpis.max_error_rate == 0.05 and runbook.meta.kpis.max_duration == 300
    assert runbook.nodes["validate"].on_failure == "continue"  # log_and_continue
    assert runbook.nodes["report"].function_params["metrics"]["entities_processed"] == (
        "{{ len(steps.enrich.outputs.enriched) }}"
    )


@pytest.mark.parametrize(
    "change, message",
    [
        ("on_failure: abort", "on_failure: retry_forever"),
        ("type: data_fetch", "type: sql_query"),
        ("depends_on: [ingest]", "depends_on: [ingestt]"),
        ('schema: "entity-v2.json"', 'schema: "${steps.enrich.outputs.enriched}"'),
        ("max_duration_seconds: 300", "max_duration_seconds: soon"),
        ("min_success_rate: 0.95", "min_success_rate: 95"),
        ("max_error_rate: 0.05", "max_error_rate: 0.05\n  p99_ms: 200"),
    ],
)
def test_errors_name_the_yaml_path_and_line(tmp_path, change, message):
    text = seed_example().replace(change, message, 1)
    book = tmp_path / "bad.yml"
    book.write_text(text)
    done = run_cli("validate", str(book))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    line = (
        done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.stdout.strip().splitlines()[-1]
    )
    expected_where = {
        "on_failure: retry_forever": r"steps\[0\]\.on_failure \(step 'ingest', line 2\d\): expected abort or log_and_continue",
        "type: sql_query": r"steps\[0\]\.type \(step 'ingest', line 2\d\): unknown step type 'sql_query'",
        "depends_on: [ingestt]": r"steps\[1\]\.depends_on \(step 'validate', line 3\d\): .*ingestt",
        'schema: "${steps.enrich.outputs.enriched}"': r"steps\[1\]\.inputs\.schema \(step 'validate', line 3\d\): "
        r"steps\.enrich: node 'enrich' is not upstream",
        # the KPIs by the seed's names, never the TOML ones
        "max_duration_seconds: soon": r"kpis\.max_duration_seconds \(line 14\): expected a duration",
        "min_success_rate: 95": r"kpis\.min_success_rate \(line 15\): expected a number from 0 to 1, got 95$",
        "max_error_rate: 0.05\n  p99_ms: 200": r"kpis \(line 13\): unknown KPI 'p99_ms' \(expected "
        r"max_duration_seconds, max_error_rate, min_success_rate\)$",
    }[message]
    assert re.search(expected_where, line), line
    assert str(book) in line


KEYED_STEPS = """  - id: ingest
    type: data_fetch
    inputs:
      source_url: "${API}/entities"
      headers: {X-Api-Key: "${API_KEY}", Accept: application/json}
    outputs: {ids: "$.data.entities[*].id"}
  - id: echo_ids
    type: Command
    command: "echo ids ${steps.ingest.outputs.ids}"
"""


def test_a_yaml_runbook_runs_in_the_terminal_and_headless_faces_and_replays(tmp_path):
    """The drill plus a data_fetch whose X-Api-Key header carries API_KEY (not declared secret: the header
    makes it one): terminal and headless runs, show, replay and the HTML report; the key reached the
    application and nowhere else (notebook, HTML, index, artifacts, what the commands printed)."""
    from playbook_nb.adapters.store import Store
    from tests.local_servers import EntityApi

    with EntityApi(entities=[{"id": 1, "name": "alpha"}, {"id": 2, "name": "beta"}]) as api:
        book = tmp_path / "drill.yml"
        text = YAML_BOOK.replace(
            "  GREETING: {default: hello}\n",
            f'  GREETING: {{default: hello}}\n  API: {{default: "{api.url}"}}\n  API_KEY: {{required: true}}\n',
        )
        book.write_text(text + KEYED_STEPS)
        assert "API_KEY" in load_runbook(book).secret_names
        db, executed = tmp_path / "runs.db", tmp_path / "executed.ipynb"
        env = {"DRILL_API_KEY": api.token}
        key = ("--vars-env", "DRILL_", "--state-path", str(db))
        terminal = run_cli("run", str(book), *key, env=env)
        assert terminal.returncode == 0, terminal.stdout + terminal.stderr
        assert "hello again" in terminal.stdout and "ids [1, 2]" in terminal.stdout
        headless = run_cli("run", str(book), "--headless", *key, "-o", str(executed), env=env, timeout=180)
        assert headless.returncode == 0, headless.stdout + headless.stderr
        with Store.open(db) as store:
            runs = store.list_runs()
        assert sorted(r.status for r in runs) == ["OK", "OK"]
        first = min(r.id for r in runs)
        shown = run_cli("show", str(first), "--state-path", str(db))
        assert "legal basis: Change ticket CHG-42 authorises restarts" in shown.stdout
        replay = run_cli(
            "replay", str(first), "--state-path", str(db), env={"PLAYBOOK_SECRET_API_KEY": api.token}
        )
        assert replay.returncode == 0 and "REPLAY VERIFIED" in replay.stdout, replay.stdout + replay.stderr
        html = tmp_path / "report.html"
        exported = run_cli("export", str(first), "--html", str(html), "--state-path", str(db))
        assert exported.returncode == 0, exported.stderr
        fetches = [r for r in api.requests if r.path == "/entities"]
    assert [r.headers["X-Api-Key"] for r in fetches] == [api.token] * 3  # terminal, headless, replay
    page = html.read_text()
    assert '<td class="legal-basis">Change ticket CHG-42 authorises restarts</td>' in page
    assert "X-Api-Key: ********" in page and "X-Api-Key: ********" in executed.read_text()
    for done in (terminal, headless, shown, replay, exported):
        assert api.token not in done.stdout + done.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert api.token.encode() not in path.read_bytes(), path


def test_test_checks_assumptions_against_the_fixture(tmp_path):
    book = tmp_path / "drill.yml"
    book.write_text(YAML_BOOK)
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(
        json.dumps({"assumptions": {"staging_only": True}, "nodes": {"hello": {"stdout": "hi\n"}}})
    )
    bad.write_text(
        json.dumps({"assumptions": {"staging_only": False}, "nodes": {"hello": {"stdout": "hi\n"}}})
    )
    passed = run_cli("test", str(book), "--fixture", str(good))
    assert passed.returncode == 0, passed.stdout
    lines = passed.stdout.splitlines()
    assert "✓ Assumption: staging_only" in lines and "✓ Step: hello (ok)" in lines and lines[-1] == "PASS"
    assert any(line.startswith("✓ KPI: max_duration_seconds (") for line in lines)
    failed = run_cli("test", str(book), "--fixture", str(bad))
    assert failed.returncode == 1
    assert "✗ Assumption: staging_only (fixture: False == True)" in failed.stdout.splitlines()
    assert failed.stdout.splitlines()[-1] == "FAIL"


@pytest.mark.parametrize("path", VALID_RUNBOOKS, ids=lambda p: p.name)
def test_every_acceptance_runbook_converts_to_yaml_and_back_to_the_same_model(path):
    toml_text = path.read_text()
    yaml_text = convert_text(toml_text, str(path), "yaml")
    back = convert_text(yaml_text, "converted.yml", "toml")
    original, via_yaml, round_trip = (
        parse_runbook(toml_text, str(path)),
        parse_runbook(yaml_text, "x.yml"),
        parse_runbook(back, "x.playbook.toml"),
    )
    for other in (via_yaml, round_trip):
        assert list(other.nodes) == list(original.nodes)
        for node_id, node in original.nodes.items():
            twin = other.nodes[node_id]
            assert (twin.type, twin.depends_on, twin.plugin, twin.function, twin.critical is True) == (
                node.type,
                node.depends_on,
                node.plugin,
                node.function,
                node.critical is True,
            )
        assert other.secret_names == original.secret_names
        assert set(other.variables) == set(original.variables)


def test_the_deploy_pack_rehearses_the_same_with_the_yaml_runbook(tmp_path):
    yaml_book = tmp_path / "deploy_pipeline.yml"
    yaml_book.write_text(convert_text(DEPLOY.read_text(), str(DEPLOY), "yaml"))
    pack = SHARED.parent / "main" / "examples" / "acceptance" / "deploy_pipeline"
    from tests.conftest import REPO

    pack = REPO / "examples" / "acceptance" / "deploy_pipeline"
    for case in load_pack(pack):
        toml_result = run_case(case, executor=LocalExecutor())
        case.runbook = yaml_book
        yaml_result = run_case(case, executor=LocalExecutor())
        assert yaml_result.ok and (yaml_result.status, yaml_result.states) == (
            toml_result.status,
            toml_result.states,
        )


def test_convert_command_refuses_to_overwrite_and_writes_a_loadable_file(tmp_path):
    out = tmp_path / "deploy.yml"
    done = run_cli("convert", str(DEPLOY), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert load_runbook(out).format == "yaml"
    again = run_cli("convert", str(DEPLOY), "-o", str(out))
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr + again.stdout
    with pytest.raises(RunbookError):
        parse_runbook("id: x\nsteps: []\n", "empty.yml")
