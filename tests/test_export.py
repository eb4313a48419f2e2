"""`export RUN --html / --notebook`: the post-mortem report of real runs, made through the real CLI."""

from __future__ import annotations

import re
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from conftest import FIXTURES, run_cli

DEPLOY = FIXTURES / "deploy_pipeline.playbook.toml"
ACTOR = "alice@example.com"
DEPLOY_NODES = [
    "build_app",
    "run_tests",
    "security_scan",
    "approve_deploy",
    "deploy_application",
    "health_check",
    "rollback",
    "notify_success",
    "notify_failure",
]


@pytest.fixture(scope="module")
def deploy_db(tmp_path_factory):
    """Run 1: the deploy pipeline headless (papermill) with a failing health check; run 2: same, terminal."""
    db = tmp_path_factory.mktemp("export") / "state" / "runs.db"
    common = ["--var", "ENVIRONMENT=staging", "--var", "HEALTHY=false", "--approve", "approve_deploy"]
    common += ["--actor", ACTOR, "--comment", "go ahead, change CHG-42", "--state-path", str(db)]
    headless = run_cli("run", str(DEPLOY), "--headless", *common, timeout=300)
    assert headless.returncode == 0, headless.stdout + headless.stderr
    terminal = run_cli("run", str(DEPLOY), *common)
    assert terminal.returncode == 0, terminal.stdout + terminal.stderr
    return db


