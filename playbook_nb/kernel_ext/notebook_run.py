"""The notebook face of a run: what the setup, node and summary cells of a compiled notebook call.

One `NotebookRun` per kernel wraps the `RunSession` (the one engine). It decides whether there is a human in
front of the notebook (JupyterLab) or not (papermill, nbconvert), starts, resumes or re-attaches the run, and shows
each node's outcome under its own cell.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.display import HTML, display

from playbook_nb.adapters.executors.local import LocalExecutor
from playbook_nb.adapters.notebook.record import dag_bundle, file_notebook, summary_html
from playbook_nb.adapters.notifiers.registry import build_notifier
from playbook_nb.adapters.store import Store
from playbook_nb.app.abort import on_signals, signal_reason
from playbook_nb.app.identity import local_identity
from playbook_nb.app.inputs import resolve_variables
from playbook_nb.app.run_log import attach_run_log
from playbook_nb.app.session import NodeReport, RunOptions, RunSession
from playbook_nb.app.settings import Settings
from playbook_nb.constants import FILED_BY_DRIVER_ENV, OUTPUT_PATH_ENV, RUN_MIME, STOP_REASON_FILE_ENV
from playbook_nb.domain.decisions import GateDecision, parse_gate_wait
from playbook_nb.domain.engine import NodeState, RunState
from playbook_nb.domain.errors import PlaybookError, RunOwned, StorageFault, VariableError
from playbook_nb.domain.validation import parse_runbook, refuse_secret_defaults
from playbook_nb.domain.values import bool_word
from playbook_nb.kernel_ext import driver_watch
from playbook_nb.presentation import mark

if TYPE_CHECKING:
    from playbook_nb.kernel_ext.widget import RunbookWidget

WIDGET_STATE_ENV = "PLAYBOOK_NB_WIDGET_STATE"  # "1": headless runs also save the final graph as widget state


class RunNotOK(Exception):
    """Raised by the summary cell of a headless run that ended NOK or ABORTED, so papermill and CI see it."""


class RunStorageFault(Exception):
    """Raised by a node's cell when the run record could not be written: the notebook stops there (papermill
    and the headless face see it by this name and exit 4). Shown as its one line."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[1;31merror: {self}\x1b[0m"]


