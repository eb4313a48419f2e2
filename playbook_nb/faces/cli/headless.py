"""`playbook-nb run --headless` / `run NB.ipynb`: the notebook, executed by papermill, records its own run.

The CLI only prepares parameters (secrets go through the kernel's environment, never as parameters), runs
papermill, then files the executed notebook into the run's artifact directory and reports the status.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from rich.markup import escape

from playbook_nb.adapters.notebook.compile import compile_runbook, parameter_names, write_notebook
from playbook_nb.adapters.notebook.kernels import kernelspec_of
from playbook_nb.adapters.notebook.light_nbformat import nbformat
from playbook_nb.adapters.notebook.papermill_run import run_notebook
from playbook_nb.adapters.notebook.record import RECORD_KEY, file_notebook, recorded_notebook
from playbook_nb.adapters.notebook.stop import stop_on_signals, stop_reason
from playbook_nb.app.inputs import load_runbook
from playbook_nb.app.settings import Settings
from playbook_nb.constants import (
    FILED_BY_DRIVER_ENV,
    NOTIFY_FAILED_EVENT,
    RUN_MIME,
    STOP_REASON_FILE_ENV,
    secret_env_name,
)
from playbook_nb.domain.errors import PlaybookError, StorageFault
from playbook_nb.domain.exit_codes import ExitCode, exit_code_for
from playbook_nb.domain.model import Runbook
from playbook_nb.domain.validation import parse_runbook, refuse_secret_defaults
from playbook_nb.faces import run_json
from playbook_nb.faces.cli.app import console, emit_json, err_console, json_active
from playbook_nb.faces.cli.common import open_store, resolve_values, run_document
from playbook_nb.presentation import rich_style


def runbook_of_notebook(path: Path) -> Runbook:
    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get("playbook_nb")
    if not meta or "runbook_text" not in meta:
        raise PlaybookError(
            f"{path}: not a playbook-nb notebook (no playbook_nb metadata); compile a runbook first"
        )
    runbook = parse_runbook(meta["runbook_text"], path=str(path))
    refuse_secret_defaults(runbook)  # a notebook compiled before they were refused
    return runbook


def run_record_of(nb: Any) -> dict[str, Any] | None:
    """The run id the kernel announced in the setup cell's output of the executed notebook `nb`."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RUN_MIME in data:
                return dict(data[RUN_MIME])
    return None


def _papermill_parameters(
    parameters, parameters_yaml, parameters_file, variable_names=()
) -> tuple[dict[str, Any], dict[str, str]]:
    """(papermill parameters, runbook variables given as `-p NAME VALUE`: their text, checked like --var)."""
    params: dict[str, Any] = {}
    as_vars: dict[str, str] = {}
    if parameters_file:
        params.update(yaml.safe_load(Path(parameters_file).read_text()) or {})
    if parameters_yaml:
        params.update(yaml.safe_load(parameters_yaml) or {})
    for item in parameters or []:
        if isinstance(item, str):  # NAME=VALUE (programmatic callers)
            key, sep, raw = item.partition("=")
            if not sep:
                raise PlaybookError(f"-p {item}: expected NAME VALUE")
        else:  # -p NAME VALUE, as papermill takes it
            key, raw = item
        if key in variable_names:
            as_vars[key] = raw
            params.pop(key, None)
            continue
        try:
            params[key] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as err:
            raise PlaybookError(f"-p {key}: value is not valid YAML: {str(err).splitlines()[0]}") from None
    for key in [k for k in params if k in variable_names]:  # from -y / -f: a variable's value
        value = params.pop(key)
        as_vars[key] = value if isinstance(value, str) else json.dumps(value)
    return params, as_vars


def _refuse_unknown_parameters(extra: dict[str, Any], runbook: Runbook, accepted: set[str]) -> None:
    """A parameter that is neither a runbook variable nor one the notebook takes would be injected and
    ignored: refused, naming both lists."""
    unknown = sorted(set(extra) - accepted)
    if unknown:
        declared = ", ".join(runbook.variables) or "none"
        raise PlaybookError(
            f"-p {unknown[0]}: neither a runbook variable (declared: {declared}) nor a notebook parameter "
            f"({', '.join(sorted(accepted))})"
        )


