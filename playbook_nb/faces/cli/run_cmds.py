"""`run`, `resume` and `set-status`: the terminal face (seed-compatible), and the headless notebook face."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from playbook_nb.domain.errors import PlaybookError, StorageFault
from playbook_nb.domain.exit_codes import ExitCode, exit_code_for
from playbook_nb.faces.cli.app import (
    app,
    console,
    emit_json,
    err_console,
    json_active,
    json_output,
    real_console,
)
from playbook_nb.faces.cli.common import (
    JSON,
    MAX_RETRIES_HELP,
    NO_INTERACTIVE_VARS,
    STATE_PATH,
    VAR,
    VARS_ENV,
    VARS_FILE,
    open_store,
    resolve_values,
    run_document,
    stdin_is_tty,
)

if TYPE_CHECKING:  # the run machinery is imported when a command runs (start-up of the other commands)
    from playbook_nb.app.session import RunSession
    from playbook_nb.app.settings import Settings
    from playbook_nb.domain.decisions import GateDecision
    from playbook_nb.domain.engine import Decision
    from playbook_nb.faces.cli.terminal_view import TerminalView

GATE_WAIT = typer.Option(
    None,
    "--gate-wait",
    help="At a gate nobody decides (no --approve, no policy): wait this long (30m, 2h, 90s) for a decision "
    "from anywhere (playbook-nb approve, the REST API), RUNNING and WAITING, then stop ABORTED (exit 3). "
    "Default: fail closed at once.",
)

PARALLEL = typer.Option(
    None,
    "--parallel",
    min=1,
    help="Run up to N independent Command/Function nodes at once (default: [execution] parallel, else 1).",
)


def parallel_default(value: int | None, settings: Settings) -> int:
    """--parallel N, else `[execution] parallel` from the configuration (true = 4), else 1."""
    return settings.parallel(value)


STRICT = typer.Option(
    False,
    "--strict",
    help="Exit 1 for a run that ended OK with handled failures (a node failed and was skipped, a rollback ran).",
)


def _exit_for(session: RunSession, view: TerminalView, file: Path, strict: bool = False) -> typer.Exit:
    view.summary(session)
    if view.pipe_closed:
        err_console.print(
            f"[bold red]error:[/] the output pipe was closed; run {session.run_id} is {session.status}"
            + (
                f", resume it with: playbook-nb resume {file} {session.run_id}"
                if str(session.status) == "ABORTED"
                else ""
            ),
            highlight=False,
            soft_wrap=True,
        )
    failed = [node_id for node_id, kind in session.awaiting() if kind == "failure"]
    if str(session.status) == "ABORTED" and failed and not view.pipe_closed:
        console.print(
            f"'{failed[0]}' failed and waits for a decision; decide it with: playbook-nb resume {file} "
            f"{session.run_id} --retry {failed[0]}"
            + ("" if session.engine.is_critical(failed[0]) else f" (or --skip {failed[0]})"),
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
    from playbook_nb.domain.outcome import handled_failures

    handled = len(handled_failures(session.store.node_states(session.run_id)))
    code = exit_code_for(str(session.status), handled, strict)
    if json_active():
        emit_json(run_document(session.store, session.run_id, code))
    return typer.Exit(code)


def _terminal_decider(view: TerminalView, interactive: bool):
    from rich.markup import escape
    from rich.prompt import Prompt

    from playbook_nb.domain.decisions import GateDecision
    from playbook_nb.domain.engine import Decision

    def decide(session: RunSession, node_id: str, kind: str) -> GateDecision | None:
        opts = session.options
        if kind == "gate":
            if not interactive:  # no TTY: the policy, else a decision from anywhere within --gate-wait
                return session.unattended_decision(node_id)
            policy_choice = session.gate_policy.decide(node_id)
            if policy_choice is not None:
                return policy_choice
            refusal = session.decision_refusal(node_id, opts.actor)
            if refusal is not None:  # four eyes, approvers: someone else decides, from anywhere
                err_console.print(f"[yellow]{escape(refusal)}[/]", highlight=False)
                return session.unattended_decision(node_id)
            with view.paused(), session.abort_switch.prompting():
                prompt = session.rendered(node_id).get("prompt", "Continue with the next step?")
                view.gate(session, node_id)
                answer = Prompt.ask(
                    f"[bold]{prompt}[/]",
                    choices=["approve", "reject", "abort"],
                    default="approve",
                    console=console,
                )
                comment = Prompt.ask("Comment (optional)", default="", console=console) or None
            return GateDecision(Decision(answer), opts.actor, comment, source="cli")
        if not interactive:
            return None
        allowed = session.engine.allowed_decisions(node_id)
        choices = [d.value for d in (Decision.RETRY, Decision.SKIP, Decision.ABORT) if d in allowed]
        with view.paused(), session.abort_switch.prompting():
            answer = Prompt.ask(
                f"[bold red]'{node_id}' failed.[/] What now?",
                choices=choices,
                default=choices[0],
                console=console,
            )
        return GateDecision(Decision(answer), opts.actor, None, source="cli")

    return decide


def _drive(session: RunSession, view: TerminalView, interactive: bool) -> None:
    """Run to the end; Ctrl-C or SIGTERM stops the running command's process group at once and ends the run
    ABORTED (resumable), the interrupted node PENDING with the reason."""
    from playbook_nb.app.abort import on_signals

    try:
        with on_signals(session.abort_switch), view.live(session):
            session.drive(_terminal_decider(view, interactive))
    except KeyboardInterrupt:  # at a prompt
        session.abort(session.options.actor, "interrupted (SIGINT: Ctrl-C)")
    except StorageFault as err:  # the record cannot be written: stop, record ABORTED when possible, exit 4
        raise storage_fault_error(session, err) from None
    session.close()


def storage_fault_error(session: RunSession, err: StorageFault) -> StorageFault:
    """Stop the run for a storage fault; the one line to exit with (exit code 4)."""
    if session.storage_fault(err):
        outcome = f"run {session.run_id} is recorded ABORTED"
    else:
        outcome = f"run {session.run_id} is recorded ABORTED as soon as the index is writable again"
    return StorageFault(f"{err}; the run stopped; {outcome} (resumable)")


def _pair_parameters(parameters: list[str] | None, extra: list[str]) -> list[tuple[str, str]]:
    """`-p NAME VALUE` as papermill takes it (click leaves VALUE among the extra arguments), or `-p NAME=VALUE`."""
    pairs = []
    for item in parameters or []:
        name, sep, value = item.partition("=")
        if not sep:
            if not extra:
                raise PlaybookError(f"-p {item}: expected -p NAME VALUE")
            value = extra.pop(0)
        pairs.append((name, value))
    if extra:
        raise PlaybookError(f"unexpected extra argument(s): {' '.join(extra)}")
    return pairs


@app.command("run", context_settings={"allow_extra_args": True})
def run(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A runbook (.toml) or a compiled notebook (.ipynb)."),
    var: list[str] = VAR,
    vars_file: Path = VARS_FILE,
    vars_env: str = VARS_ENV,
    no_interactive_vars: bool = NO_INTERACTIVE_VARS,
    state_path: str = STATE_PATH,
    max_retries: int = typer.Option(None, "--max-retries", help=MAX_RETRIES_HELP),
    gate_policy: str = typer.Option(
        "fail-closed", "--gate-policy", help="fail-closed, approve-all or reject-all."
    ),
    approve: list[str] = typer.Option(
        None, "--approve", help="Approve this gate (repeatable); GATE=reject rejects."
    ),
    actor: str = typer.Option("", "--actor", help="Who runs this and decides its gates (default: OS user)."),
    comment: str = typer.Option(None, "--comment", help="Comment recorded with policy/parameter decisions."),
    headless: bool = typer.Option(
        False, "--headless", help="Run the runbook's notebook unattended with papermill."
    ),
    output: Path = typer.Option(
        None, "--output", "-o", help="Also write the executed notebook here (headless)."
    ),
    parameters: list[str] = typer.Option(
        None, "-p", "--parameter", help="papermill parameter: -p NAME VALUE (as papermill) or -p NAME=VALUE."
    ),
    parameters_yaml: str = typer.Option(
        None, "-y", "--parameters-yaml", help="papermill parameters as YAML."
    ),
    parameters_file: Path = typer.Option(
        None, "-f", "--parameters-file", help="papermill parameters YAML file."
    ),
    parallel: int = PARALLEL,
    gate_wait: str = GATE_WAIT,
    strict: bool = STRICT,
    widget_state: bool = typer.Option(
        False,
        "--widget-state",
        help="Headless: also save the final graph as widget state in the executed notebook (slower start).",
    ),
    kernel: str = typer.Option(
        None, "--kernel", help="Headless: the Jupyter kernel to run on (default: the notebook's, python3)."
    ),
    as_json: bool = JSON,
) -> None:
    """Run a runbook from the terminal (prompts at gates), or headless through its notebook."""
    if as_json:
        json_output()
    from playbook_nb.app.run_log import attach_run_log
    from playbook_nb.app.settings import Settings
    from playbook_nb.domain.decisions import parse_approve_flags, parse_gate_wait
    from playbook_nb.faces.logs import configure_logging

    settings = Settings.load()  # the configuration, read once for this command and passed down
    configure_logging(settings.config.logging, level_explicit="logging.level" in settings.config.sources)
    retries = max_retries if max_retries is not None else settings.max_retries
    approvals = parse_approve_flags(approve)
    parameter_pairs = _pair_parameters(parameters, list(ctx.args))
    workers = parallel_default(parallel, settings)
    wait = parse_gate_wait(gate_wait, "--gate-wait")
    if headless or file.suffix == ".ipynb":
        from playbook_nb.faces.cli.headless import run_headless

        code = run_headless(
            file,
            var=var,
            vars_file=vars_file,
            vars_env=vars_env,
            state_path=state_path,
            max_retries=retries,
            gate_policy=gate_policy,
            approvals=approvals,
            actor=actor,
            comment=comment,
            output=output,
            parameters=parameter_pairs,
            parameters_yaml=parameters_yaml,
            parameters_file=parameters_file,
            parallel=workers,
            kernel=kernel,
            kernel_env={"PLAYBOOK_NB_WIDGET_STATE": "1"} if widget_state else None,
            settings=settings,
            gate_wait=gate_wait if wait else None,
            strict=strict,
        )
        raise typer.Exit(code)

    from playbook_nb.adapters.executors.local import LocalExecutor
    from playbook_nb.adapters.notifiers.registry import build_notifier
    from playbook_nb.app.inputs import load_runbook
    from playbook_nb.app.session import RunOptions, RunSession
    from playbook_nb.faces.cli.terminal_view import TerminalView

    runbook = load_runbook(file)
    values = resolve_values(
        runbook, var=var, vars_file=vars_file, vars_env=vars_env, no_interactive_vars=no_interactive_vars
    )
    interactive = stdin_is_tty()
    options = RunOptions(
        headless=not interactive,
        trigger="terminal",
        actor=actor,
        max_retries=retries,
        gate_policy=gate_policy,
        approvals=approvals,
        comment=comment,
        parallel=workers,
        gate_wait=wait,
        **settings.decision_options(build_notifier),
    )
    store = open_store(state_path, settings)
    view = TerminalView(real_console(), store, settings.config.ui)
    session = RunSession.start(runbook, values, store, options, executor=LocalExecutor())
    attach_run_log(session)
    view.attach(session)
    _drive(session, view, interactive)
    raise _exit_for(session, view, file, strict)


@app.command("resume")
def resume(
    file: Path = typer.Argument(..., help="The runbook the run was started from."),
    run_id: int = typer.Argument(None, help="Run id (default: the latest ABORTED run of this runbook)."),
    var: list[str] = VAR,
    vars_file: Path = VARS_FILE,
    vars_env: str = VARS_ENV,
    no_interactive_vars: bool = NO_INTERACTIVE_VARS,
    state_path: str = STATE_PATH,
    max_retries: int = typer.Option(None, "--max-retries", help=MAX_RETRIES_HELP),
    approve: list[str] = typer.Option(
        None, "--approve", help="Approve this waiting gate (GATE=reject rejects)."
    ),
    gate_policy: str = typer.Option("fail-closed", "--gate-policy"),
    actor: str = typer.Option("", "--actor"),
    comment: str = typer.Option(None, "--comment"),
    allow_changed: bool = typer.Option(False, "--allow-changed", help="Resume although the runbook changed."),
    take_over: bool = typer.Option(
        False,
        "--take-over",
        help="Drive a run another live session drives: its running command is killed first (an event).",
    ),
    allow_changed_vars: bool = typer.Option(
        False,
        "--allow-changed-vars",
        help="Resume with variable values other than the recorded ones (every approved gate opens again).",
    ),
    parallel: int = PARALLEL,
    gate_wait: str = GATE_WAIT,
    strict: bool = STRICT,
    retry: list[str] = typer.Option(
        None, "--retry", help="Retry this node, which failed and waits for a decision (repeatable)."
    ),
    skip: list[str] = typer.Option(
        None, "--skip", help="Skip this failed non-critical node and go on (repeatable)."
    ),
    as_json: bool = JSON,
) -> None:
    """Resume an ABORTED run, or an orphaned RUNNING one (its process gone): finished nodes are kept, the
    rest runs. A run another live session drives is refused unless --take-over. A node that failed and waits
    for a decision is decided with --retry NODE or --skip NODE (without a terminal nobody else can)."""
    from rich.markup import escape

    from playbook_nb.adapters.executors.local import LocalExecutor
    from playbook_nb.adapters.notifiers.registry import build_notifier
    from playbook_nb.app.inputs import load_runbook
    from playbook_nb.app.run_log import attach_run_log
    from playbook_nb.app.session import RunOptions, RunSession
    from playbook_nb.app.settings import Settings
    from playbook_nb.domain.decisions import parse_approve_flags, parse_gate_wait
    from playbook_nb.faces.cli.terminal_view import TerminalView
    from playbook_nb.faces.logs import configure_logging

    settings = Settings.load()
    configure_logging(settings.config.logging, level_explicit="logging.level" in settings.config.sources)
    if as_json:
        json_output()
    runbook = load_runbook(file)
    store = open_store(state_path, settings)
    if run_id is None:
        latest = store.latest_run(runbook.meta.title, status="ABORTED")
        if latest is None:
            raise PlaybookError(f"no ABORTED run of '{runbook.meta.title}' to resume in {store.path}")
        run_id = latest.id
    recorded = store.get_run(run_id)
    base = {k: v for k, v in (recorded.variables or {}).items() if k not in runbook.secret_names}
    values = resolve_values(
        runbook,
        var=var,
        vars_file=vars_file,
        vars_env=vars_env,
        no_interactive_vars=no_interactive_vars,
        base=base,
    )
    interactive = stdin_is_tty()
    approvals = parse_approve_flags(approve)
    options = RunOptions(
        headless=not interactive,
        trigger="resume",
        actor=actor,
        max_retries=max_retries if max_retries is not None else settings.max_retries,
        gate_policy=gate_policy,
        approvals=approvals,
        comment=comment,
        parallel=parallel_default(parallel, settings),
        gate_wait=parse_gate_wait(gate_wait, "--gate-wait"),
        **settings.decision_options(build_notifier),
    )
    session = RunSession.resume(
        runbook, values, store, run_id, options,
        executor=LocalExecutor(), allow_changed=allow_changed, decisions=_failure_decisions(retry, skip),
        allow_changed_variables=allow_changed_vars,
        take_over=take_over,
    )  # fmt: skip
    view = TerminalView(real_console(), store, settings.config.ui)
    attach_run_log(session)
    view.attach(session)
    console.print(f"Resuming run {run_id} of [bold]{escape(recorded.title)}[/]")
    session.decide_waiting_gates(parameters_only=True, comment=comment or "decided at resume")
    try:
        _drive(session, view, interactive)
    finally:
        _refile_notebook(store, run_id)
    raise _exit_for(session, view, file, strict)


def _failure_decisions(retry: list[str] | None, skip: list[str] | None) -> dict[str, Decision]:
    from playbook_nb.domain.engine import Decision

    decisions = {node_id: Decision.RETRY for node_id in retry or []}
    for node_id in skip or []:
        if node_id in decisions:
            raise PlaybookError(f"--retry {node_id} and --skip {node_id}: choose one")
        decisions[node_id] = Decision.SKIP
    return decisions


def _refile_notebook(store, run_id: int) -> None:
    """A run that filed a notebook (headless, or a notebook session) and was resumed here: its filed notebook
    is brought to the run's state now, so it never disagrees with the index."""
    # imported here: nbformat and Pillow are not needed by a plain terminal run
    from playbook_nb.adapters.notebook.record import file_notebook, read_filed

    base = read_filed(store, run_id)
    if base is not None:
        try:
            file_notebook(store, run_id, base)
        except PlaybookError as err:
            err_console.print(
                f"[yellow]warning:[/] the notebook of run {run_id} was not brought up to date: {err}"
            )