class RunAborted(Exception):
    """Raised by a node's cell in JupyterLab when the run was aborted while it ran (Kernel > Interrupt), so
    Run All stops there. Shown as its one line, not a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[1;33m{self}\x1b[0m"]


def has_front_end() -> bool:
    """Whether a human is in front of this notebook, when the `headless` parameter does not say (None).

    Decided from the Jupyter protocol, never from environment variables: the execute_request running this
    cell (the setup cell) says whether its client answers input prompts (`allow_stdin`). JupyterLab, Jupyter
    Notebook, VS Code and the consoles send true (a person types the answer); nbclient, and with it papermill,
    nbconvert --execute and jupyter-scheduler, always sends false. No kernel (plain IPython, a script) or a
    request that is no execute_request (a widget message): no front end. So every unattended run fails closed
    at its gates, whatever environment it inherits. The engine and the CLI never rely on this: they pass
    `headless=True` explicitly."""
    kernel = getattr(_ipython(), "kernel", None)
    get_parent = getattr(kernel, "get_parent", None)
    if get_parent is None:
        return False
    try:
        parent = get_parent("shell") or {}
    except LookupError:  # no request handled yet in this context
        return False
    if (parent.get("header") or {}).get("msg_type") != "execute_request":
        return False
    return (parent.get("content") or {}).get("allow_stdin") is True


def notebook_path_hint() -> str | None:
    if os.environ.get(OUTPUT_PATH_ENV):
        return os.path.abspath(os.environ[OUTPUT_PATH_ENV])
    from_papermill = papermill_output_path()
    if from_papermill:
        return from_papermill
    session_name = os.environ.get("JPY_SESSION_NAME")
    if session_name:
        candidate = Path.cwd() / Path(session_name).name
        return str(candidate) if candidate.exists() else session_name
    return None


def papermill_output_path(ppid: int | None = None) -> str | None:
    """The output notebook of a plain `papermill IN OUT ...` (its default engine sets no environment): read
    from the command line of the process that started this kernel, parsed by papermill's own CLI parser, and
    made absolute against that process's working directory (or its --cwd). None when the parent is no
    papermill CLI, or writes to stdout."""
    ppid = os.getppid() if ppid is None else ppid
    try:
        argv = Path(f"/proc/{ppid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
        parent_cwd = os.readlink(f"/proc/{ppid}/cwd")
    except OSError:
        return None
    argv = [a for a in argv if a]
    start = next(
        (i + 1 for i, a in enumerate(argv) if Path(a).name == "papermill" or (a == "papermill" and i > 0)),
        None,
    )
    if start is None:
        return None
    try:
        from papermill.cli import papermill as papermill_cli

        ctx = papermill_cli.make_context("papermill", argv[start:], resilient_parsing=True)
    except Exception:  # not papermill's arguments after all
        return None
    output = ctx.params.get("output_path")
    if not output or output == "-":
        return None
    if "://" in str(output):
        return str(output)
    return os.path.abspath(os.path.join(parent_cwd, str(output)))


def interrupt_reason(signum: int) -> str:
    """Why the kernel was interrupted: what the headless CLI driving it wrote in its stop-reason file before it
    sent the SIGINT ("terminated (SIGTERM)" for a cancelled CI job), else the signal itself (Kernel > Interrupt)."""
    path = os.environ.get(STOP_REASON_FILE_ENV)
    if path:
        with contextlib.suppress(OSError, UnicodeError):
            written = Path(path).read_text().strip()
            if written:
                return written[:200]
    return signal_reason(signum)


class NotebookRun:
    def __init__(self, session: RunSession, *, headless: bool):
        self.session = session
        self.headless = headless
        self.widget: RunbookWidget | None = None
        self.cell_code: dict[
            str, str
        ] = {}  # the code each Python node's cell last ran (the widget's Run reuses it)
        self._cell_node: str | None = None  # the node whose cell runs now (parallel: siblings stay quiet)
        self.variables_form: Any = None  # the form above the cockpit (JupyterLab, a runbook with variables)
        self.form_factory: Any = None  # builds it at show() (open_run sets it for an interactive run)
        session.output_listeners.append(self._print_output)
        if (
            not headless
        ):  # an interactive run files its notebook when it ends or aborts (headless: the CLI does)
            session.event_listeners.append(self._file_when_it_stops)
        driver_watch.install(getattr(_ipython(), "kernel", None), _current_run)

    @property
    def cell_running(self) -> bool:
        """Whether one of this run's cells runs now (it records what happens to its node as it returns)."""
        return self._cell_node is not None

    # -- cells -------------------------------------------------------------------------------
    def show(self) -> None:
        """The setup cell's output: the variables form (interactive, a runbook with variables), then the run
        record id (machine-readable) and the DAG."""
        if not self.headless and self.variables_form is None and self.form_factory is not None:
            self.variables_form = self.form_factory(self)
        form = self.variables_form
        if form is None:
            self.show_cockpit()
            return
        display(form.box)
        self.show_cockpit(into=form.slot)

    def show_cockpit(self, into: Any = None) -> None:
        """The run record id (machine-readable) and the DAG: the cockpit widget, or headless its picture.
        `into`: a box the cockpit becomes the child of (the variables form's) instead of a display of its own."""
        run = self.session.store.get_run(self.session.run_id)
        display(
            {
                RUN_MIME: {"run_id": run.id, "number": run.number, "db": str(self.session.store.path)},
                "text/plain": f"run {run.id} (#{run.number}) of {run.title!r}, recorded in {self.session.store.path}",
            },
            raw=True,
        )
        if self.headless:
            self._show_dag()
        else:
            from playbook_nb.kernel_ext.widget import RunbookWidget

            self.widget = RunbookWidget(self)
            if into is None:
                display(self.widget)
            else:
                into.children = (self.widget,)

    def cell(self, node_id: str, code: str | None = None) -> NodeReport:
        """A node's cell: run the node through the engine if it is ready, else say plainly why not.

        While the node runs, SIGINT (Kernel > Interrupt, or the headless driver stopping) aborts the run:
        the node's command is stopped at once and the run ends ABORTED; in JupyterLab the cell then fails
        with one line, so Run All stops there. In a watch-only view (another session drives the run) the cell
        says so and runs nothing."""
        session = self.session
        if session.watch_only:
            return self._watching(node_id)
        if self.headless and session.status is RunState.RUNNING:
            self._decide_waiting_gates()
        self._cell_node = node_id
        was_requested = session.abort_switch.requested
        try:
            with on_signals(session.abort_switch, (signal.SIGINT,), interrupt_reason):
                report = session.run_node(node_id, code=code)
        except StorageFault as err:
            raise self._storage_fault(err) from None
        finally:
            self._cell_node = None
        if self.headless and session.status is RunState.RUNNING:
            self._decide_waiting_gates()
            background = report.background
            report = session.report(node_id, ran=report.ran, result=report.result, attempt=report.attempt)
            report.background = background
        self._show_report(report)
        if not self.headless and not was_requested and session.abort_switch.requested:
            raise RunAborted(
                f"run {session.run_id} ABORTED: {session.abort_switch.reason}; resume it to continue"
            )
        return report

    async def cell_async(self, node_id: str) -> NodeReport:
        """A node's cell in JupyterLab (see `async_node_cells`): the node's command runs while the cell
        awaits it, so the cockpit's buttons stay live (Abort stops the command at once)."""
        session = self.session
        if session.watch_only:
            return self._watching(node_id)
        self._cell_node = node_id
        was_requested = session.abort_switch.requested
        try:
            with on_signals(session.abort_switch, (signal.SIGINT,), interrupt_reason):
                report = await session.run_node_async(node_id)
        except StorageFault as err:
            raise self._storage_fault(err) from None
        finally:
            self._cell_node = None
        self._show_report(report)
        if not was_requested and session.abort_switch.requested:
            raise RunAborted(
                f"run {session.run_id} ABORTED: {session.abort_switch.reason}; resume it to continue"
            )
        return report

    def _watching(self, node_id: str) -> NodeReport:
        session = self.session
        session.sync()
        print(f"{node_id}: not run: run {session.run_id} is {session.owner_line()}; this view is watch-only")
        if self.widget is not None:
            self.widget.watch_tick()
        return session.report(node_id, ran=False)

    def _storage_fault(self, err: StorageFault) -> RunStorageFault:
        recorded = self.session.storage_fault(err)
        when = (
            "is recorded ABORTED"
            if recorded
            else "is recorded ABORTED as soon as the index is writable again"
        )
        return RunStorageFault(f"{err}; the run stopped; run {self.session.run_id} {when} (resumable)")

    def summary(self) -> None:
        """The last cell: finish what can finish, show the final states, fail the notebook if the run failed."""
        session = self.session
        self._cell_node = "*"  # whatever still runs now shows its output here
        try:
            if self.headless and session.status is RunState.RUNNING:
                session.drive(self._headless_decider)
            session.close()
        finally:
            self._cell_node = None
        run = session.store.get_run(session.run_id)
        display(HTML(summary_html(session.store, session.run_id)))
        self._show_dag()
        if self.headless and self.widget is None and os.environ.get(WIDGET_STATE_ENV) == "1":
            # Opt-in (it costs the ipycytoscape import): the final graph as a widget, whose state nbclient
            # saves in the executed notebook, so JupyterLab shows the live-looking graph of a headless run.
            from playbook_nb.kernel_ext.widget import RunbookWidget

            self.widget = RunbookWidget(self)
            self.widget.show_as_record()
            display(self.widget)
        if self.widget is not None:
            self.widget.refresh()
        if run.status in ("NOK", "ABORTED") and self.headless:
            raise RunNotOK(
                f"run {run.id} ended {run.status}{': ' + run.status_reason if run.status_reason else ''}"
            )
        if run.status == "RUNNING":
            waiting = ", ".join(n for n, _ in session.awaiting()) or "nothing"
            print(f"run {run.id} is still RUNNING; it waits for: {waiting}. Decide in the graph above.")

    # -- the filed notebook ----------------------------------------------------------------------
    def _file_when_it_stops(self, event) -> None:
        if (
            event.kind == "run_state"
            and event.state in ("OK", "NOK", "ABORTED")
            and not self.session.watch_only
        ):
            self.file_notebook()  # the driver files it; a watch-only view never does

    def file_notebook(self) -> str | None:
        """File this run's notebook in its artifact directory: the saved working notebook (or the one
        compiled from the run's runbook) with node and summary cells brought up to date from the record, its
        setup cell a record setup cell. `export --notebook` returns this snapshot, never the live notebook."""
        base = None
        hint = notebook_path_hint()
        if hint and hint.endswith(".ipynb") and os.path.isfile(hint):
            with contextlib.suppress(Exception):  # an unreadable working copy: the compiled notebook
                import nbformat

                base = nbformat.read(hint, as_version=4)
        try:
            return file_notebook(self.session.store, self.session.run_id, base)
        except PlaybookError as err:
            print(f"warning: the notebook of run {self.session.run_id} was not filed: {err}", file=sys.stderr)
            return None

    def _show_dag(self) -> None:
        if self.headless and os.environ.get(FILED_BY_DRIVER_ENV) == "1":
            return  # `playbook-nb run --headless` files this notebook with the graph drawn from the index
        data, metadata = dag_bundle(self.session.runbook, self.session.states())
        display(data, metadata=metadata, raw=True)

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _headless_decider(session: RunSession, node_id: str, kind: str) -> GateDecision | None:
        return session.unattended_decision(node_id) if kind == "gate" else None

    def _decide_waiting_gates(self) -> None:
        self.session.decide_waiting_gates()

    def _print_output(self, node_id: str, stream: str, text: str) -> None:
        if (
            self._cell_node != "*"
            and node_id != self._cell_node
            and self.session.running_in_background(node_id)
        ):
            return  # a sibling running in the background: its own cell shows its output when it collects it
        target = sys.stderr if stream == "stderr" else sys.stdout
        target.write(text if text.endswith("\n") else text + "\n")

    def _show_report(self, report: NodeReport) -> None:
        state = str(report.state)
        result = report.result
        if report.ran and result is not None:
            line = (
                f"{mark(state)} {report.node_id}: {state} (attempt {report.attempt}, {result.duration:.2f}s)"
            )
            if result.error:
                line += f"\n  error: {result.error}"
            if result.return_value is not None:
                line += f"\n  result: {result.return_value!r}"
            if (
                state not in ("OK", "NOK", "SKIPPED")
                or report.state is NodeState.PENDING
                or state != "OK"
                and report.message
            ):
                line += f"\n  {report.message}"
        else:
            line = f"{mark(state)} {report.node_id}: {report.message}"
        if report.background and result is not None:  # ran while an earlier cell waited: show its output here
            if result.stdout:
                sys.stdout.write(result.stdout if result.stdout.endswith("\n") else result.stdout + "\n")
            if result.stderr:
                sys.stderr.write(result.stderr if result.stderr.endswith("\n") else result.stderr + "\n")
        print(line)
        self._show_images(report)
        if self.widget is not None:
            self.widget.refresh()

    def _show_images(self, report: NodeReport) -> None:
        """The images the attempt left in the run's artifacts (a screenshot, its pixelmatch diff), under the
        cell: the executed notebook then holds them, as the HTML report does."""
        from IPython.display import Image

        for entry in report.artifacts:
            if not str(entry.get("type", "")).startswith("image/"):
                continue
            try:
                with self.session.store.open_artifact(entry["url"]) as handle:
                    data = handle.read()
            except (OSError, PlaybookError) as err:
                print(f"  artifact {entry.get('name')}: cannot read {entry.get('url')}: {err}")
                continue
            print(f"  artifact {entry.get('name')}: {entry.get('url')}")
            display(Image(data=data))


