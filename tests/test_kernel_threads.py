"""A cockpit's clicks are handled on the kernel's main thread, whichever thread ipykernel delivers them on.

ipykernel 7 hands a comm's messages to the subshell that comm last published from (each subshell has a thread
of its own), and JupyterLab 4.6 sends widget messages over subshells. Code run in a subshell that sets a
cockpit widget's state moves that widget's comm there: its next click came on the subshell's thread and drove
the run's session from there, beside the main thread that runs the node cells. A real kernel, a real subshell,
the protocol's own messages.
"""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from test_two_kernels import RUNBOOK, execute

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipycytoscape")


@pytest.fixture
def kernel():
    manager, client = jupyter_client.manager.start_new_kernel(kernel_name="python3")
    try:
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def create_subshell(client) -> str:
    msg = client.session.msg("create_subshell_request", {})
    client.control_channel.send(msg)
    while True:
        reply = client.control_channel.get_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            return reply["content"]["subshell_id"]


def execute_in_subshell(client, subshell: str, code: str) -> None:
    msg = client.session.msg("execute_request", {"code": code, "silent": False, "store_history": False})
    msg["header"]["subshell_id"] = subshell
    client.shell_channel.send(msg)
    while True:
        out = client.get_iopub_msg(timeout=60)
        if out["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
            continue
        assert out["msg_type"] != "error", out["content"].get("evalue")
        if out["msg_type"] == "status" and out["content"]["execution_state"] == "idle":
            return


def click_from_subshell(client, subshell: str, comm_id: str) -> None:
    """What JupyterLab sends for a Button click, over a subshell."""
    data = {"method": "custom", "content": {"event": "click"}}
    msg = client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
    msg["header"]["subshell_id"] = subshell
    client.shell_channel.send(msg)


def wait_for_state(client, node: str, state: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while execute(client, f'print(r.session.states()["{node}"], end="")') != state:
        assert time.monotonic() < deadline, f"{node} never became {state}"
        time.sleep(0.1)


def test_clicks_delivered_on_a_subshell_are_handled_on_the_main_thread(kernel, tmp_path):
    db = tmp_path / "runs.db"
    execute(
        kernel,
        f"""
        import json, threading
        from playbook_nb.kernel_ext import notebook_run as nr
        r = nr.open_run({RUNBOOK!r}, state_path={str(db)!r}, headless=False, actor="dana")
        r.cell("look"); r.cell("gate"); r.show()
        seen = []  # every engine event and the thread the session made it on
        r.session.event_listeners.append(
            lambda e: seen.append([e.kind, e.node, e.state, threading.current_thread().name]))
        r.widget.select("gate")
        print(json.dumps({{"main": threading.current_thread().name}}))
        """,
    )
    subshell = create_subshell(kernel)
    # code in the subshell sets a button's state: its comm publishes from there, so its clicks come there
    execute_in_subshell(kernel, subshell, 'r.widget.buttons["approve"].tooltip = "approve the gate"')
    ids = json.loads(
        execute(kernel, 'print(json.dumps({n: r.widget.buttons[n].model_id for n in ("approve", "run")}))')
    )

    click_from_subshell(kernel, subshell, ids["approve"])
    wait_for_state(kernel, "gate", "OK")
    execute(kernel, 'r.widget.select("ship")')  # the Run button is enabled: a message from the main thread
    execute_in_subshell(kernel, subshell, 'r.widget.buttons["run"].tooltip = "run it"')
    click_from_subshell(kernel, subshell, ids["run"])  # a command, run as a task of the main thread's loop
    wait_for_state(kernel, "ship", "OK")

    result = json.loads(execute(kernel, 'print(json.dumps({"seen": seen, "log": r.widget.messages}))'))
    threads = {thread for _kind, _node, _state, thread in result["seen"]}
    assert threads == {"MainThread"}, [event for event in result["seen"] if event[3] != "MainThread"]
    assert ["node_state", "gate", "OK", "MainThread"] in result["seen"]
    assert ["node_state", "ship", "RUNNING", "MainThread"] in result["seen"]
    assert "gate: approve by dana" in result["log"]
    assert any(line.startswith("ship: OK (attempt 1") for line in result["log"]), result["log"]
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT node_id, decision, actor FROM decisions").fetchall() == [
            ("gate", "approve", "dana")
        ]
        assert conn.execute("SELECT node_id, state FROM node_states ORDER BY position").fetchall() == [
            ("look", "OK"),
            ("gate", "OK"),
            ("ship", "OK"),
        ]
    finally:
        conn.close()
