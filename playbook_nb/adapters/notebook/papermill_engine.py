"""A papermill engine (entry point group `papermill.engine`, name `playbook`) for playbook-nb notebooks.

What it adds to papermill's default nbclient engine:

- the kernel learns where the executed notebook is written: `PLAYBOOK_NB_OUTPUT_PATH` (absolute for local
  paths) is in the environment the kernel is started with, so the run record can point at its notebook;
- the kernel runs over IPC sockets in a private directory (Linux, macOS), and what the caller hands it in
  `kernel_env` (secret values) is in its start environment only (`kernels.py`): this process's `os.environ`
  is never changed;
- secret values never reach the output notebook: if a secret variable (declared `secret = true` in the
  runbook carried in `metadata.playbook_nb.runbook_text`, or named in the `secret_env` parameter) was injected
  through the `variables` parameter, every copy written to disk (the autosaves during the run and the final
  notebook) shows "********" in papermill's `injected-parameters` cell and in `metadata.papermill.parameters`,
  with a warning line. The kernel itself still receives the real value, through the in-memory cell it runs.

papermill imports this module while `papermill.engines` is being initialised (entry points are registered at
the bottom of that module), so only `papermill.engines` names are imported at module level, nothing heavy.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import time
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from papermill.engines import NBClientEngine, NotebookExecutionManager
from papermill.iorw import papermill_io

from playbook_nb.adapters.notebook.stop import STOP
from playbook_nb.app import faults
from playbook_nb.constants import OUTPUT_PATH_ENV
from playbook_nb.domain.redact import MASK

logger = logging.getLogger("playbook_nb.papermill")

ENGINE_ENV = "PLAYBOOK_NB_PAPERMILL_ENGINE"
INJECTED_TAG = "injected-parameters"
WARNING_PREFIX = "# WARNING (playbook-nb):"


@lru_cache(maxsize=16)
def runbook_secret_names(runbook_text: str | None) -> frozenset[str]:
    """Names of the `secret = true` variables of a runbook text; empty if the text is absent or not TOML.
    (Cached: every save of a running notebook asks again about the same text.)"""
    if not runbook_text:
        return frozenset()
    try:
        data = tomllib.loads(runbook_text)
    except (tomllib.TOMLDecodeError, TypeError):
        return frozenset()
    variables = data.get("variables")
    if not isinstance(variables, dict):
        return frozenset()
    return frozenset(
        name for name, spec in variables.items() if isinstance(spec, dict) and spec.get("secret") is True
    )


def leaked_secrets(nb: Any) -> dict[str, Any]:
    """Secret variables whose values were injected as papermill parameters (`variables`): name -> value."""
    params = (nb.get("metadata", {}).get("papermill") or {}).get("parameters") or {}
    if not isinstance(params, Mapping):
        return {}
    variables = params.get("variables")
    if not isinstance(variables, Mapping):
        return {}
    secret_env = params.get("secret_env")
    names = runbook_secret_names((nb.get("metadata", {}).get("playbook_nb") or {}).get("runbook_text"))
    if isinstance(secret_env, Mapping):
        names |= {str(name) for name in secret_env}
    return {name: variables[name] for name in sorted(names) if name in variables and variables[name] != MASK}


def _masked_parameters(params: Mapping[str, Any], leaked: Mapping[str, Any]) -> dict[str, Any]:
    masked = copy.deepcopy(dict(params))
    masked["variables"] = {
        key: (MASK if key in leaked else value) for key, value in dict(params["variables"]).items()
    }
    return masked


def _secret_texts(value: Any) -> list[str]:
    """Spellings of a secret value that may show up in a cell source (longest first)."""
    texts = {str(value), repr(value)}
    with contextlib.suppress(Exception):
        from papermill.translators import PythonTranslator

        texts.add(PythonTranslator.translate(value))
    return sorted((t for t in texts if t), key=len, reverse=True)


def scrub_notebook(nb: Any, kernel_name: str | None = None) -> list[str]:
    """Mask injected secret values in `nb` in place; return the names of the masked variables."""
    leaked = leaked_secrets(nb)
    if not leaked:
        return []
    params = nb.metadata.papermill["parameters"]
    masked = _masked_parameters(params, leaked)
    names = ", ".join(leaked)
    warning = (
        f"{WARNING_PREFIX} secret variable(s) {names} were passed as papermill parameters; their values "
        "are masked here. Pass secrets through the environment instead (secret_env, default "
        "PLAYBOOK_SECRET_<NAME>)."
    )
    for cell in nb.cells:
        if cell.get("cell_type") != "code" or INJECTED_TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        source = _translate(masked, kernel_name, nb)
        if source is None:  # unknown kernel language: mask the spelled-out values instead
            source = cell.source
            for value in leaked.values():
                for text in _secret_texts(value):
                    source = source.replace(text, repr(MASK))
        cell.source = f"{source.rstrip()}\n{warning}"
    nb.metadata.papermill["parameters"] = masked
    return list(leaked)


def _translate(params: Mapping[str, Any], kernel_name: str | None, nb: Any) -> str | None:
    try:
        from papermill.translators import translate_parameters

        language = (nb.metadata.get("kernelspec") or {}).get("language") or (
            nb.metadata.get("language_info") or {}
        ).get("name")
        return translate_parameters(kernel_name, language, dict(params), "Parameters")
    except Exception:  # fall back to textual masking
        return None


# Seconds: the most often the notebook is written while it runs (see ScrubbingExecutionManager).
SAVE_EVERY = 3.0


class ScrubbingExecutionManager(NotebookExecutionManager):
    """papermill's execution manager, except that it writes a scrubbed copy of the notebook to disk, and
    that its saves during the run cost less:

    - papermill saves the whole notebook when every cell starts and ends: O(N) a save, O(N^2) a run. Here
      the notebook is written when the run starts, after a cell failed, when the run ends (and papermill's
      own final write follows), and in between at most every `SAVE_EVERY` seconds: a save asked for sooner
      is deferred, and written by a timer on nbclient's event loop once the interval is over, also while a
      long cell still runs. A run killed mid-way leaves a notebook at most a few seconds old (the run index
      has every node anyway);
    - a Markdown (or raw) cell's start and end never write by themselves: only papermill's timing metadata
      of that cell changes, and the next write carries it;
    - a write during the run is the notebook as compact JSON (`json.dumps` in C, one line: about 5 ms for a
      200-node notebook, where nbformat's indented, validated text costs about 0.1 s in pure Python, issue
      18.3); nbformat, JupyterLab and papermill read it as any notebook. papermill's final write of the
      notebook, after the run or after an error, is nbformat's indented and validated text, as before.
    """

    kernel_name: str | None = None
    _in_text_cell = False
    _must_write = False  # the next save writes at once (start, a failed cell, the end)
    _pending = False  # the notebook changed since it was last written
    _last_write = float("-inf")  # time.monotonic() of the last write
    _timer: Any = None  # the deferred write, an asyncio.TimerHandle

    def notebook_start(self, **kwargs):
        self._must_write = True
        return super().notebook_start(**kwargs)

    def notebook_complete(self, **kwargs):
        self._must_write = True
        return super().notebook_complete(**kwargs)

    def cell_exception(self, cell, cell_index=None, **kwargs):
        self._must_write = True  # the cell_complete that follows writes the failed cell at once
        return super().cell_exception(cell, cell_index, **kwargs)

    def cell_start(self, cell, cell_index=None, **kwargs):
        self._in_text_cell = cell.get("cell_type") != "code"
        try:
            result = super().cell_start(cell, cell_index, **kwargs)
        finally:
            self._in_text_cell = False
        if STOP.reason is not None and cell.get("cell_type") == "code":  # told to stop: no further cell runs
            from nbclient.exceptions import CellExecutionError

            raise CellExecutionError("", "RunStopped", STOP.reason)
        return result

    def cell_complete(self, cell, cell_index=None, **kwargs):
        self._in_text_cell = cell.get("cell_type") != "code"
        try:
            return super().cell_complete(cell, cell_index, **kwargs)
        finally:
            self._in_text_cell = False

    def save(self, **kwargs):
        nb = kwargs.get("nb")
        if nb:
            self.nb = nb
        if not self.output_path:
            return
        self._pending = True
        if self._in_text_cell:
            return
        if faults.armed("during-save"):  # the reliability suite: killed with half the notebook written
            text = self._text_of_notebook()
            with open(self.output_path, "w") as fh:
                fh.write(text[: len(text) // 2])
            faults.kill_now()
        since = time.monotonic() - self._last_write
        if self._must_write or since >= SAVE_EVERY:
            self._write()
        elif self._timer is None:
            self._timer = _call_later(SAVE_EVERY - since, self._deferred_write)

    def _deferred_write(self) -> None:
        self._timer = None
        if self._pending:
            self._write()

    def _write(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._must_write = self._pending = False
        papermill_io.write(self._text_of_notebook(), self.output_path)
        self._last_write = time.monotonic()
        self.last_save_time = self.now()

    def _text_of_notebook(self) -> str:
        if leaked_secrets(self.nb):
            on_disk = copy.deepcopy(self.nb)
            scrub_notebook(on_disk, self.kernel_name)
        else:
            on_disk = self.nb
        return json.dumps(on_disk, ensure_ascii=False, separators=(",", ":"), default=str)


def _call_later(delay: float, callback: Any) -> Any:
    """`callback` after `delay` seconds on the event loop nbclient runs its cells on (jupyter_core's loop of
    this thread), or None when there is none to ask: the write then waits for the next save."""
    try:
        from jupyter_core.utils import ensure_event_loop

        return ensure_event_loop().call_later(delay, callback)
    except Exception:
        return None


def absolute_output_path(output_path: str | None) -> str | None:
    """Local output paths as an absolute path (papermill resolves them against the caller's directory)."""
    if not output_path or "://" in output_path:
        return output_path
    if os.path.isabs(output_path):
        return output_path
    base = None
    with contextlib.suppress(Exception):
        from papermill.iorw import papermill_io

        base = getattr(papermill_io.get_handler("local"), "_cwd", None)
    return os.path.abspath(os.path.join(base or os.getcwd(), output_path))


class PlaybookEngine(NBClientEngine):
    """nbclient engine that tells the kernel its output path and keeps injected secrets off the disk."""

    @classmethod
    def execute_notebook(
        cls,
        nb,
        kernel_name,
        output_path=None,
        progress_bar=True,
        log_output=False,
        autosave_cell_every=30,
        **kwargs,
    ):
        from playbook_nb.adapters.notebook.kernels import headless_kernel

        kernel_env = dict(kwargs.pop("kernel_env", None) or {})
        record_path = output_path or (nb.get("metadata", {}).get("papermill") or {}).get("output_path")
        record_path = absolute_output_path(record_path)
        leaked = leaked_secrets(nb)
        if leaked:
            logger.warning(
                "secret variable(s) %s passed as papermill parameters: masked in the output notebook; "
                "pass secrets through the environment instead",
                ", ".join(leaked),
            )
        nb_man = ScrubbingExecutionManager(
            nb,
            output_path=output_path,
            progress_bar=progress_bar,
            log_output=log_output,
            autosave_cell_every=autosave_cell_every,
        )
        nb_man.kernel_name = kernel_name
        kernel_env[ENGINE_ENV] = "playbook"
        if record_path:
            kernel_env[OUTPUT_PATH_ENV] = record_path
        with headless_kernel(kernel_env) as manager_class:
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(
                    nb_man, kernel_name, log_output=log_output, kernel_manager_class=manager_class, **kwargs
                )
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
        # What papermill writes after us (final write, error markers) and returns is the scrubbed notebook.
        scrub_notebook(nb_man.nb, kernel_name)
        return nb_man.nb