_current: Any = None  # the NotebookRun of this kernel, or a RecordView (a filed notebook run again)


async def node_cell_async(node_id: str) -> None:
    """What a `%playbook_node ID` cell becomes in JupyterLab (see `async_node_cells`)."""
    try:
        await current().cell_async(node_id)
    except PlaybookError as err:  # one clear line under the cell, as the magic does
        print(f"error: {err}")


def async_node_cells(lines: list[str]) -> list[str]:
    """An IPython input transformer for interactive runs (a front end, see `has_front_end`): a cell that is
    exactly `%playbook_node ID` runs as `await node_cell_async(ID)`. The kernel (ipykernel 7) dispatches widget messages while an async
    cell awaits, so an Abort click is handled while the node's command runs; a plain magic would block the
    kernel until the command ends."""
    if not isinstance(_current, NotebookRun) or _current.headless:
        return lines  # headless (papermill) or no run yet: the plain magic, which decides gates unattended
    code = [line for line in lines if line.strip()]
    if len(code) != 1 or not code[0].lstrip().startswith("%playbook_node "):
        return lines
    node_id = code[0].strip().split(None, 1)[1].strip()
    return [
        "from playbook_nb.kernel_ext.notebook_run import node_cell_async as __playbook_node_cell\n",
        f"await __playbook_node_cell({node_id!r})\n",
    ]


