"""Run a compiled notebook headless with papermill (engine `playbook`), secrets through the environment.

papermill writes injected parameters in clear into the executed notebook, so secret values never go in
`parameters`: `run_notebook` hands them to the kernel's start environment under the names `secret_env`
points to (default `PLAYBOOK_SECRET_<NAME>`); this process's `os.environ` is never changed. The kernel runs
over IPC on Linux and macOS (`kernels.py`).

A failing cell (for example the summary cell raising because the run ended NOK or ABORTED) is an outcome,
not a crash: `run_notebook` returns a `PapermillOutcome`, and the caller reads the run status from the
run index.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playbook_nb.constants import SECRET_ENV_PREFIX
from playbook_nb.domain.model import Runbook

ENGINE_NAME = "playbook"


def default_secret_env_name(name: str) -> str:
    """`PLAYBOOK_SECRET_<NAME>`: where a secret variable's value is looked up by default."""
    return SECRET_ENV_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", name).upper()


@dataclass(frozen=True)
class PapermillOutcome:
    """What papermill did. The run's own status (OK / NOK / ABORTED) lives in the run index."""

    output_path: str
    raised: bool = False  # papermill raised (a cell failed, the kernel died, a timeout)
    ename: str | None = None  # the error's name, e.g. "RunFailed", "DeadKernelError", "CellTimeoutError"
    evalue: str | None = None
    cell_index: int | None = None  # index of the failing cell in the output notebook, when known
    kernel_died: bool = False
    # the executed notebook papermill returned (it also wrote it to output_path); None when papermill raised
    notebook: Any = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.raised

    @property
    def error_summary(self) -> str:
        """One line: "ename: evalue" (first line of the value), or "" when papermill did not raise."""
        if not self.raised:
            return ""
        first = (self.evalue or "").strip().splitlines()
        return f"{self.ename}: {first[0]}" if first else str(self.ename)


def _runbook_secret_names(input_path: str) -> frozenset[str]:
    """Secret variable names of the runbook carried by a compiled notebook (empty if it is not one)."""
    from playbook_nb.adapters.notebook.papermill_engine import runbook_secret_names

    try:
        from playbook_nb.adapters.notebook.light_nbformat import nbformat

        nb = nbformat.read(input_path, as_version=4)
    except Exception:  # papermill will report an unreadable notebook itself
        return frozenset()
    return runbook_secret_names((nb.metadata.get("playbook_nb") or {}).get("runbook_text"))


def split_secrets(
    parameters: Mapping[str, Any], env_secrets: Mapping[str, str] | None, secret_names: Set[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """(parameters safe to inject, environment variables to set).

    `env_secrets` keys are either environment variable names that `secret_env` points to (or that start with
    `PLAYBOOK_SECRET_`), used as they are, or secret variable names, mapped through `secret_env` (default
    `PLAYBOOK_SECRET_<NAME>`). Secret values found in `parameters["variables"]` are moved out of the
    parameters; every secret moved or named gets a `secret_env` entry (kept if the caller gave one).
    """
    params = dict(parameters)
    variables = dict(params.get("variables") or {})
    secret_env = {str(k): str(v) for k, v in (params.get("secret_env") or {}).items()}
    environ: dict[str, str] = {}

    def put(name: str, value: Any) -> None:
        env_name = secret_env.setdefault(name, default_secret_env_name(name))
        environ[env_name] = "" if value is None else str(value)

    for name in sorted(secret_names | set(secret_env)):
        if name in variables:  # a secret passed as a plain variable: moved out of the parameters
            put(name, variables.pop(name))
    for key, value in (env_secrets or {}).items():  # explicit secrets win over values found in `variables`
        if key in secret_env.values() or (key.startswith(SECRET_ENV_PREFIX) and key not in secret_names):
            environ[key] = "" if value is None else str(value)
        else:
            put(key, value)
    if "variables" in params or variables:
        params["variables"] = variables
    if secret_env:
        params["secret_env"] = secret_env
    return params, environ


def _papermill() -> Any:
    """papermill, imported without boto3 for its S3 handler when this process has not imported boto3 yet:
    run_notebook hands papermill local paths only (a temporary directory; the record goes to the artifact
    store through fsspec), and boto3 is about 0.05 s of CPU of papermill's 0.17 s import (issue 18.3). boto3
    is importable again afterwards; papermill's `s3://` handler then says boto3 is missing."""
    from playbook_nb.adapters.notebook.hidden_modules import modules_hidden

    with modules_hidden("boto3"):  # papermill.iorw: `from .s3 import S3` fails; ignored if boto3 is loaded
        import papermill
    return papermill


def run_notebook(
    input_path: str,
    output_path: str,
    *,
    parameters: dict,
    kernel_name: str | None = None,
    cwd: str | None = None,
    env_secrets: dict[str, str] | None = None,
    kernel_env: Mapping[str, str] | None = None,
    log_output: bool = False,
    timeout: int | None = None,
) -> PapermillOutcome:
    """Execute `input_path` into `output_path` with papermill's `playbook` engine, on the kernel `kernel_name`
    (default: the one the notebook's kernelspec names).

    `env_secrets` maps secret variable names (or the environment variable names `secret_env` points to) to
    their values; they reach the kernel through its start environment only, as `kernel_env` (other
    variables for the kernel) does. Returns a `PapermillOutcome`: a failing
    cell or a dead kernel is reported there, not raised (papermill writes the partial notebook either way).
    """
    papermill = _papermill()
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    input_path, output_path = str(input_path), str(output_path)
    params, environ = split_secrets(parameters or {}, env_secrets, _runbook_secret_names(input_path))
    engine_kwargs: dict[str, Any] = {}
    if timeout is not None:
        engine_kwargs["execution_timeout"] = timeout
    try:
        executed = papermill.execute_notebook(
            input_path,
            output_path,
            parameters=params,
            engine_name=ENGINE_NAME,
            kernel_name=kernel_name,
            cwd=cwd,
            progress_bar=False,
            log_output=log_output,
            kernel_env={**(kernel_env or {}), **{name: str(value) for name, value in environ.items()}},
            **engine_kwargs,
        )
    except papermill.PapermillExecutionError as err:
        return PapermillOutcome(
            output_path, raised=True, ename=err.ename, evalue=err.evalue, cell_index=err.cell_index
        )
    except DeadKernelError as err:
        return PapermillOutcome(
            output_path, raised=True, ename="DeadKernelError", evalue=str(err), kernel_died=True
        )
    except CellTimeoutError as err:
        return PapermillOutcome(output_path, raised=True, ename="CellTimeoutError", evalue=str(err))
    return PapermillOutcome(output_path, notebook=executed)


def notebook_file_name(runbook: Runbook) -> str:
    """`deploy.playbook.toml` -> `deploy.ipynb`; a slug of the title when the runbook has no file."""
    if runbook.path:
        name = Path(runbook.path).name
        for suffix in (".playbook.toml", ".toml"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
    else:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", runbook.meta.title).strip("-.") or "runbook"
    return f"{name}.ipynb"
