"""The cockpit of a fleet node in a real JupyterLab (Chromium), against a real sshd (tests/sshd_server.py):
Run All runs the node on four hosts (one fails, one is down); a click on the node opens its host table, the
"failed" filter keeps the two failing hosts, a host's output opens under its row; after the host is fixed,
Retry runs only the failing hosts. The index holds a row per host and attempt. Screenshot:
docs/screenshots/cockpit_fleet_hosts.png."""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from playbook_nb.adapters.notebook.compile import compile_runbook, write_notebook
from playbook_nb.app.inputs import load_runbook
from tests.browser.lab import open_notebook, screenshot, wait_for_cytoscape_canvas, wait_kernel_idle
from tests.browser.test_cockpit import click_button, click_node, run_all, wait_states
from tests.sshd_server import sshd_available, sshd_fleet

pytestmark = pytest.mark.skipif(not sshd_available(), reason="openssh-server not installed")

RUNBOOK = """\
[runbook]
title = "Restart the web fleet"
legal_basis = "Change CHG-2041, approved by the CAB"

[restart_web]
type = "Command"
description = "Restart nginx on every web host, two at a time"
command_name = '''echo "nginx restarted on $PLAYBOOK_HOST"; case "$SSH_CONNECTION" in *" 127.0.0.3 "*) test ! -e {broken} || {{ echo "disk full on $PLAYBOOK_HOST" >&2; exit 3; }};; esac'''
targets = {targets}
batch = 2
ssh = {{ identity_file = "{key}", known_hosts = "{known_hosts}", agent = false, connect_timeout = 3 }}

[verify]
type = "Command"
command_name = "echo verified"
"""


def host_rows(page) -> dict[str, str]:
    return page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('.pb-hosts tr.pb-host')]"
        ".map(r => [r.dataset.host, r.dataset.state]))"
    )


def wait_hosts(page, expected: dict[str, str]) -> None:
    try:
        page.wait_for_function(
            "(expected) => { const rows = [...document.querySelectorAll('.pb-hosts tr.pb-host')];"
            " const got = Object.fromEntries(rows.map(r => [r.dataset.host, r.dataset.state]));"
            " return JSON.stringify(got) === JSON.stringify(expected); }",
            arg=expected,
            timeout=30_000,
            polling=200,
        )
    except Exception as err:
        raise AssertionError(f"host rows {host_rows(page)} never matched {expected}") from err


def test_the_host_table_of_a_fleet_node_filters_shows_output_and_retries_failed_hosts(
    lab_server, page, tmp_path
):
    page.set_viewport_size({"width": 1400, "height": 1600})
    with sshd_fleet(3) as fleet:
        h1, h2, h3 = fleet.hosts
        down = fleet.down_host()
        broken = tmp_path / "broken"
        broken.write_text("")
        book = tmp_path / "fleet.playbook.toml"
        book.write_text(
            RUNBOOK.format(
                broken=broken,
                targets=json.dumps([h1, h2, h3, down]),
                key=fleet.user_key,
                known_hosts=fleet.known_hosts,
            )
        )
        db_path = tmp_path / "state" / "runs.db"
        nb = compile_runbook(load_runbook(book))
        params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        params.source = re.sub(
            r"^state_path\s*=.*$", f"state_path = {str(db_path)!r}", params.source, flags=re.M
        )
        if "state_path =" not in params.source:
            params.source += f"\nstate_path = {str(db_path)!r}"
        write_notebook(nb, lab_server.root_dir / "fleet_cockpit.ipynb")

        open_notebook(page, lab_server.base_url, lab_server.token, "fleet_cockpit.ipynb")
        run_all(page)
        wait_kernel_idle(page)
        wait_for_cytoscape_canvas(page)
        wait_states(page, {"restart_web": "NOK!", "verify": "PENDING"})
        assert (
            "legal basis: Change CHG-2041, approved by the CAB"
            in page.locator(".pb-legal-basis").inner_text()
        )

        click_node(page, "restart_web")
        table = page.locator(".pb-hosts .pb-host-table")
        table.wait_for(timeout=30_000)
        wait_hosts(page, {h1: "OK", h2: "NOK", h3: "OK", down: "NOK"})
        assert "2 NOK, 2 OK; showing 4" in table.inner_text()

        page.locator(".pb-host-filter button", has_text="failed").click()
        wait_hosts(page, {h2: "NOK", down: "NOK"})
        failing = page.locator(f'.pb-hosts tr.pb-host[data-host="{h2}"]')
        assert "exit code 3" in failing.inner_text()
        output = page.locator(f'.pb-hosts tr.pb-host-output[data-host="{h2}"]')
        output.locator("summary", has_text="output of").click()
        output.locator("pre", has_text=f"disk full on {h2}").wait_for(timeout=10_000)
        # the table fits the panel: nothing of it is cut off or needs a sideways scroll
        widths = page.evaluate(
            "() => { const box = document.querySelector('.pb-hosts');"
            " return [box.scrollWidth, box.clientWidth]; }"
        )
        assert widths[0] <= widths[1], f"the host table is wider than the panel: {widths}"
        down_row = page.locator(f'.pb-hosts tr.pb-host[data-host="{down}"]')
        assert "unreachable" in down_row.inner_text()
        overview = page.locator(".playbook-cockpit").first
        overview.scroll_into_view_if_needed()
        screenshot(page, "cockpit_fleet_hosts", locator=overview)

        broken.unlink()  # the disk was cleaned: Retry runs the hosts not yet OK, and only those
        click_button(page, "retry")
        wait_states(page, {"restart_web": "NOK!"})
        wait_hosts(page, {down: "NOK"})
        page.locator(".pb-host-filter button", has_text="all").click()
        wait_hosts(page, {h1: "OK", h2: "OK", h3: "OK", down: "NOK"})
        assert "1 NOK, 3 OK; showing 4" in table.inner_text()

    conn = sqlite3.connect(db_path)
    try:
        rows = conn.execute(
            "SELECT host, attempt, state FROM host_results WHERE node_id = 'restart_web'"
        ).fetchall()
    finally:
        conn.close()
    assert sorted(rows) == sorted(
        [(h1, 1, "OK"), (h2, 1, "NOK"), (h3, 1, "OK"), (down, 1, "NOK"), (h2, 2, "OK"), (down, 2, "NOK")]
    )  # the retry ran h2 and the down host only
