"""Two real kernels on one runbook (issue 13 points 1 and 2): the second kernel that opens the run the first one
drives gets a watch-only view that says who drives it; after the first finishes OK, a Reject from the
second's stale view is refused and the run stays OK with its nodes' states."""

from __future__ import annotations

import json
import sqlite3
import textwrap

import pytest

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipycytoscape")

RUNBOOK = """\
[runbook]
title = "two kernels drill"

[look]
type = "Command"
command_name = "echo looking"

[gate]
type = "Manual"
prompt_after = "Ship it?"

[ship]
type = "Command"
command_name = "echo shipping"
"""


def execute(client, code: str, timeout: float = 120, *, allow_stdin: bool | None = None) -> str:
    """Run `code` in the kernel; its stdout, or the error's one line as an AssertionError. `allow_stdin`: what
    the execute_request says (None: the client's default, true, as JupyterLab sends)."""
    msg_id = client.execute(textwrap.dedent(code), allow_stdin=allow_stdin)
    out = []
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream" and content["name"] == "stdout":
            out.append(content["text"])
        elif kind == "error":
            raise AssertionError(f"{content['ename']}: {content['evalue']}")
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(out)


@pytest.fixture
def kernels():
    started = [jupyter_client.manager.start_new_kernel(kernel_name="python3") for _ in range(2)]
    try:
        yield [client for _manager, client in started]
    finally:
        for manager, client in started:
            client.stop_channels()
            manager.shutdown_kernel(now=True)


def test_the_second_kernel_watches_and_its_stale_reject_changes_nothing(kernels, tmp_path):
    a, b = kernels
    db = tmp_path / "runs.db"
    setup = f"""
        import json
        from playbook_nb.kernel_ext import notebook_run as nr
        from playbook_nb.domain.engine import Decision
        TOML = {RUNBOOK!r}
    """
    execute(a, setup)
    execute(b, setup)
    a_pid = int(execute(a, "import os; print(os.getpid())"))
    run_id = int(
        execute(
            a,
            f"""
            r = nr.open_run(TOML, state_path={str(db)!r}, headless=False, actor="dana")
            r.cell("look"); r.cell("gate")
            print(r.session.run_id, end="")
            """,
        ).split()[-1]
    )

    seen = json.loads(
        execute(
            b,
            f"""
            r = nr.open_run(TOML, state_path={str(db)!r}, headless=False, actor="erin", run_id={run_id})
            r.show()
            r.widget.select("gate")
            print(json.dumps({{"watch": r.session.watch_only, "buttons": sorted(r.widget.enabled_buttons()),
                               "owner": r.session.owner_line(), "banner": r.widget.watch_banner.value,
                               "states": r.session.states()}}))
            """,
        ).splitlines()[-1]
    )
    assert seen["watch"] is True and seen["buttons"] == []
    assert seen["owner"].startswith("driven by dana (kernel ") and f"pid {a_pid} " in seen["owner"]
    assert "Watch-only" in seen["banner"]
    assert seen["states"] == {"look": "OK", "gate": "WAITING", "ship": "PENDING"}
    assert "watch-only" in execute(b, 'r.cell("ship")')  # a node cell in the watching kernel runs nothing

    execute(a, 'r.session.decide("gate", Decision.APPROVE, "dana"); r.cell("ship"); r.summary()')

    after = json.loads(
        execute(
            b,
            """
            r.widget.watch_tick()  # in step now (the kernel's own 1 s poll may have been first)
            try:
                r.session.decide("gate", Decision.REJECT, "erin")
                refused = None
            except Exception as err:
                refused = str(err)
            print(json.dumps({"refused": refused,
                              "graph": {n: e.data["state"] for n, e in r.widget.nodes.items()}}))
            """,
        ).splitlines()[-1]
    )
    assert after["graph"] == {"look": "OK", "gate": "OK", "ship": "OK"}
    assert after["refused"] == f"run {run_id} is OK (finished); the decision on 'gate' is refused"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT status FROM runs").fetchall() == [("OK",)]
        assert conn.execute("SELECT node_id, state FROM node_states ORDER BY position").fetchall() == [
            ("look", "OK"),
            ("gate", "OK"),
            ("ship", "OK"),
        ]
        assert conn.execute("SELECT decision, actor FROM decisions").fetchall() == [("approve", "dana")]
    finally:
        conn.close()
