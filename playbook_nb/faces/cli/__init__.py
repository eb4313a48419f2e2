"""`playbook-nb` console script. Each command group lives in its own module and registers on `app`;
`run_app` imports the module of the command its arguments name (`app.COMMAND_MODULES`), and
`load_commands()` registers them all (for a caller that drives `app` itself, as Typer's CliRunner)."""

from __future__ import annotations

import sys

from playbook_nb.faces.cli.app import app, load_commands, run_app


def main() -> None:
    sys.exit(run_app(sys.argv[1:]))


__all__ = ["app", "load_commands", "main", "run_app"]
