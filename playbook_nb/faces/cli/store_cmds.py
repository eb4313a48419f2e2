"""`store info` and `store migrate`: where the run index and the artifacts live, and moving between indexes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from playbook_nb.faces.cli.app import app, console
from playbook_nb.faces.cli.common import STATE_PATH

if TYPE_CHECKING:
    from playbook_nb.adapters.store import Store

store_app = typer.Typer(
    help="The run index itself: where it is, and copying it to another one.", no_args_is_help=True
)
app.add_typer(store_app, name="store")

ARTIFACTS = typer.Option(
    None,
    "--artifacts",
    help="Artifact root: a directory or fsspec URL (s3://bucket/prefix); default from "
    "PLAYBOOK_ARTIFACTS_URL / config [artifacts] url.",
)


def _open(location: str | None, artifacts: str | None) -> Store:
    from playbook_nb.adapters.store import Store
    from playbook_nb.app.settings import Settings

    current = Settings.load()
    return Store.open(
        current.db_location(location),
        artifacts_root=current.artifacts_url(artifacts),
        timeout=current.config.database.timeout,
    )


@store_app.command("info")
def info_cmd(
    state_path: str | None = STATE_PATH,
    artifacts: str | None = ARTIFACTS,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """The run index (backend, URL, schema version, runs) and the artifact root in use."""
    from playbook_nb.adapters.store.copy import all_run_ids

    with _open(state_path, artifacts) as store:
        data = {
            "backend": store.backend,
            "url": store.url,
            "schema_version": store.schema_version,
            "runs": len(all_run_ids(store)),
            "artifacts": str(store.artifacts.root),
        }
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        console.print(f"{key}: {value}", highlight=False, markup=False)


@store_app.command("migrate")
def migrate_cmd(
    to: str = typer.Option(
        ..., "--to", help="Target run index: postgresql://user@host/db, a file or sqlite:///."
    ),
    source: str | None = typer.Option(
        None,
        "--from",
        help="Source run index (default: the current one: --state-path, PLAYBOOK_DB_URL, ...).",
    ),
    state_path: str | None = STATE_PATH,
) -> None:
    """Copy every run (ids, numbers, node states, attempts, decisions, hash-chained events) to another index.

    The target is verified afterwards (row counts, chain heads, verify_events). Runs already copied are
    skipped; a different run in the way is refused before anything is written.
    """
    from playbook_nb.adapters.store.copy import copy_runs

    with _open(source or state_path, None) as src, _open(to, None) as dst:
        report = copy_runs(src, dst)
        console.print(
            f"copied {len(report.copied)} run(s) from {src.url} to {dst.url}"
            + (f", {len(report.already_there)} already there" if report.already_there else ""),
            highlight=False,
            markup=False,
        )
        rows = ", ".join(f"{n} {table}" for table, n in report.rows.items())
        console.print(
            f"rows written: {rows}; verified {report.total} run(s): counts and hash chains intact",
            highlight=False,
            markup=False,
        )
