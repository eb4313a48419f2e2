"""JupyterLab as the front door: a runbook opens from the file browser as the notebook compiled from its TOML,
Run All records the run; an edited TOML reopens with the change; the "New runbook" launcher card; the
"Runbook runs" panel lists runs made by the CLI, refreshes while one is RUNNING, opens its report and notebook.

Screenshots: docs/screenshots/lab_runbook_notebook.png, lab_launcher.png, lab_runs_panel.png, lab_report_tab.png.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import run_cli
from playwright.sync_api import expect

from playbook_nb.presentation import look
from tests.browser.lab import (
    KERNEL_TIMEOUT_MS,
    current_notebook,
    hex_rgb,
    run_all_cells,
    screenshot,
    wait_kernel_idle,
    wait_kernel_ready,
)

DISK_CHECK = """[runbook]
title = "Disk check"
description = "Look at the disks, then report."
version = "1.0.0"
author = "sre"

[look]
type = "Command"
command_name = "echo looking at the disks"

[summarise]
type = "Python"
code = "print('disk summary: fine')"
"""

REPORT_NODE = """
[tell_the_channel]
type = "Command"
command_name = "echo all disks fine"
"""


def index_rows(lab_server, sql: str, *params):
    conn = sqlite3.connect(lab_server.extra_env["PLAYBOOK_DB_PATH"])
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def open_lab(page, lab_server, tree: str = "") -> None:
    where = f"lab/tree/{tree}" if tree else "lab"
    page.goto(f"{lab_server.base_url}/{where}?reset&token={lab_server.token}", wait_until="domcontentloaded")
    page.locator(".jp-DirListing-content").wait_for(state="visible", timeout=60_000)


def file_item(page, name: str):
    return page.locator(f".jp-DirListing-item[title^='Name: {name}']")


def open_from_file_browser(page, name: str) -> None:
    item = file_item(page, name)
    item.wait_for(state="visible")
    item.dblclick()


def open_with(page, name: str, factory: str) -> None:
    """File browser: right-click the file, Open With > `factory`."""
    file_item(page, name).click(button="right")
    page.locator(".lm-Menu-item", has_text=re.compile(r"^Open With")).hover()
    page.locator(".lm-Menu-item", has_text=re.compile(f"^{factory}$")).click()


def node_cell_sources(page) -> list[str]:
    return [
        text.strip()
        for text in current_notebook(page).locator(".jp-CodeCell .jp-InputArea-editor").all_inner_texts()
        if text.strip().startswith("%playbook_node") or text.strip().startswith("%%playbook_node")
    ]


@pytest.fixture
def runbook(lab_root, request) -> Path:
    folder = lab_root / "ops"
    folder.mkdir(exist_ok=True)
    name = "disk_check" if "file_browser" in request.node.name else "disk_check_edited"
    path = folder / f"{name}.playbook.toml"
    path.write_text(DISK_CHECK)
    return path


def test_a_runbook_opens_from_the_file_browser_and_run_all_records_the_run(page, lab_server, runbook):
    relpath = f"ops/{runbook.name}"
    open_lab(page, lab_server, "ops")
    open_from_file_browser(page, runbook.name)
    panel = page.locator(".jp-NotebookPanel.pb-RunbookNotebook")
    panel.wait_for(state="visible", timeout=60_000)
    wait_kernel_ready(page, lab_server.base_url, lab_server.token, relpath)
    assert node_cell_sources(page) == [
        "%playbook_node look",
        "%%playbook_node summarise\nprint('disk summary: fine')",
    ]

    run_all_cells(page)
    wait_kernel_idle(page, KERNEL_TIMEOUT_MS)
    notebook = current_notebook(page)
    notebook.locator(".jp-OutputArea-output", has_text="disk summary: fine").wait_for(timeout=30_000)

    (run,) = index_rows(
        lab_server, "SELECT * FROM runs WHERE workflow = 'Disk check' ORDER BY id DESC LIMIT 1"
    )
    assert run["status"] == "OK" and run["trigger"] == "notebook"
    states = dict(
        index_rows(lab_server, "SELECT node_id, state FROM node_states WHERE run_id = ?", run["id"])
    )
    assert states == {"look": "OK", "summarise": "OK"}
    assert runbook.read_text() == DISK_CHECK  # the TOML is never written by the notebook
    assert not list(runbook.parent.glob("*.ipynb"))
    notebook.locator(".jp-Cell").first.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    screenshot(page, "lab_runbook_notebook")


def test_an_edited_toml_reopens_with_the_change(page, lab_server, runbook):
    open_lab(page, lab_server, "ops")
    open_with(page, runbook.name, "Editor")
    editor = page.locator(".jp-FileEditor .cm-content")
    editor.wait_for(state="visible")
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.insert_text(REPORT_NODE)
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 20
    while "tell_the_channel" not in runbook.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert runbook.read_text().rstrip().endswith('command_name = "echo all disks fine"')

    # Double-click would reveal the open editor (JupyterLab shows an open view first): Open With, as a user would.
    open_with(page, runbook.name, "Runbook notebook")
    page.locator(".jp-NotebookPanel.pb-RunbookNotebook").wait_for(state="visible", timeout=60_000)
    page.wait_for_function(
        """() => [...document.querySelectorAll('.pb-RunbookNotebook .jp-CodeCell .jp-InputArea-editor')]
               .some(e => e.textContent.includes('%playbook_node tell_the_channel'))""",
        timeout=30_000,
    )
    assert node_cell_sources(page)[-1] == "%playbook_node tell_the_channel"


def test_the_launcher_card_writes_a_starter_runbook(page, lab_server, lab_root):
    for old in lab_root.glob("new_runbook*.playbook.toml"):
        old.unlink()
    open_lab(page, lab_server)
    card = page.locator(".jp-LauncherCard", has_text="New runbook")
    card.wait_for(state="visible", timeout=60_000)
    screenshot(page, "lab_launcher")
    card.click()
    page.locator(".lm-TabBar-tab.jp-mod-current", has_text="new_runbook.playbook.toml").wait_for(
        timeout=30_000
    )
    page.locator(".jp-FileEditor .cm-content", has_text="[check_status]").wait_for(timeout=30_000)
    written = lab_root / "new_runbook.playbook.toml"
    check = run_cli("validate", str(written))
    assert check.returncode == 0, check.stdout + check.stderr


def run_headless(lab_server, runbook: Path, *args: str) -> subprocess.Popen:
    """A headless CLI run into the Lab server's index, started as its own process."""
    env = {**os.environ, **lab_server.extra_env, "NO_COLOR": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "playbook_nb", "run", str(runbook), "--headless", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )


