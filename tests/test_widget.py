"""Kernel-side tests of the cockpit widget (no browser): a real RunSession over a real SQLite index, clicks
simulated by calling the button handlers, assertions on the node data the browser would draw, on the buttons'
disabled flags and on the rows in the index."""

from __future__ import annotations

import sqlite3

import pytest

pytest.importorskip("ipycytoscape")

from playbook_nb.adapters.executors.local import LocalExecutor
from playbook_nb.adapters.export.dag_render import to_svg
from playbook_nb.adapters.store import Store
from playbook_nb.app.session import RunOptions, RunSession
from playbook_nb.domain.engine import NodeState, RunState
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.layering import MAX_PER_ROW
from playbook_nb.domain.validation import parse_runbook
from playbook_nb.kernel_ext.notebook_run import NotebookRun
from playbook_nb.kernel_ext.widget import RunbookWidget, stylesheet
from playbook_nb.kernel_ext.widget_layout import MAX_HEIGHT, MIN_HEIGHT, compute_layout
from playbook_nb.presentation import NODE_LEGEND, READY, look

RUNBOOK = """\
[runbook]
title = "cockpit drill"

[variables]
TARGET = { default = "web-1" }

[check]
type = "Command"
command_name = "echo checking {{TARGET}}"

[flaky]
type = "Command"
command_name = "echo flaky says no >&2; exit 3"
depends_on = ["check"]

[gate]
type = "Manual"
prompt_after = "Restart {{TARGET}}?"
depends_on = ["flaky"]
critical = true

[restart]
type = "Command"
command_name = "echo restarting {{TARGET}}"
depends_on = ["gate"]
critical = true

[report]
type = "Python"
code = "cockpit_answer = 6 * 7\\nprint('answer', cockpit_answer)"
depends_on = ["restart:success"]

[cleanup]
type = "Command"
command_name = "echo cleanup"
depends_on = ["restart:failure"]
"""

CRITICAL_FAILS = """\
[runbook]
title = "critical failure"

[boom]
type = "Command"
command_name = "exit 1"
critical = true

[after]
type = "Command"
command_name = "echo after"
depends_on = ["boom"]
"""


def make_widget(tmp_path, text: str = RUNBOOK, actor: str = "alice"):
    runbook = parse_runbook(text)
    values = {name: var.default for name, var in runbook.variables.items()}
    store = Store.open(tmp_path / "state" / "runs.db")
    options = RunOptions(headless=False, trigger="notebook", actor=actor)
    session = RunSession.start(runbook, values, store, options, namespace={}, executor=LocalExecutor())
    notebook_run = NotebookRun(session, headless=False)
    widget = RunbookWidget(notebook_run)
    notebook_run.widget = widget
    return widget, session, store


def states(widget) -> dict[str, str]:
    return {node_id: element.data["state"] for node_id, element in widget.nodes.items()}


def enabled(widget) -> set[str]:
    return {name for name, button in widget.buttons.items() if not button.disabled}