def _current_run() -> NotebookRun | None:
    return _current if isinstance(_current, NotebookRun) else None  # a record view runs nothing


def _ipython():
    try:
        from IPython import get_ipython

        return get_ipython()
    except ImportError:
        return None


def current() -> Any:
    if _current is None:
        raise PlaybookError("no run is open in this kernel: run the notebook's setup cell first")
    return _current


def open_run(
    runbook_toml: str,
    *,
    sha256: str | None = None,
    variables: dict[str, Any] | None = None,
    secret_env: dict[str, str] | None = None,
    approvals: dict[str, str] | None = None,
    gate_policy: str = "fail-closed",
    actor: str = "",
    comment: str = "",
    run_id: int | str | None = None,
    allow_changed_vars: bool = False,
    state_path: str = "",
    max_retries: int = 3,
    headless: bool | None = None,
    parallel: int | None = None,
    parameters: dict[str, Any] | None = None,
    take_over: bool = False,
    gate_wait: str | float | None = None,
) -> NotebookRun:
    """Start a new run of the notebook's runbook, or resume the run named by `run_id` (never one by itself).
    Resuming with variable values other than the recorded ones is refused unless `allow_changed_vars`.

    A named run another live session drives (another kernel, a terminal) opens watch-only: the cockpit shows
    its states live and who drives it, with no action buttons, unless `take_over` (an event with the actor).
    Headless, such a run is refused. A named RUNNING run whose owner is gone (its kernel restarted) is
    recovered first: its leftover commands killed, the attempt INTERRUPTED, then resumed."""
    global _current
    asked = dict(locals())  # the form's Run opens the run again with these and its values
    runbook = parse_runbook(runbook_toml, path="notebook")
    refuse_secret_defaults(runbook)  # a notebook compiled before they were refused
    if sha256 and sha256 != runbook.sha256:
        print(
            f"note: the runbook text differs from the compiled one (sha256 {sha256[:12]} -> {runbook.sha256[:12]})"
        )
    headless = (not has_front_end()) if headless is None else _flag(headless, "headless")
    asked["headless"] = headless  # the form's Run (a widget message, no execute_request) keeps this decision
    variables, secret_env, approvals = (
        _mapping(variables, "variables"),
        _mapping(secret_env, "secret_env"),
        _mapping(approvals, "approvals"),
    )  # `papermill -p variables '{"A": "b"}'` injects a string, not a dict
    settings = Settings.load()  # the configuration, read once for this run
    store = settings.open_store(state_path or None)
    resume_id = _run_to_resume(run_id, runbook, store, headless)
    given = {**(variables or {}), **_given_parameters(runbook, parameters)}
    if resume_id is not None:
        given = _resume_values(runbook, store, resume_id, given)
    try:
        values = _values(runbook, given, secret_env or {})
    except VariableError as err:
        if headless or resume_id is not None:
            raise
        _current = _variables_form(runbook, given, str(err), asked, secret_env or {})
        return _current
    options = RunOptions(
        headless=headless,
        trigger="papermill" if headless else "notebook",
        actor=actor or local_identity(),
        max_retries=int(max_retries),
        gate_policy=gate_policy,
        approvals=dict(approvals or {}),
        comment=comment or None,
        parallel=_parallel(parallel, settings),
        gate_wait=_gate_wait(gate_wait) if headless else 0.0,
        **settings.decision_options(build_notifier),
    )
    namespace = _user_namespace()
    owner = store.owner_status(resume_id) if resume_id is not None else None
    if resume_id is not None and owner is not None and owner.live and not take_over:
        if headless:
            raise RunOwned(f"run {resume_id} is {owner.describe()}; a headless run cannot drive it")
        session = RunSession.watch(
            runbook, values, store, resume_id, options, executor=LocalExecutor(), namespace=namespace
        )
        _current = NotebookRun(session, headless=headless)
        return _current
    if resume_id is not None:
        session = RunSession.resume(
            runbook, values, store, resume_id, options, executor=LocalExecutor(), namespace=namespace,
            allow_changed_variables=bool(allow_changed_vars), take_over=take_over,
        )  # fmt: skip
        print(f"resumed run {resume_id} (run_id = {resume_id} in the parameters cell)")
    else:
        session = RunSession.start(
            runbook, values, store, options, executor=LocalExecutor(), namespace=namespace
        )
        if not headless and (note := _unfinished_note(store, runbook, session.run_id)):
            print(note)
    hint = notebook_path_hint()
    if (
        hint and headless
    ):  # papermill's output file; an interactive run files its own snapshot (see file_notebook)
        store.set_notebook_path(session.run_id, hint)
    if settings.config.logging.file_path:  # the kernel's stderr is a cell's output: the log file only
        from playbook_nb.faces.logs import configure_logging

        configure_logging(settings.config.logging, stderr=False)
    attach_run_log(session)
    _current = NotebookRun(session, headless=headless)
    if not headless and runbook.variables:  # the form above the cockpit: change a value, start a new run
        shown = {k: v for k, v in values.items() if k not in runbook.secret_names}
        _current.form_factory = lambda run: _variables_form(
            runbook, shown, "", asked, secret_env or {}, started=run
        )
    return _current