@app.command("set-status")
def set_status(
    file: Path = typer.Argument(..., help="The runbook the run belongs to."),
    run_id: int = typer.Argument(...),
    status: str = typer.Argument(..., help="RUNNING, OK, NOK or ABORTED."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Do not ask for confirmation (needed for RUNNING, which prints a warning); a run whose owner "
        "lives: kill its running command first.",
    ),
    actor: str = typer.Option("", "--actor", help="Who sets it (recorded; default: OS user)."),
    state_path: str = STATE_PATH,
) -> None:
    """Change a run's status by hand: for example an orphaned RUNNING run (process killed) to ABORTED."""
    from rich.prompt import Confirm

    from playbook_nb.adapters.store import RUN_STATUSES
    from playbook_nb.adapters.store.owner import Owner
    from playbook_nb.app.inputs import load_runbook
    from playbook_nb.app.ownership import recover_run
    from playbook_nb.domain.decisions import default_actor

    new = status.upper()
    if new not in RUN_STATUSES:  # before any question
        raise PlaybookError(f"invalid run status {status!r}; valid: {', '.join(RUN_STATUSES)}")
    if new == "RUNNING" and not force:
        raise PlaybookError(
            f"run {run_id}: setting it to RUNNING by hand needs --force (to continue it, resume it)"
        )
    runbook = load_runbook(file)
    store = open_store(state_path)
    run = store.get_run(run_id)
    if run.workflow != runbook.meta.title:
        raise PlaybookError(f"run {run_id} belongs to '{run.workflow}', not to '{runbook.meta.title}'")
    owner = store.owner_status(run_id)
    if owner.live and not force:
        raise PlaybookError(
            f"run {run_id} is {owner.describe()}, which is alive; pass --force to kill its running command"
            " and set the status"
        )
    if not force:
        if not stdin_is_tty():
            raise PlaybookError("set-status needs confirmation: run it in a terminal or pass --force")
        if not Confirm.ask(f"Set run {run_id} from {run.status} to {new}?"):
            raise typer.Exit(ExitCode.NOK)
    who = actor or default_actor()
    confirmed = not force  # the event says how it was allowed: --force, or yes at the prompt
    if run.status == "RUNNING" and new != "RUNNING":
        # No command of the run outlives its status: the live owner (with --force) is fenced off first, then
        # its recorded process groups are killed (an event each), then the status is set.
        me = Owner.this_process(who, kind="playbook-nb set-status")
        why = f"set manually from RUNNING to {new} by {who}; {owner.describe() or 'no owner'}"
        recover_run(store, run_id, me, take_over=True, status=new, reason=why, confirmed=confirmed)
    else:
        # Confirmed (by --force or at the prompt): the store may then also change a finished run.
        store.set_status_manually(run_id, new, force=True, actor=who, confirmed=confirmed)
    console.print(f"run {run_id}: {run.status} -> {new}")
    if new == "RUNNING" and run.status != "RUNNING":
        err_console.print(
            f"[bold yellow]warning:[/] run {run_id} is now RUNNING with no process driving it; nothing will "
            f"run until it is set ABORTED and resumed: playbook-nb set-status {file} {run_id} ABORTED --force",
            highlight=False,
            soft_wrap=True,
        )