def _refuse_a_record(file: Path) -> None:
    """A filed (executed) notebook is the record of its run: it never starts another one."""
    try:
        record = (nbformat.read(file, as_version=4).metadata.get("playbook_nb") or {}).get(RECORD_KEY)
    except (OSError, ValueError):
        return  # runbook_of_notebook says what is wrong with it
    if record:
        raise PlaybookError(
            f"{file} is the record of run {record.get('run_id')} (an executed notebook): it never starts a "
            "run; run its runbook or the compiled notebook instead"
        )


def run_headless(
    file: Path,
    *,
    var,
    vars_file,
    vars_env,
    state_path,
    max_retries,
    gate_policy,
    approvals,
    actor,
    comment,
    output,
    parameters,
    parameters_yaml,
    parameters_file,
    parallel: int = 1,
    kernel: str | None = None,
    kernel_env: dict[str, str] | None = None,
    settings: Settings | None = None,
    gate_wait: str | None = None,
    strict: bool = False,
) -> int:
    began = datetime.now(UTC)
    is_notebook = file.suffix == ".ipynb"
    kernelspec = kernelspec_of(kernel) if kernel else None
    if is_notebook:
        _refuse_a_record(file)
    runbook = runbook_of_notebook(file) if is_notebook else load_runbook(file)
    extra, as_vars = _papermill_parameters(
        parameters, parameters_yaml, parameters_file, set(runbook.variables)
    )
    given_vars = {**dict(extra.pop("variables", {}) or {}), **as_vars}
    _refuse_unknown_parameters(
        extra, runbook, parameter_names(nbformat.read(file, as_version=4) if is_notebook else None)
    )
    if extra.pop("headless", True) is not True:
        raise PlaybookError(
            "-p headless: a notebook the CLI runs is always headless (nobody at the notebook)"
        )
    values = resolve_values(
        runbook,
        var=[*(f"{k}={v}" for k, v in given_vars.items()), *(var or [])],
        vars_file=vars_file,
        vars_env=vars_env,
        no_interactive_vars=True,
    )
    secrets = {name: str(values.pop(name)) for name in runbook.secret_names if values.get(name) is not None}
    store = open_store(state_path, settings)
    params: dict[str, Any] = {
        "variables": values,
        "secret_env": {name: f"PLAYBOOK_SECRET_{name}" for name in secrets},
        "approvals": {**(extra.pop("approvals", {}) or {}), **approvals},
        "gate_policy": extra.pop("gate_policy", gate_policy),
        "actor": extra.pop("actor", actor),
        "comment": extra.pop("comment", comment or ""),
        "state_path": str(store.path),
        "max_retries": extra.pop("max_retries", max_retries),
        "headless": True,
        **extra,
    }
    if gate_wait and "gate_wait" not in params:  # a notebook parameter read by open_run, as text ("30m")
        params["gate_wait"] = gate_wait
    workers = int(params.pop("parallel", parallel) or 1)
    if workers > 1:  # a notebook parameter read by open_run (cells start ready siblings in the background)
        params["parallel"] = workers
    with tempfile.TemporaryDirectory(prefix="playbook-nb-") as tmp:
        if is_notebook:
            input_path = file
        else:
            input_path = Path(tmp) / "runbook.ipynb"
            write_notebook(compile_runbook(runbook, source_path=str(file), kernelspec=kernelspec), input_path)
        executed = Path(tmp) / "executed.ipynb"
        stop_reason_file = Path(tmp) / "stop-reason"
        with stop_on_signals(stop_reason_file):
            outcome = run_notebook(
                str(input_path),
                str(executed),
                parameters=params,
                env_secrets={secret_env_name(name): value for name, value in secrets.items()},
                kernel_env={
                    **(kernel_env or {}),
                    FILED_BY_DRIVER_ENV: "1",  # this process files the record
                    STOP_REASON_FILE_ENV: str(stop_reason_file),
                },
                kernel_name=kernel,
                cwd=str(file.resolve().parent),
            )
        if outcome.ename == "RunStorageFault":  # the kernel could not write the record: it said why
            executed_nb = nbformat.read(executed, as_version=4) if executed.exists() else None
            record = run_record_of(executed_nb) if executed_nb is not None else None
            if executed_nb is not None and record is not None:
                with contextlib.suppress(PlaybookError):
                    _file_notebook(store, int(record["run_id"]), executed_nb, output)
            raise StorageFault((outcome.evalue or "").strip().splitlines()[0])
        if not executed.exists():
            raise PlaybookError(f"papermill wrote no notebook for {file}: {outcome.error_summary}")
        # the notebook papermill wrote, as it returned it (reading it back would cost an O(N) validation)
        executed_nb = (
            outcome.notebook if outcome.notebook is not None else nbformat.read(executed, as_version=4)
        )
        record = run_record_of(executed_nb)
        if record is None:
            if output:
                shutil.copyfile(executed, output)
            err_console.print(
                f"[bold red]error:[/] the notebook never started its run: {escape(outcome.error_summary or '')}"
            )
            return ExitCode.INVALID
        run_id = int(record["run_id"])
        _ended(store, run_id, outcome)  # first: the filed notebook shows the status the index keeps
        _file_notebook(store, run_id, executed_nb, output)
    run = store.get_run(run_id)
    _print_result(run, store)
    _warn_undelivered(store, run_id, began)
    if stop_reason():
        err_console.print(
            f"[bold yellow]stopped:[/] {stop_reason()}; run {run_id} is {run.status}"
            + (f", resume it with: playbook-nb resume {file} {run_id}" if run.status == "ABORTED" else ""),
            highlight=False,
        )
    code = exit_code_for(run.status, len(run_json.handled_failures(store.node_states(run_id))), strict)
    if json_active():
        emit_json(run_document(store, run_id, code))
    return code