SLOW = """[runbook]
title = "Slow restart"

[drain]
type = "Command"
command_name = "while [ ! -e {release} ]; do sleep 0.2; done"

[flaky_probe]
type = "Command"
command_name = "exit 3"

[restart]
type = "Command"
command_name = "echo restarted"
"""


def test_the_runs_panel_lists_cli_runs_live_and_opens_report_and_notebook(page, lab_server, tmp_path):
    theirs = tmp_path / "theirs.playbook.toml"
    theirs.write_text(
        '[runbook]\ntitle = "Alice rotates keys"\n\n[rotate]\ntype = "Command"\ncommand_name = "echo ok"\n'
    )
    by_alice = run_cli("run", str(theirs), "--actor", "alice", env=lab_server.extra_env)
    assert by_alice.returncode == 0, by_alice.stdout + by_alice.stderr
    slow = tmp_path / "slow.playbook.toml"
    release = tmp_path / "release"  # the drain step ends when the test creates this file
    slow.write_text(SLOW.replace("{release}", str(release)))
    proc = run_headless(lab_server, slow)
    try:
        deadline = time.monotonic() + 60
        while not lab_server.api("GET", "/playbook-nb/api/runs?status=RUNNING&workflow=Slow%20restart")[
            "runs"
        ]:
            assert proc.poll() is None and time.monotonic() < deadline, (
                "the headless run never showed RUNNING"
            )
            time.sleep(0.3)
        open_lab(page, lab_server)
        page.locator(".lm-TabBar-tab[data-id='playbook-nb-runs']").click()
        panel = page.locator("#playbook-nb-runs")
        panel.wait_for(state="visible")
        running = panel.locator(".pb-RunsPanel-run[data-status='RUNNING']", has_text="Slow restart")
        running.wait_for(timeout=60_000)
        assert panel.get_attribute("data-live") == "true"
        row_id = running.first.get_attribute("data-run-id")
        row = panel.locator(f".pb-RunsPanel-run[data-run-id='{row_id}']")
        release.touch()
        row.and_(page.locator("[data-status='OK']")).wait_for(timeout=60_000)  # turns OK with no click
        assert proc.wait(timeout=60) == 0, proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "⚠ 1 handled" in row.locator(".pb-RunsPanel-handled").inner_text()
    assert row.get_attribute("title") == "OK with 1 handled failure"
    stroke = row.evaluate("r => getComputedStyle(r).borderLeftColor")
    assert stroke == "rgb({}, {}, {})".format(*hex_rgb(look("OK").stroke))  # OK's green, from the API

    panel.locator(".pb-RunsPanel-statusFilter").select_option("NOK")
    panel.locator(".pb-RunsPanel-run", has_text="Slow restart").first.wait_for(state="detached")
    panel.locator(".pb-RunsPanel-statusFilter").select_option("")
    row.wait_for()
    alice = panel.locator(".pb-RunsPanel-run", has_text="Alice rotates keys")
    alice.wait_for()
    panel.locator(".pb-RunsPanel-mine").check()  # runs recorded under my name (the OS user here), not alice's
    alice.wait_for(state="detached")
    row.wait_for()
    panel.locator(".pb-RunsPanel-mine").uncheck()
    alice.wait_for()
    screenshot(page, "lab_runs_panel", panel)

    row.locator(".pb-RunsPanel-report").click()
    frame = page.frame_locator(".pb-Report iframe")
    frame.locator("h1", has_text="Slow restart").wait_for(timeout=30_000)
    assert (
        frame.locator('.dag svg g.node[data-node-id="flaky_probe"]').get_attribute("data-state") == "skipped"
    )
    tab = page.locator(".lm-TabBar-tab.jp-mod-current")
    assert "Report: Slow restart" in tab.inner_text()
    screenshot(page, "lab_report_tab")

    row.locator(".pb-RunsPanel-notebook").click()
    record = page.locator(".jp-NotebookPanel.pb-RunRecord")
    record.wait_for(state="visible", timeout=30_000)
    record.locator(".jp-OutputArea-output", has_text="restarted").first.wait_for(timeout=30_000)
    sessions = lab_server.api("GET", "/api/sessions")
    assert not [s for s in sessions if "playbook-run-" in s.get("path", "")]  # a record starts no kernel