def _variables_form(
    runbook,
    given: dict[str, Any],
    problem: str,
    asked: dict[str, Any],
    secret_env: dict[str, str],
    started: NotebookRun | None = None,
):
    """The variables form (issue 17.5). In JupyterLab, variables that are missing or refused show it instead
    of a traceback; a run that started shows it compact above its cockpit (`started`). Its Run opens a new
    run with the form's values (never a resume: `run_id` named a run for the first opening only)."""
    from playbook_nb.kernel_ext.variables_form import VariablesForm

    def start(values: dict[str, Any]) -> NotebookRun:
        again = {**asked, "variables": values, "parameters": None}
        if started is not None:
            again.update(run_id=None, take_over=False, allow_changed_vars=False)
        return open_run(again.pop("runbook_toml"), **again)

    from_env = {  # a secret the environment gives need not be typed again
        name: env
        for name in runbook.secret_names
        if (env := secret_env.get(name, f"PLAYBOOK_SECRET_{name}")) in os.environ
    }
    return VariablesForm(runbook, given, problem, start, secrets_from_env=from_env, started=started)


def _parallel(parallel: int | None, settings: Settings) -> int:
    """The `parallel` notebook parameter (papermill injects it as a variable; the setup cell need not pass it),
    else `[execution] parallel` from the configuration. With N > 1 a node cell also starts its ready Command and
    Function siblings in the background; their own cells then wait for them and show their results."""
    if parallel is None:
        injected = _user_namespace().get("parallel")
        if isinstance(injected, int) and not isinstance(injected, bool) and injected >= 1:
            return injected
        return settings.parallel()
    return max(1, int(parallel))