class _Refs(HTMLParser):
    """Every tag and every src/href/... reference in a document."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "srcset", "action", "poster", "data") and value:
                self.refs.append(value)


def _export_html(db, run_id, out, *extra, env=None):
    result = run_cli("export", str(run_id), "--html", str(out), "--state-path", str(db), *extra, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return out.read_text(encoding="utf-8")


def test_html_report_of_a_headless_run_is_complete_and_offline(deploy_db, tmp_path):
    html = _export_html(deploy_db, 1, tmp_path / "report.html")

    # header
    assert "myapp deployment pipeline" in html
    assert "1.0.0" in html
    conn = sqlite3.connect(deploy_db)
    sha, notebook = conn.execute("SELECT runbook_sha256, notebook_path FROM runs WHERE id = 1").fetchone()
    attempts = conn.execute("SELECT COUNT(*) FROM attempts WHERE run_id = 1").fetchone()[0]
    conn.close()
    assert sha in html
    assert "papermill (headless)" in html
    assert "Deploy myapp to staging" in html  # description rendered with the recorded variables

    # the DAG, drawn inline and coloured by final state
    svg = re.search(r"<svg\b.*?</svg>", html, re.S)
    assert svg, "no inline SVG"
    for node_id in DEPLOY_NODES:
        assert f'data-node-id="{node_id}"' in svg.group(0)
        assert f'id="node-{node_id}"' in html  # a section per node
    assert 'data-node-id="health_check" data-state="skipped"' in svg.group(0)
    assert 'data-node-id="rollback" data-state="ok"' in svg.group(0)

    # the timeline: one bar per attempt
    assert html.count('class="tl-bar attempt-bar"') == attempts >= 6
    assert 'data-status="NOK"' in html  # the failed health check

    # attempts: exit code and escaped output
    section = html[html.index('id="node-health_check"') :]
    section = section[: section.index("</section>")]
    assert "exit code 1" in section and "unhealthy" in section

    # the approval, with who and the comment
    decisions = html[html.index('id="decisions"') :]
    decisions = decisions[: decisions.index("</table>")]
    assert "approve_deploy" in decisions and ACTOR in decisions and "change CHG-42" in decisions

    # the event log, verified
    assert "Hash chain verified" in html and "run_started" in html

    # self-contained: no script, no stylesheet link, nothing fetched from the network
    parser = _Refs()
    parser.feed(html)
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    assert all(ref.startswith("#") for ref in parser.refs), parser.refs
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", html, re.I)
    assert "@import" not in html
    assert notebook in html


def test_report_of_a_terminal_run_records_the_decision(deploy_db, tmp_path):
    html = _export_html(deploy_db, 2, tmp_path / "terminal.html")
    assert "terminal (interactive)" in html or "terminal (headless)" in html
    assert ACTOR in html
    assert html.count('class="tl-bar attempt-bar"') >= 6


def test_output_is_escaped_not_markup(tmp_path):
    runbook = tmp_path / "html.playbook.toml"
    runbook.write_text(
        '[runbook]\ntitle = "Escape <check>"\n\n[shout]\ntype = "Command"\n'
        "command_name = \"echo '<script>alert(1)</script> & <b>x</b>'\"\n",
        encoding="utf-8",
    )
    db = tmp_path / "runs.db"
    result = run_cli("run", str(runbook), "--state-path", str(db))
    assert result.returncode == 0, result.stdout + result.stderr
    html = _export_html(db, 1, tmp_path / "r.html")
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;x&lt;/b&gt;" in html
    assert "Escape &lt;check&gt;" in html


def test_notebook_export_copies_the_executed_notebook(deploy_db, tmp_path):
    out = tmp_path / "exported.ipynb"
    result = run_cli("export", "1", "--notebook", str(out), "--state-path", str(deploy_db))
    assert result.returncode == 0, result.stdout + result.stderr
    conn = sqlite3.connect(deploy_db)
    (notebook,) = conn.execute("SELECT notebook_path FROM runs WHERE id = 1").fetchone()
    conn.close()
    assert out.read_bytes() == Path(notebook).read_bytes()
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata["playbook_nb"]["runbook_text"]


def test_notebook_export_of_a_terminal_run_is_a_clear_error(deploy_db, tmp_path):
    out = tmp_path / "none.ipynb"
    result = run_cli("export", "2", "--notebook", str(out), "--state-path", str(deploy_db))
    assert result.returncode == 2
    assert "run 2 has no executed notebook" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_export_and_html_together(deploy_db, tmp_path):
    result = run_cli(
        "export", "1", "--html", str(tmp_path / "a.html"), "--notebook", str(tmp_path / "a.ipynb"),
        "--state-path", str(deploy_db),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.html").stat().st_size > 10_000 and (tmp_path / "a.ipynb").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["export", "99", "--html", "x.html"], "no run 99"),
        (["export", "1"], "give --html FILE and/or --notebook FILE"),
        (["export", "1", "--html", "x.html", "--secret-env", "PLAYBOOK_NB_TEST_UNSET"], "is not set"),
    ],
)
def test_export_errors(deploy_db, tmp_path, args, message):
    result = run_cli(*args, "--state-path", str(deploy_db), cwd=tmp_path, env={"PLAYBOOK_NB_TEST_UNSET": ""})
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x.html").exists()


def test_export_masks_values_named_by_secret_env(deploy_db, tmp_path):
    """A value named by --secret-env is masked in the report; here the 'secret' is a word the run printed."""
    out = tmp_path / "masked.html"
    html = _export_html(deploy_db, 1, out, "--secret-env", "LEAKY", env={"LEAKY": "unhealthy"})
    assert "unhealthy" not in html
    assert "********" in html


def test_a_state_looks_the_same_in_terminal_html_svg_widget_and_api(tmp_path):
    """One presentation table: the terminal's mark, the HTML report's badge, the inline SVG, the widget's
    stylesheet and the REST API's colour of each node agree with `playbook_nb.presentation.look`."""
    from playbook_nb.adapters.store import Store
    from playbook_nb.faces.run_json import node_json
    from playbook_nb.kernel_ext.widget import stylesheet
    from playbook_nb.presentation import look

    db = tmp_path / "runs.db"
    args = ["--var", "ENVIRONMENT=staging", "--var", "HEALTHY=false", "--approve", "approve_deploy"]
    terminal = run_cli("run", str(DEPLOY), *args, "--actor", ACTOR, "--state-path", str(db))
    assert terminal.returncode == 0, terminal.stdout + terminal.stderr
    store = Store.open(db)
    rows = {row.node_id: row for row in store.node_states(1)}
    store.close()
    states = {node_id: row.state for node_id, row in rows.items()}
    assert {"OK", "SKIPPED"} <= set(states.values())  # the run shows several states

    html = _export_html(db, 1, tmp_path / "report.html")
    widget: dict[str, dict] = {}
    for rule in stylesheet():
        widget.setdefault(rule["selector"], {}).update(rule["style"])
    for node_id, state in states.items():
        shown = look(state)
        # terminal: the node's line starts with its state's mark
        assert re.search(rf"^{re.escape(shown.mark)} {node_id} {state}\b", terminal.stdout, re.M), node_id
        # HTML: the node's badge
        section = re.search(rf'<section class="node" id="node-{node_id}".*?</section>', html, re.S).group(0)
        assert f'background: {shown.fill}; border-color: {shown.stroke}">{state}' in section, node_id
        # SVG: the node's shape
        group = re.search(rf'<g class="node[^"]*" data-node-id="{node_id}".*?</g>', html, re.S).group(0)
        assert f'fill="{shown.fill}" stroke="{shown.stroke}"' in group, node_id
        # widget and REST API
        assert widget[f'node[state = "{state}"]']["background-color"] == shown.fill
        assert node_json(rows[node_id])["colour"] == {"fill": shown.fill, "stroke": shown.stroke}
