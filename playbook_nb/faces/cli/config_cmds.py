"""`playbook-nb config`: show, initialise, validate the configuration, or write a template."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from playbook_nb.faces.cli.app import app, console, err_console, escape


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _plain(value: object) -> object:
    return str(value) if isinstance(value, Path) else value


@app.command("config")
def config_command(
    show: bool = typer.Option(False, "--show", help="Show every setting, its value and where it came from."),
    init: str | None = typer.Option(
        None,
        "--init",
        metavar="ENV",
        help="Write the configuration file of environment ENV (config.ENV.toml in the user config dir), "
        "used when PLAYBOOK_ENV=ENV.",
    ),
    validate: bool = typer.Option(False, "--validate", help="Check the configuration; exit 2 if invalid."),
    template: Path | None = typer.Option(
        None, "--template", metavar="FILE", help="Write a commented template to FILE ('-': stdout)."
    ),
    path: Path | None = typer.Option(None, "--path", help="With --init: write to this file instead."),
    force: bool = typer.Option(False, "--force", help="With --init or --template: overwrite the file."),
    as_json: bool = typer.Option(False, "--json", help="With --show: print JSON."),
) -> None:
    """Show, initialise, validate or template the configuration (seed-compatible)."""
    from playbook_nb.app.config import (
        ConfigError,
        init_path,
        render_template,
        validate_config,
        write_config_file,
    )

    if sum(bool(x) for x in (show, init, validate, template)) > 1:
        raise ConfigError("use one of --show, --init, --validate, --template at a time")
    if init:
        target = path or init_path(init)
        write_config_file(target, render_template(init), force=force)
        _say(f"wrote {target} (used when PLAYBOOK_ENV={init})")
        return
    if template:
        if str(template) == "-":
            typer.echo(render_template(), nl=False)
            return
        write_config_file(template, render_template(), force=force)
        _say(f"wrote {template}")
        return
    if validate:
        config, problems = validate_config()
        if problems:
            for problem in problems:
                err_console.print(f"[bold red]error:[/] {escape(problem)}", highlight=False, soft_wrap=True)
            raise ConfigError(f"configuration is invalid ({len(problems)} problem(s) above)")
        assert config is not None
        files = ", ".join(str(f) for f in config.files) or "no files, defaults only"
        _say(f"configuration valid ({files})")
        return
    _show(as_json)


def _show(as_json: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    from playbook_nb.adapters.store.location import resolve_db_path
    from playbook_nb.app.config import load_config

    config = load_config()
    db_path = resolve_db_path(config=config)
    if as_json:
        data = {
            "environment": config.environment,
            "files": [str(f) for f in config.files],
            "db_path": str(db_path),
            "settings": {key: {"value": _plain(v), "source": src} for key, v, src in config.items()},
            "warnings": list(config.warnings),
        }
        typer.echo(json.dumps(data, indent=2))
        return
    _say(f"environment: {config.environment or '(none: PLAYBOOK_ENV not set)'}")
    _say("files: " + (", ".join(str(f) for f in config.files) or "none (defaults only)"))
    if os.environ.get("PLAYBOOK_CONFIG"):
        _say(f"PLAYBOOK_CONFIG: {os.environ['PLAYBOOK_CONFIG']}")
    _say(f"run index: {db_path}")
    table = Table("setting", "value", "source", box=None, pad_edge=False)
    table.columns[2].overflow = "fold"
    for key, value, source in config.items():
        table.add_row(key, Text("" if value is None else str(value)), Text(source))
    console.print(table)
    for warning in config.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