def _gate_wait(gate_wait: str | float | None) -> float:
    """The `gate_wait` notebook parameter ("30m", 1800; papermill injects it as a variable, the setup cell need
    not pass it): how long a headless run waits at a gate nobody decides for a decision from anywhere."""
    if gate_wait is None:
        gate_wait = _user_namespace().get("gate_wait")
    return parse_gate_wait(gate_wait, "notebook parameter gate_wait")


def _run_to_resume(run_id, runbook, store: Store, headless: bool) -> int | None:
    """The run named by `run_id`, else None: a notebook starts a new run unless a run is named explicitly
    (no silent resume, issue 13: an aborted run resumed by Restart & Run All would run its next step with
    the approvals given before). A named run left RUNNING is watched when its owner lives (another kernel),
    else recovered by the resume (the kernel that drove it is gone)."""
    if run_id in (None, "", "new"):
        return None
    return int(run_id)


def _unfinished_note(store: Store, runbook, new_run: int) -> str | None:
    """Lines under the setup cell when this runbook has unfinished runs (among its last 5) a new run did not
    resume: the first one's full note, then one line for each other."""
    lines: list[str] = []
    for run in store.list_runs(workflow=runbook.meta.title, limit=5):
        if run.id != new_run and run.status in ("ABORTED", "RUNNING"):
            why = f" ({run.status_reason})" if run.status_reason else ""
            if run.status == "RUNNING" and (owner := store.owner_status(run.id).describe()):
                why = f", {owner}"  # "driven by alice (kernel ...)" or "orphaned (owner gone since ...)"
            if not lines:
                lines.append(
                    f"note: started a new run {new_run}; run {run.id} of this runbook is {run.status}{why}. "
                    f"To resume it instead, set run_id = {run.id} in the parameters cell and run the notebook "
                    "again."
                )
            else:
                lines.append(f"note: run {run.id} of this runbook is {run.status}{why} too.")
    return "\n".join(lines) or None


