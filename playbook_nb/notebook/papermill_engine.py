"""A papermill engine (entry point group `papermill.engine`, name `playbook`) for playbook-nb notebooks.

What it adds to papermill's default nbclient engine:

- the kernel learns where the executed notebook is written: `PLAYBOOK_NB_OUTPUT_PATH` (absolute for local
  paths) is set in the environment the kernel is started from, so the run record can point at its notebook;
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
import logging
import os
import tomllib
from collections.abc import Iterator, Mapping
from typing import Any

from papermill.engines import NBClientEngine, NotebookExecutionManager
from papermill.iorw import write_ipynb

logger = logging.getLogger("playbook_nb.papermill")

OUTPUT_PATH_ENV = "PLAYBOOK_NB_OUTPUT_PATH"
ENGINE_ENV = "PLAYBOOK_NB_PAPERMILL_ENGINE"
MASK = "********"
INJECTED_TAG = "injected-parameters"
WARNING_PREFIX = "# WARNING (playbook-nb):"


def runbook_secret_names(runbook_text: str | None) -> set[str]:
    """Names of the `secret = true` variables of a runbook text; empty if the text is absent or not TOML."""
    if not runbook_text:
        return set()
    try:
        data = tomllib.loads(runbook_text)
    except (tomllib.TOMLDecodeError, TypeError):
        return set()
    variables = data.get("variables")
    if not isinstance(variables, dict):
        return set()
    return {name for name, spec in variables.items() if isinstance(spec, dict) and spec.get("secret") is True}


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
    except Exception:  # noqa: BLE001 - fall back to textual masking
        return None


class ScrubbingExecutionManager(NotebookExecutionManager):
    """papermill's execution manager, except that it writes a scrubbed copy of the notebook to disk."""

    kernel_name: str | None = None

    def save(self, **kwargs):
        nb = kwargs.get("nb")
        if nb:
            self.nb = nb
        if self.output_path:
            if leaked_secrets(self.nb):
                on_disk = copy.deepcopy(self.nb)
                scrub_notebook(on_disk, self.kernel_name)
            else:
                on_disk = self.nb
            write_ipynb(on_disk, self.output_path)
        self.last_save_time = self.now()


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


@contextlib.contextmanager
def kernel_environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set environment variables (inherited by the kernel nbclient starts) for the duration; then restore."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


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
        with kernel_environment({OUTPUT_PATH_ENV: record_path, ENGINE_ENV: "playbook"}):
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
        # What papermill writes after us (final write, error markers) and returns is the scrubbed notebook.
        scrub_notebook(nb_man.nb, kernel_name)
        return nb_man.nb