def db_rows(store, sql: str, *params):
    conn = sqlite3.connect(store.path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_graph_holds_every_node_and_edge_with_a_preset_layout(tmp_path):
    widget, session, _store = make_widget(tmp_path)
    cyto = widget.cyto
    assert cyto.cytoscape_layout["name"] == "preset"
    assert cyto.layout.height.endswith("px") and int(cyto.layout.height[:-2]) >= MIN_HEIGHT
    assert [n.data["id"] for n in cyto.graph.nodes] == list(session.runbook.nodes)
    gate = widget.nodes["gate"].data
    assert gate["type"] == "Manual" and gate["critical"] is True
    assert widget.nodes["check"].data["critical"] is False
    edges = {(e.data["source"], e.data["target"]): e.data["condition"] for e in cyto.graph.edges}
    assert edges[("restart", "report")] == "success"
    assert edges[("restart", "cleanup")] == "failure"
    assert edges[("check", "flaky")] == "plain"
    # every node has a distinct preset position, parents above children
    positions = {n.data["id"]: (n.position["x"], n.position["y"]) for n in cyto.graph.nodes}
    assert len(set(positions.values())) == len(positions)
    assert positions["check"][1] < positions["flaky"][1] < positions["gate"][1] < positions["restart"][1]
    # the stylesheet colours by state, gates are diamonds, critical nodes have a thick border
    selectors = {rule["selector"]: rule["style"] for rule in stylesheet()}
    assert selectors['node[state = "OK"]']["background-color"] == look("OK").fill
    assert selectors['node[type = "Manual"]']["shape"] == "diamond"
    assert selectors["node[?critical]"]["border-width"] > selectors["node"]["border-width"]
    assert selectors['node[state = "SKIPPED"]']["border-style"] == "dashed"
    # the legend names every state
    for state in NODE_LEGEND:
        assert look(state).word in widget.legend.value


def test_initial_states_show_what_is_ready(tmp_path):
    widget, _session, _store = make_widget(tmp_path)
    assert states(widget) == {
        "check": READY,
        "flaky": "PENDING",
        "gate": "PENDING",
        "restart": "PENDING",
        "report": "PENDING",
        "cleanup": "PENDING",
    }
    assert not widget.run_until_gate_button.disabled
    assert enabled(widget) == {"abort"}  # nothing selected: no node button, but Abort (issue 13)


def test_run_button_runs_the_node_and_the_panel_shows_it(tmp_path):
    widget, session, store = make_widget(tmp_path)
    seen = []
    widget.nodes["check"].observe(lambda change: seen.append(change["new"]["state"]), names="data")
    widget.on_node_click({"data": {"id": "check"}, "group": "nodes"})
    assert widget.selected == "check" and widget.nodes["check"].classes == "selected-node"
    assert enabled(widget) == {"run", "abort"}
    assert "echo checking web-1" in widget.details.value
    widget.buttons["run"].click()
    assert seen == ["RUNNING", "OK"]  # live restyle of the one node, then final
    assert states(widget)["check"] == "OK" and states(widget)["flaky"] == READY
    assert session.state("check") is NodeState.OK
    # live output was fed to the panel, then replaced by the stored stdout of the attempt
    assert any("checking web-1" in o.get("text", "") for o in widget.output_area.outputs)
    assert 'data-attempt="1" data-status="OK"' in widget.attempts.value
    assert [a.status for a in store.attempts(session.run_id, "check")] == ["OK"]
    assert enabled(widget) == {"abort"}  # nothing left to do on an OK node


def test_buttons_follow_the_gate_and_approve_records_the_actor(tmp_path):
    widget, session, store = make_widget(tmp_path)
    widget.select("gate")
    assert "approve" not in enabled(widget) and "run" not in enabled(widget)  # a gate is not "run"
    widget.on_run_until_gate()
    assert states(widget)["flaky"] == "NOK" and widget.nodes["flaky"].data["awaiting"] is True
    widget.select("flaky")
    assert enabled(widget) == {"retry", "skip", "abort"}  # non-critical failure
    widget.comment.value = "known flaky, skipping"
    widget.buttons["skip"].click()
    assert states(widget)["flaky"] == "SKIPPED"
    rows = db_rows(
        store, "SELECT state, reason FROM node_states WHERE run_id = ? AND node_id = 'flaky'", session.run_id
    )
    assert rows == [("SKIPPED", "skipped by operator")]
    # the gate starts (waits) only through "Run until a gate" or its cell; then Approve / Reject are valid
    assert states(widget)["gate"] == READY
    widget.select("gate")
    assert enabled(widget) == {"abort"}
    widget.run_until_gate_button.click()
    assert states(widget)["gate"] == "WAITING"
    assert enabled(widget) == {"approve", "reject", "abort"}  # critical gate: no skip
    widget.comment.value = "go"
    widget.buttons["approve"].click()
    assert states(widget)["gate"] == "OK" and states(widget)["restart"] == READY
    decisions = db_rows(
        store,
        "SELECT node_id, decision, actor, comment FROM decisions WHERE run_id = ? ORDER BY id",
        session.run_id,
    )
    assert decisions == [
        ("flaky", "skip", "alice", "known flaky, skipping"),
        ("gate", "approve", "alice", "go"),
    ]
    assert widget.comment.value == ""
    widget.on_run_until_gate()
    assert states(widget)["restart"] == "OK" and states(widget)["report"] == "OK"
    assert states(widget)["cleanup"] == "SKIPPED"
    assert session.namespace["cockpit_answer"] == 42  # the Python node ran in the kernel namespace
    assert session.status is RunState.OK
    assert widget.run_until_gate_button.disabled
    assert enabled(widget) == set()
    assert 'data-status="OK"' in widget.status.value


def test_retry_then_skip_a_non_critical_failure(tmp_path):
    widget, session, store = make_widget(tmp_path)
    widget.on_run_until_gate()
    widget.select("flaky")
    widget.buttons["retry"].click()
    assert [a.status for a in store.attempts(session.run_id, "flaky")] == ["NOK", "NOK"]
    assert [a.exit_code for a in store.attempts(session.run_id, "flaky")] == [3, 3]
    assert states(widget)["flaky"] == "NOK" and widget.nodes["flaky"].data["awaiting"] is True
    assert "flaky says no" in str(widget.output_area.outputs)
    assert widget.attempts.value.count('class="pb-attempt"') == 2
    widget.buttons["skip"].click()
    assert states(widget)["flaky"] == "SKIPPED" and widget.nodes["flaky"].data["awaiting"] is False


def test_skip_is_disabled_on_a_critical_failure_and_a_disabled_click_is_no_error(tmp_path):
    widget, session, store = make_widget(tmp_path, CRITICAL_FAILS)
    widget.on_run_until_gate()
    widget.select("boom")
    assert states(widget)["boom"] == "NOK"
    assert widget.buttons["skip"].disabled and not widget.buttons["retry"].disabled
    assert widget.buttons["approve"].disabled and widget.buttons["run"].disabled
    before = len(widget.messages)
    widget.on_skip()  # as if a stale front end sent the click anyway
    widget.on_approve()
    assert session.state("boom") is NodeState.NOK
    assert db_rows(store, "SELECT count(*) FROM decisions WHERE run_id = ?", session.run_id) == [(0,)]
    said = widget.messages[before:]
    assert len(said) == 2 and all("not possible for 'boom' now" in line for line in said), said
    widget.select(None)
    widget.on_retry()
    assert widget.messages[-1] == "retry: select a node first"
    assert db_rows(store, "SELECT count(*) FROM attempts WHERE node_id = 'boom'") == [(1,)]


def test_abort_disables_every_node_button(tmp_path):
    widget, session, store = make_widget(tmp_path, actor="bob")
    widget.select("check")
    widget.comment.value = "wrong host"
    widget.buttons["abort"].click()
    assert session.status is RunState.ABORTED
    assert enabled(widget) == set() and widget.run_until_gate_button.disabled
    run = store.get_run(session.run_id)
    assert run.status == "ABORTED" and "aborted from the widget" in (run.status_reason or "")
    assert "ABORTED" in widget.status.value


def test_a_playbook_error_in_a_button_is_one_line_in_the_panel(tmp_path):
    widget, _session, _store = make_widget(tmp_path)
    with widget.action("approve"):
        raise PlaybookError("cannot approve 'x': it does not wait for a decision")
    assert widget.messages[-1] == "approve: error: cannot approve 'x': it does not wait for a decision"


def test_cell_runs_update_the_widget_through_events_and_refresh(tmp_path):
    widget, session, _store = make_widget(tmp_path)
    widget.notebook_run.cell("check")  # what `%playbook_node check` does
    assert states(widget)["check"] == "OK" and states(widget)["flaky"] == READY
    # NotebookRun's own printer is back in place after widget actions
    widget.on_run_until_gate()
    assert widget.notebook_run._print_output in session.output_listeners


def test_close_unregisters_the_listeners(tmp_path):
    widget, session, _store = make_widget(tmp_path)
    widget.close()
    assert widget._on_event not in session.event_listeners
    assert widget._on_output not in session.output_listeners


def _wide_runbook(n: int) -> str:
    parts = ['[runbook]\ntitle = "wide"\n', '[start]\ntype = "Command"\ncommand_name = "true"\n']
    for i in range(n):
        parts.append(f'[step_{i:03d}]\ntype = "Command"\ncommand_name = "true"\ndepends_on = ["start"]\n')
    deps = ", ".join(f'"step_{i:03d}"' for i in range(n))
    parts.append(f'[done]\ntype = "Manual"\ndepends_on = [{deps}]\n')
    return "\n".join(parts)


def test_layout_of_a_wide_runbook_wraps_rows_and_caps_the_height():
    runbook = parse_runbook(_wide_runbook(58))
    layout = compute_layout(runbook)
    assert len(layout.positions) == 60
    rows: dict[float, list[str]] = {}
    for node_id, (_x, y) in layout.positions.items():
        rows.setdefault(y, []).append(node_id)
    assert max(len(row) for row in rows.values()) <= MAX_PER_ROW
    assert len(set(layout.positions.values())) == 60
    assert MIN_HEIGHT <= layout.widget_height <= MAX_HEIGHT
    assert layout.zoom >= 0.7  # readable: the graph pans rather than shrinking below 70%
    options = layout.cytoscape_layout()
    assert options["name"] == "preset"
    ys = sorted(rows)
    assert rows[ys[0]] == ["start"] and rows[ys[-1]] == ["done"]


def _inside(point, band) -> bool:
    return band.x0 <= point[0] <= band.x1 and band.y0 <= point[1] <= band.y1


@pytest.mark.parametrize("drawing", ["widget", "svg"])
def test_a_wrapped_layer_is_one_box_in_the_widget_and_the_svg(tmp_path, drawing):
    """Issue 17.6: the 58 nodes of one layer wrap onto rows inside one box, which holds no node of another layer,
    with more room between the box and the next layer than between its own rows; the widget and the SVG draw the
    same layout (domain.layering)."""
    from playbook_nb.adapters.export.dag_render import NODE_H as SVG_NODE_H
    from playbook_nb.adapters.export.dag_render import NODE_W as SVG_NODE_W
    from playbook_nb.adapters.export.dag_render import layout as svg_layout

    runbook = parse_runbook(_wide_runbook(58))
    if drawing == "widget":
        widget, _session, _store = make_widget(tmp_path, _wide_runbook(58))
        layout = widget.graph_layout
        centres, bands = layout.positions, layout.bands
        band_nodes = [n for n in widget.cyto.graph.nodes if n.data.get("band")]
        assert [n.data["label"] for n in band_nodes] == ["layer 2: 58 nodes"]
        assert set(widget.nodes) == set(runbook.nodes)  # the box is no node of the runbook
        assert "one layer, wrapped onto rows" in widget.legend.value
    else:
        drawn = svg_layout(runbook)
        centres = {n: (x + SVG_NODE_W / 2, y + SVG_NODE_H / 2) for n, (x, y) in drawn.positions.items()}
        bands = drawn.bands
        svg = to_svg(runbook)
        assert svg.count('<g class="band">') == 1 and "layer 2: 58 nodes" in svg
    (band,) = bands
    steps = [n for n in runbook.nodes if n.startswith("step_")]
    assert all(_inside(centres[n], band) for n in steps)
    assert not _inside(centres["start"], band) and not _inside(centres["done"], band)
    rows = sorted({centres[n][1] for n in steps})
    assert len(rows) == 12  # 58 nodes, 5 a row
    row_step = rows[1] - rows[0]
    assert centres["done"][1] - rows[-1] > row_step and rows[0] - centres["start"][1] > row_step
    # the same rows, in the same order, in both drawings
    widget_rows = _rows(compute_layout(runbook).positions)
    assert widget_rows == _rows(centres)


def _rows(centres) -> list[list[str]]:
    by_y: dict[float, list[tuple[float, str]]] = {}
    for node_id, (x, y) in centres.items():
        by_y.setdefault(y, []).append((x, node_id))
    return [[n for _x, n in sorted(row)] for _y, row in sorted(by_y.items())]


def test_a_runbook_without_wide_layers_has_no_box():
    from playbook_nb.adapters.export.dag_render import layout as svg_layout

    runbook = parse_runbook(RUNBOOK)
    assert compute_layout(runbook).bands == () and svg_layout(runbook).bands == ()
    assert '<g class="band">' not in to_svg(runbook)


def test_run_is_off_while_a_node_runs_and_abort_is_on_whenever_the_run_is_running(tmp_path):
    """Issue 13 point 4: the cockpit's Run is disabled while a node is RUNNING; Abort is enabled whenever the
    run is RUNNING, whatever is selected (or nothing)."""
    from playbook_nb.adapters.executors.local import LocalExecutor
    from playbook_nb.adapters.store import Store
    from playbook_nb.app.session import RunOptions, RunSession
    from playbook_nb.domain.validation import parse_runbook
    from playbook_nb.kernel_ext.widget import RunbookWidget

    runbook = parse_runbook(
        '[runbook]\ntitle = "buttons"\n\n[a]\ntype = "Command"\ncommand_name = "echo a"\n'
        '\n[b]\ntype = "Command"\ncommand_name = "echo b"\ndepends_on = []\n'
    )
    with Store.open(tmp_path / "runs.db") as store:
        session = RunSession.start(
            runbook, {}, store, RunOptions(headless=False, trigger="notebook"), executor=LocalExecutor()
        )

        class Face:
            pass

        face = Face()
        face.session = session
        widget = RunbookWidget(face)
        assert widget.enabled_buttons(None) == {"abort"}
        widget.select("b")
        assert "run" in widget.enabled_buttons()
        seen = []
        session.output_listeners.append(lambda *_: seen.append(set(widget.enabled_buttons("b"))))
        session.run_node("a")  # while a's command prints, b may not be run
        assert seen and all("run" not in buttons and "abort" in buttons for buttons in seen)
        widget.refresh()
        assert "run" in widget.enabled_buttons("b")  # a ended: b can run
        session.abort("ops", "test over")
        assert widget.enabled_buttons("b") == set()


def test_the_header_names_the_legal_basis_of_the_run(tmp_path):
    text = RUNBOOK.replace(
        'title = "cockpit drill"', 'title = "cockpit drill"\nlegal_basis = "Change CHG-7 <approved> by CAB"'
    )
    widget, session, store = make_widget(tmp_path, text)
    assert store.get_run(session.run_id).params["legal_basis"] == "Change CHG-7 <approved> by CAB"
    assert (
        '<div class="pb-legal-basis" style="margin-left:10px;color:#4a5568">legal basis: '
        "Change CHG-7 &lt;approved&gt; by CAB</div>" in widget.status.value
    )
    plain, _, _ = make_widget(tmp_path / "plain")
    assert "pb-legal-basis" not in plain.status.value  # no line when the runbook names none


def test_each_browser_view_has_its_own_selection_comment_and_approve(tmp_path):
    """Issue 13.7, kernel side: two views say hello, each gets a panel of its own; a click or a comment in one
    changes nothing in the other, and Approve acts on the node and comment of the view it was clicked in."""
    widget, session, store = make_widget(tmp_path)
    widget.select("check")  # clicked before any view said hello: the first view takes it over
    widget.comment.value = "typed early"
    widget._on_view_msg(None, {"view": "aaaa1111", "hello": True}, None)
    widget._on_view_msg(None, {"view": "bbbb2222", "hello": True}, None)
    tab_a, tab_b = widget.panels["aaaa1111"], widget.panels["bbbb2222"]
    assert tab_a.selected == "check" and tab_a.comment.value == "typed early"
    assert tab_b.selected is None and tab_b.comment.value == ""
    assert widget.panel_stack.children == (tab_a.panel, tab_b.panel)  # the kernel's own panel is not shown
    assert {"pb-panel", "pb-view-aaaa1111"} <= set(tab_a.panel._dom_classes)

    widget.on_run_until_gate()
    assert session.state("flaky") is NodeState.NOK
    widget._on_view_msg(None, {"view": "aaaa1111", "select": "flaky"}, None)
    tab_a.comment.value = "tab A: skip it"
    widget._on_view_msg(None, {"view": "bbbb2222", "select": "check"}, None)
    tab_b.comment.value = "tab B: just looking"
    widget.on_node_click({"data": {"id": "check"}, "group": "nodes"})  # ipycytoscape's click: no view named
    assert tab_a.selected == "flaky" and 'data-node="flaky"' in tab_a.header.value
    assert tab_b.selected == "check" and 'data-node="check"' in tab_b.header.value
    assert not tab_a.buttons["skip"].disabled and tab_b.buttons["skip"].disabled

    tab_a.buttons["skip"].click()
    assert session.state("flaky") is NodeState.SKIPPED
    assert db_rows(store, "SELECT node_id, decision, comment FROM decisions") == [
        ("flaky", "skip", "tab A: skip it")
    ]
    assert tab_a.comment.value == "" and tab_b.comment.value == "tab B: just looking"
    assert "flaky: skip by alice" in widget.messages[-1]
    widget.on_run_until_gate()  # a shared control: its log line shows in every view's log
    for tab in (tab_a, tab_b):
        assert any("ran " in o.get("text", "") for o in tab.panel_output.outputs)

    widget._on_view_msg(None, {"view": "aaaa1111", "bye": True}, None)
    widget._on_view_msg(None, {"view": "bbbb2222", "bye": True}, None)
    assert widget.panel_stack.children == (widget.panels["kernel"].panel,)
    widget._on_view_msg(None, {"view": "not-alnum!", "hello": True}, None)  # ignored
    assert list(widget.panels) == ["kernel"]


def _generated_runbook(n: int) -> str:
    """benchmarks/browser_render.py's shape: layers of 1..8 nodes, each on one or two nodes above, titled."""
    parts = ['[runbook]\ntitle = "big"\n', '[start]\ntype = "Command"\ncommand_name = "true"\n']
    previous, made, width = ["start"], 1, 1
    while made < n:
        width = width % 8 + 1
        layer = []
        for i in range(min(width, n - made)):
            node_id = f"step_{made:03d}"
            deps = ", ".join(
                f'"{d}"' for d in sorted({previous[i % len(previous)], previous[(i + 1) % len(previous)]})
            )
            parts.append(
                f'[{node_id}]\nname = "Check shard {made}"\ntype = "Command"\ncommand_name = "true"\n'
                f"depends_on = [{deps}]\n"
            )
            layer.append(node_id)
            made += 1
        previous = layer
    return "\n".join(parts)


def test_search_finds_a_node_by_id_or_part_of_its_title():
    from playbook_nb.kernel_ext.cockpit_find import MAX_MATCHES, search_nodes, search_reply

    runbook = parse_runbook(_generated_runbook(200))
    assert search_nodes(runbook, "step_042") == ["step_042"]  # an exact id
    assert search_nodes(runbook, "  check SHARD 42 ") == ["step_042"]  # an exact title, any case and spacing
    assert search_reply(runbook, "shard 42") == {
        "select": "step_042",
        "line": "found Check shard 42 (step_042)",
    }
    several = search_reply(runbook, "shard 19")  # 19, 190..199: a short list to pick from
    assert several["matches"][:2] == [
        ["step_019", "Check shard 19 (step_019)"],
        ["step_190", "Check shard 190 (step_190)"],
    ]
    assert len(several["matches"]) == MAX_MATCHES and several["more"] == 11 - MAX_MATCHES
    assert several["line"] == "11 nodes match 'shard 19': pick one"
    assert search_reply(runbook, "db-primary") == {
        "line": "no node matches 'db-primary' (search by id or title)"
    }
    assert search_reply(runbook, "   ") == {"line": ""}


def test_a_view_that_asks_again_is_answered_again(tmp_path):
    widget, _session, _store = make_widget(tmp_path)
    sent = []
    widget.view_channel.send = lambda content, buffers=None: sent.append(content)
    widget._on_view_msg(None, {"view": "aaaa1111", "hello": True}, None)
    widget._on_view_msg(None, {"view": "aaaa1111", "hello": True}, None)  # it did not hear the first
    assert [m for m in sent if m.get("ready")] == [{"view": "aaaa1111", "ready": True}] * 2
    assert list(widget.panels) == ["aaaa1111", "kernel"]  # one panel for it all the same


def test_a_search_from_a_view_selects_the_node_in_that_views_panel(tmp_path):
    widget, _session, _store = make_widget(tmp_path)
    widget._on_view_msg(None, {"view": "aaaa1111", "hello": True}, None)
    widget._on_view_msg(None, {"view": "bbbb2222", "hello": True}, None)
    tab_a, tab_b = widget.panels["aaaa1111"], widget.panels["bbbb2222"]
    widget._on_view_msg(None, {"view": "aaaa1111", "search": "FLAK", "asked": 1}, None)
    assert tab_a.selected == "flaky" and 'data-node="flaky"' in tab_a.header.value  # as a click does
    assert tab_b.selected is None
    widget._on_view_msg(None, {"view": "bbbb2222", "search": "nothing like it", "asked": 1}, None)
    assert tab_b.selected is None and tab_a.selected == "flaky"
    widget._on_view_msg(
        None, {"view": "bbbb2222", "select": "gate", "center": True}, None
    )  # a jump-list pick
    assert tab_b.selected == "gate" and tab_a.selected == "flaky"


def test_the_jump_list_names_failed_and_waiting_nodes_live(tmp_path):
    widget, session, _store = make_widget(tmp_path)
    assert widget.view_channel.jump == []
    widget.on_run_until_gate()  # check OK, flaky fails and waits for a decision
    assert widget.view_channel.jump == [["flaky", "✘ flaky: failed, needs a decision"]]
    widget.select("flaky")
    widget.on_skip()  # skipped: no longer failed
    assert widget.view_channel.jump == []
    widget.on_run_until_gate()  # the gate is reached and waits
    assert widget.view_channel.jump == [["gate", "⏸ gate: gate waiting for a decision"]]
    widget.select("gate")
    widget.on_approve()
    assert widget.view_channel.jump == []
    # live, from engine events (a node cell run elsewhere), without a refresh
    other, session2, _ = make_widget(tmp_path / "b")
    session2.run_node("check")
    session2.run_node("flaky")
    assert [nid for nid, _text in other.view_channel.jump] == ["flaky"]


def test_the_wheel_scrolls_the_page_until_the_graph_has_focus(tmp_path):
    """Kernel side of issue 17.6's wheel rule: the graph opens with user zooming off (each view turns it on while
    its graph has focus, tests/browser/test_big_cockpit.py)."""
    widget, _session, _store = make_widget(tmp_path)
    assert widget.cyto.user_zooming_enabled is False
    assert widget.cyto.zooming_enabled is True  # Fit and centring still zoom