def _resume_values(runbook, store: Store, run_id: int, variables: dict[str, Any]) -> dict[str, Any]:
    """A resumed run's variables: the recorded values (secrets excepted), with the parameters cell's on top
    (a value that differs is refused by the resume unless allowed)."""
    recorded = store.get_run(run_id).variables or {}
    base = {k: v for k, v in recorded.items() if k not in runbook.secret_names}
    return {**base, **variables}


def _given_parameters(runbook, parameters: dict[str, Any] | None) -> dict[str, Any]:
    """The per-variable parameters someone set (papermill -p ENVIRONMENT prod): those not None and not the
    runbook's default as the parameters cell holds it. They win over the `variables` dict."""
    given = {}
    for name, value in (parameters or {}).items():
        variable = runbook.variables.get(name)
        if variable is None or variable.secret or value is None or value == variable.default:
            continue
        given[name] = value
    return given


def _values(runbook, variables: dict[str, Any], secret_env: dict[str, str]) -> dict[str, Any]:
    given = {k: v if isinstance(v, str) else _json(v) for k, v in variables.items()}
    for name in runbook.secret_names:
        env_name = secret_env.get(name, f"PLAYBOOK_SECRET_{name}")
        if env_name in os.environ and name not in given:
            given[name] = os.environ[env_name]
    return resolve_variables(runbook, cli_vars=given, vars_file=None, vars_env_prefix=None, interactive=False)


def _flag(value: Any, name: str) -> bool:
    """A yes/no parameter: a bool, or one of the true/false words (`papermill -p headless true` passes text)."""
    if isinstance(value, bool):
        return value
    word = bool_word(value) if isinstance(value, str) else None
    if word is None:
        raise PlaybookError(f"parameter {name}: expected True or False, got {value!r}")
    return word


def _mapping(value: Any, name: str) -> dict[str, Any]:
    """A dict parameter, also when given as JSON/YAML text (papermill's CLI `-p NAME VALUE` passes text)."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        import yaml

        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            value = None
        if not isinstance(value, dict):
            raise PlaybookError(f'parameter {name}: expected a mapping such as {{"NAME": "value"}}')
    return dict(value)


def _json(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _user_namespace() -> dict[str, Any]:
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            return shell.user_ns
    except ImportError:
        pass
    return {}
