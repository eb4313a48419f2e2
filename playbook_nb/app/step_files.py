"""What a Function step leaves behind: files it wrote (screenshots, diff images) become run artifacts, and the
parameters its plugin declares secret are masked in every record.

`collect_artifacts` moves the files of an attempt's staging folder into the run's artifact store as
`<node>/<attempt>/<file>` (an `artifact` event per file in the hash-chained log), and rewrites the paths in the
attempt's return value to where the files now are, so outputs and reports point at the record, not at a
scratch folder that is gone.
"""

from __future__ import annotations

import mimetypes
import shutil
import tempfile
from pathlib import Path
from typing import Any

from playbook_nb.app.plugin_api import PluginCatalog, secret_param_values
from playbook_nb.app.ports import StepContext
from playbook_nb.constants import ARTIFACT_EVENT
from playbook_nb.domain.errors import PlaybookError

__all__ = ["ARTIFACT_EVENT", "collect_artifacts", "load_artifacts", "new_step_context", "secret_values"]


def new_step_context(
    *,
    run_id: int,
    node_id: str,
    attempt: int,
    runbook_dir: Path | None,
    update_baselines: bool = False,
    rehearsal: dict[str, Any] | None = None,
    started_at: float | None = None,
) -> StepContext:
    return StepContext(
        run_id=run_id,
        node_id=node_id,
        attempt=attempt,
        runbook_dir=runbook_dir,
        artifact_dir=Path(tempfile.mkdtemp(prefix=f"playbook-{run_id}-{node_id}-")),
        rehearsal=rehearsal,
        update_baselines=update_baselines,
        started_at=started_at,
    )


def secret_values(plugins: PluginCatalog, plugin: str, function: str, params: dict[str, Any]) -> list[str]:
    """Values of the parameters plugin.function declares secret (nothing when the plugin is unknown: the
    attempt then fails with that error anyway)."""
    try:
        return secret_param_values(plugins.metadata(plugin), function, params)
    except PlaybookError:
        return []


def collect_artifacts(
    store, run_id: int, node_id: str, attempt: int, context: StepContext, result
) -> list[dict]:
    """Put the attempt's files into the run's artifacts; rewrite `result.return_value` to their new paths."""
    staging = context.artifact_dir
    if staging is None or not staging.is_dir():
        return []
    stored: list[dict] = []
    moved: dict[str, str] = {}
    try:
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            name = f"{node_id}/{attempt}/{path.relative_to(staging).as_posix()}"
            url = store.put_artifact(run_id, name, path)
            moved[str(path)] = url
            entry = {"name": path.name, "url": url, "type": mimetypes.guess_type(path.name)[0] or ""}
            store.append_event(run_id, ARTIFACT_EVENT, node_id=node_id, attempt=attempt, payload=entry)
            stored.append(entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if moved:
        result.return_value = _replace_paths(result.return_value, moved)
    return stored


def _replace_paths(value: Any, moved: dict[str, str]) -> Any:
    if isinstance(value, str):
        return moved.get(value, value)
    if isinstance(value, dict):
        return {k: _replace_paths(v, moved) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_paths(v, moved) for v in value]
    return value


def load_artifacts(store, run_id: int) -> list[dict]:
    """Every artifact event of a run: [{node, attempt, name, url, type}], in order."""
    return [
        {"node": e.node_id, "attempt": e.attempt, **(e.payload or {})}
        for e in store.events(run_id)
        if e.kind == ARTIFACT_EVENT
    ]