def _warn_undelivered(store, run_id: int, since: datetime) -> None:
    """Notifications this run gave up on (the kernel's log goes to a file at most): one warning line each."""
    for event in store.events(run_id):
        if event.kind == NOTIFY_FAILED_EVENT and event.at >= since and isinstance(event.payload, dict):
            what = event.payload.get("event") or f"{event.payload.get('messages')} message(s)"
            tries = f" after {event.payload['attempts']} attempts" if event.payload.get("attempts") else ""
            line = (
                f"notifier {event.payload.get('target')}: {what} of run {run_id} not delivered{tries}: "
                f"{event.payload.get('error')}"
            )
            err_console.print(f"[bold yellow]warning:[/] {escape(line)}", highlight=False)


def _file_notebook(store, run_id: int, executed: Any, output: Path | None) -> None:
    """The executed notebook into the run's artifacts (and to --output), brought up to date from the index as
    the run's record (`adapters.notebook.record`). When the artifact store refuses it, the record must not
    point at the temporary notebook: StorageFault, exit 4."""
    record = None  # built once, in place (this process has no further use for `executed`), for both files
    with contextlib.suppress(PlaybookError):  # file_notebook below says what is wrong, with its own rules
        record = recorded_notebook(store, run_id, executed, refresh_nodes=False, in_place=True)
    if output:  # the same record as the filed one (summary from the index, a record setup cell)
        nbformat.write(record if record is not None else executed, output)
    try:  # its node cells show what this kernel ran
        file_notebook(store, run_id, executed, refresh_nodes=False, record=record)
    except StorageFault as err:
        with contextlib.suppress(PlaybookError):
            store.set_notebook_path(run_id, str(output) if output else "")
            if store.get_run(run_id).status == "RUNNING":
                store.mark_interrupted(run_id)
                store.set_run_status(run_id, "ABORTED", reason=f"storage fault: {err}")
        kept = f"; the executed notebook is kept at {output}" if output else ""
        raise StorageFault(f"{err}; the executed notebook of run {run_id} could not be filed{kept}") from None


def _ended(store, run_id: int, outcome):
    """The run after papermill: one left RUNNING (stopped between cells by a signal, or its kernel died) is
    recorded ABORTED, its node in flight PENDING with the reason."""
    run = store.get_run(run_id)
    if run.status != "RUNNING":
        return run
    if stop_reason():
        reason = stop_reason()
    elif outcome.kernel_died:
        reason = f"kernel died: {outcome.error_summary}"
    else:
        reason = outcome.error_summary
    store.mark_interrupted(run_id)
    store.set_run_status(run_id, "ABORTED", reason=reason)
    return store.get_run(run_id)


def _print_result(run, store) -> None:
    label, look_state = run_json.outcome(run, store.node_states(run.id))
    reason = f" ({run.status_reason})" if run.status_reason and run.status != "OK" else ""
    console.print(f"[{rich_style(look_state)}]run {run.id} {label}[/]{reason}", highlight=False)
    for row in store.node_states(run.id):
        console.print(f"  {row.node_id:<28} {row.state:<8} {row.reason or ''}", highlight=False, markup=False)
    console.print(f"notebook: {run.notebook_path}", highlight=False)
    console.print(f"record: run {run.id} in {store.path}", highlight=False)
