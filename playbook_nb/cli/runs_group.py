"""The `runs` command group: list, diff and prune recorded runs."""

from __future__ import annotations

import typer

from playbook_nb.cli.app import app

runs_app = typer.Typer(help="Inspect, compare and prune recorded runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