GATED = """[runbook]
title = "Gated rollout"

[prepare]
type = "Command"
command_name = "echo prepared"

[go_live]
type = "Manual"
prompt_after = "Roll out to production?"
depends_on = ["prepare"]
four_eyes = true

[ship]
type = "Command"
command_name = "echo shipping build 42"
depends_on = ["go_live"]
"""


def test_the_inbox_approves_a_headless_run_waiting_at_a_gate(page, lab_server, tmp_path):
    book = tmp_path / "gated.playbook.toml"
    book.write_text(GATED)
    # alice started it; four eyes: the Lab user (the OS user here), not alice, is the one who may decide
    proc = run_headless(lab_server, book, "--gate-wait", "120", "--actor", "alice")
    try:
        deadline = time.monotonic() + 60
        while not (inbox := lab_server.api("GET", "/playbook-nb/api/inbox"))["gates"]:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the headless run never waited at its gate"
            time.sleep(0.3)
        me = inbox["actor"]
        (gate,) = inbox["gates"]
        open_lab(page, lab_server)
        badge = page.locator(".pb-InboxBadge")
        badge.and_(page.locator("[data-count='1']")).wait_for(timeout=30_000)
        assert badge.inner_text() == "1 waiting for me"
        badge.click()  # the badge opens the "Waiting for me" panel
        panel = page.locator("#playbook-nb-inbox")
        panel.wait_for(state="visible")
        row = panel.locator(f".pb-Inbox-gate[data-run-id='{gate['run']}'][data-node='go_live']")
        row.wait_for()
        assert row.locator(".pb-Inbox-prompt").inner_text() == "Roll out to production?"
        assert row.locator(".pb-Inbox-next").inner_text().strip() == "then ship: echo shipping build 42"
        assert f"Gated rollout · run {gate['run']}" in row.locator(".pb-Inbox-run").inner_text()
        row.locator(".pb-Inbox-comment").fill("change window open")
        screenshot(page, "lab_inbox")
        row.locator(".pb-Inbox-approve").click()
        assert proc.wait(timeout=60) == 0, proc.stdout.read()
        row.wait_for(state="detached", timeout=30_000)  # decided: it leaves the inbox, the badge counts 0
        badge.and_(page.locator("[data-count='0']")).wait_for(timeout=30_000)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (run,) = index_rows(lab_server, "SELECT id, status, actor FROM runs WHERE id = ?", gate["run"])
    assert (run["status"], run["actor"]) == ("OK", "alice")
    decisions = index_rows(
        lab_server,
        "SELECT node_id, decision, actor, source, comment FROM decisions WHERE run_id = ?",
        run["id"],
    )
    assert [tuple(d) for d in decisions] == [("go_live", "approve", me, "server", "change window open")]


