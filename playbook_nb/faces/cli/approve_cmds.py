"""`approve RUN GATE [--reject] [--comment TEXT]`: decide a gate of a run that waits for it elsewhere (issue 16).

The run waits at its gate (`run --headless --gate-wait 30m`, or the `gate_wait` notebook parameter); this
command, from any machine sharing the index, hands it the decision and waits a few seconds for the run to
take it. Refused with one line (and nothing changes) in every other case: no such run or gate, the run is not
RUNNING, the gate does not wait, nobody waits for a decision from afar, the user may not decide it.
"""

from __future__ import annotations

import time

import typer

from playbook_nb.domain.exit_codes import ExitCode
from playbook_nb.faces.cli.app import app, console, err_console
from playbook_nb.faces.cli.common import STATE_PATH, open_store

TAKE_WAIT = 15.0  # seconds to wait for the run to take the decision


@app.command("approve")
def approve(
    run_id: int = typer.Argument(..., help="The run that waits at the gate."),
    gate: str = typer.Argument(..., help="The gate's node id."),
    reject: bool = typer.Option(False, "--reject", help="Reject the gate instead of approving it."),
    comment: str = typer.Option(None, "--comment", help="Comment recorded with the decision."),
    state_path: str = STATE_PATH,
) -> None:
    """Approve (or --reject) a gate a running run waits at, from any process sharing its index."""
    from playbook_nb.app.identity import local_identity  # the command modules stay light at start-up
    from playbook_nb.app.remote_decisions import offer_decision, outcome
    from playbook_nb.app.settings import Settings

    settings = Settings.load()
    store = open_store(state_path, settings)
    actor = local_identity()
    offered = offer_decision(
        store, run_id, gate, "reject" if reject else "approve",
        actor=actor, source="cli", comment=comment, groups=dict(settings.config.groups),
    )  # fmt: skip
    deadline = time.monotonic() + TAKE_WAIT
    while True:
        now = outcome(store, offered)
        if now.applied or now.expired or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    verb = "rejected" if reject else "approved"
    if now.applied:
        console.print(
            f"run {run_id}: gate '{gate}' {verb} by {actor}; the gate is {now.state}, the run {now.run_status}",
            highlight=False,
        )
        return
    if now.expired:
        err_console.print(
            f"[bold red]error:[/] run {run_id} stopped waiting at '{gate}' before it took the decision; "
            f"the run is {now.run_status}",
            highlight=False,
        )
        raise typer.Exit(ExitCode.NOK)
    console.print(
        f"run {run_id}: gate '{gate}' {verb} by {actor}; the run has not taken it yet (it reads the index "
        "every few seconds)",
        highlight=False,
    )