RESUMABLE = """[runbook]
title = "Resumable rollout"

[variables]
TARGET = { default = "staging" }

[look]
type = "Command"
command_name = "echo looking at {{ TARGET }}"

[go_live]
type = "Manual"
prompt_after = "Roll out to {{ TARGET }}?"
depends_on = ["look"]

[act]
type = "Command"
command_name = "echo acting on {{ TARGET }}"
depends_on = ["go_live"]
"""


def test_the_runs_panel_resumes_an_aborted_run_in_a_notebook_and_refuses_a_driven_one(
    page, lab_server, lab_root, tmp_path
):
    from tests.browser.test_cockpit import click_button, click_node, run_all, wait_states

    book = tmp_path / "resumable.playbook.toml"
    book.write_text(RESUMABLE)
    # Headless, fail-closed: nobody approves go_live, the run stops ABORTED (exit 3), resumable.
    aborted = run_headless(lab_server, book, "--var", "TARGET=web-3", "--actor", "alice")
    assert aborted.wait(timeout=120) == 3, aborted.stdout.read()
    (run,) = index_rows(
        lab_server,
        "SELECT id, status FROM runs WHERE workflow = 'Resumable rollout' ORDER BY id DESC LIMIT 1",
    )
    assert run["status"] == "ABORTED"
    rid = run["id"]
    # Another session drives a second run of it (waiting at its gate for a decision from anywhere).
    driven = run_headless(lab_server, book, "--gate-wait", "300", "--actor", "alice")
    try:
        deadline = time.monotonic() + 60
        while not (inbox := lab_server.api("GET", "/playbook-nb/api/inbox"))["gates"] or not [
            g for g in inbox["gates"] if g["workflow"] == "Resumable rollout"
        ]:
            assert driven.poll() is None, driven.stdout.read()
            assert time.monotonic() < deadline, "the driven run never waited at its gate"
            time.sleep(0.3)
        (live,) = [g["run"] for g in inbox["gates"] if g["workflow"] == "Resumable rollout"]

        page.set_viewport_size({"width": 1400, "height": 1000})
        open_lab(page, lab_server)
        page.locator(".lm-TabBar-tab[data-id='playbook-nb-runs']").click()
        panel = page.locator("#playbook-nb-runs")
        notice = panel.locator(".pb-RunsPanel-notice")
        live_row = panel.locator(f".pb-RunsPanel-run[data-run-id='{live}']")
        live_row.wait_for(timeout=60_000)
        assert "driven by alice" in live_row.locator(".pb-RunsPanel-meta").inner_text()
        live_row.locator(".pb-RunsPanel-resume").click()
        notice.get_by_text(f"Cannot resume run {live}: 409: run {live} is RUNNING, driven by alice").wait_for(
            timeout=30_000
        )
        assert "\n" not in notice.inner_text().strip()
        screenshot(page, "lab_runs_panel_resume", panel)
        assert not list(lab_root.glob(f"resume_run_{live}.ipynb"))
    finally:
        driven.terminate()  # SIGTERM: that run ends ABORTED, as an operator's Ctrl-C would leave it
        driven.wait(timeout=60)

    row = panel.locator(f".pb-RunsPanel-run[data-run-id='{rid}']")
    row.wait_for()
    row.locator(".pb-RunsPanel-resume").click()
    notice.get_by_text(f"Opened resume_run_{rid}.ipynb").wait_for(timeout=30_000)
    page.locator(".lm-TabBar-tab.jp-mod-current", has_text=f"resume_run_{rid}.ipynb").wait_for(timeout=30_000)
    wait_kernel_ready(page, lab_server.base_url, lab_server.token, f"resume_run_{rid}.ipynb")
    params = current_notebook(page).locator(".jp-CodeCell .jp-InputArea-editor", has_text="run_id =")
    assert f"run_id = {rid} " in params.first.inner_text()

    run_all(page)
    wait_kernel_idle(page, KERNEL_TIMEOUT_MS)
    current_notebook(page).locator(".jp-OutputArea-output", has_text=f"resumed run {rid}").wait_for()
    # The gate the headless run left undecided waits for a decision here: nothing was carried over.
    wait_states(page, {"look": "OK", "go_live": "WAITING", "act": "PENDING"})
    assert index_rows(lab_server, "SELECT count(*) AS n FROM decisions WHERE run_id = ?", rid)[0]["n"] == 0
    click_node(page, "go_live")
    expect(page.locator(".pb-details")).to_contain_text("Roll out to web-3?")  # the recorded value, kept
    click_button(page, "approve")
    wait_states(page, {"go_live": "OK", "act": "READY"})
    click_button(page, "run-until-gate")
    wait_states(page, {"act": "OK"})
    deadline = time.monotonic() + 30  # the view shows act OK a moment before the run's row says OK
    while (after := index_rows(lab_server, "SELECT status, variables FROM runs WHERE id = ?", rid)[0])[
        "status"
    ] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert after["status"] == "OK" and json.loads(after["variables"])["TARGET"] == "web-3"
    decisions = index_rows(
        lab_server, "SELECT node_id, decision, source FROM decisions WHERE run_id = ?", rid
    )
    assert [tuple(d) for d in decisions] == [("go_live", "approve", "notebook")]
    (act,) = index_rows(lab_server, "SELECT stdout FROM attempts WHERE run_id = ? AND node_id = 'act'", rid)
    assert act["stdout"].strip() == "acting on web-3"
    done = panel.locator(f".pb-RunsPanel-run[data-run-id='{rid}'][data-status='OK']")
    done.wait_for(timeout=30_000)  # the panel's next refresh: the resumed run is OK, and offers no Resume
    assert done.locator(".pb-RunsPanel-resume").count() == 0


NOT_MINE = """[runbook]
title = "Bob's gate"

[hold]
type = "Manual"
prompt_after = "Bob only"
approvers = ["bob"]
"""


def post_decision(lab_server, run_id: int, node: str) -> tuple[int, str]:
    """The POST the inbox makes, with the Lab user's token: (status, message)."""
    req = urllib.request.Request(
        f"{lab_server.base_url}/playbook-nb/api/runs/{run_id}/gates/{node}",
        method="POST",
        data=json.dumps({"decision": "approve"}).encode(),
        headers={"Authorization": f"token {lab_server.token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())["message"]


def test_the_inbox_refuses_in_one_line_a_gate_decided_elsewhere_and_lists_none_the_user_may_not_decide(
    page, lab_server, tmp_path
):
    gated, bobs = tmp_path / "gated.playbook.toml", tmp_path / "bobs.playbook.toml"
    gated.write_text(GATED.replace("Gated rollout", "Decided elsewhere"))
    bobs.write_text(NOT_MINE)
    mine = run_headless(lab_server, gated, "--gate-wait", "300", "--actor", "alice")
    theirs = run_headless(lab_server, bobs, "--gate-wait", "300", "--actor", "alice")
    held = []  # the inbox's refreshes, held while the gate is decided elsewhere (the panel's list goes stale)
    try:
        deadline = time.monotonic() + 60
        while True:
            rows = {
                r["workflow"]: r["id"]
                for r in lab_server.api("GET", "/playbook-nb/api/runs?status=RUNNING")["runs"]
            }
            waiting = index_rows(lab_server, "SELECT run_id FROM node_states WHERE state = 'WAITING'")
            waiting_ids = {w["run_id"] for w in waiting}
            wanted = [rows.get("Decided elsewhere"), rows.get("Bob's gate")]
            if all(run_id in waiting_ids for run_id in wanted):
                break
            assert mine.poll() is None and theirs.poll() is None, "a gated run ended early"
            assert time.monotonic() < deadline, "the gated runs never waited at their gates"
            time.sleep(0.3)
        mine_id, bobs_id = rows["Decided elsewhere"], rows["Bob's gate"]
        open_lab(page, lab_server)
        page.locator(".pb-InboxBadge").click()
        panel = page.locator("#playbook-nb-inbox")
        row = panel.locator(f".pb-Inbox-gate[data-run-id='{mine_id}'][data-node='go_live']")
        row.wait_for(timeout=30_000)
        # 403 territory: bob's gate waits too, but the Lab user is not among its approvers: never listed.
        assert panel.locator(f".pb-Inbox-gate[data-run-id='{bobs_id}']").count() == 0

        inbox_url = re.compile(r"/playbook-nb/api/inbox(\?|$)")  # Lab adds a cache-busting query
        page.route(inbox_url, lambda route: held.append(route))
        approved = run_cli(
            "approve", str(mine_id), "go_live", "--comment", "from my terminal", env=lab_server.extra_env
        )
        assert approved.returncode == 0, approved.stdout + approved.stderr
        assert mine.wait(timeout=60) == 0, mine.stdout.read()
        for _ in range(100):  # the panel's next refresh is held: its list stays as it was before
            if held:
                break
            page.wait_for_timeout(100)
        assert held, "the inbox did not refresh within 10 s"
        row.locator(".pb-Inbox-approve").click()  # the stale row: the gate was decided and the run ended
        notice = panel.locator(".pb-Inbox-notice.pb-mod-refused")
        notice.wait_for(timeout=30_000)
        assert notice.inner_text().strip() == (
            f"go_live · run {mine_id}: 409: run {mine_id} is OK: it no longer waits for a decision"
        )
        screenshot(page, "lab_inbox_refused", panel)
        assert row.locator(".pb-Inbox-answer").inner_text().startswith("409: ")
        for route in held:  # let the held refreshes through, then the later ones
            route.continue_()
        page.unroute(inbox_url)
        row.wait_for(state="detached", timeout=30_000)  # the next refresh drops the gate; the line stays
        assert notice.is_visible()

        status, message = post_decision(lab_server, bobs_id, "hold")  # what Approve would get for bob's gate
        assert status == 403 and "may not decide gate 'hold'" in message and "\n" not in message
    finally:
        for proc in (mine, theirs):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=60)
    decisions = index_rows(
        lab_server, "SELECT run_id, decision, source FROM decisions WHERE run_id IN (?, ?)", mine_id, bobs_id
    )
    assert [tuple(d) for d in decisions] == [(mine_id, "approve", "cli")]  # nothing recorded by the refusals
