"""Pieces several commands share: opening the run index, resolving variables, exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # imported where used: a command loads only what it needs (start-up time)
    from playbook_nb.adapters.store import Store
    from playbook_nb.app.settings import Settings
    from playbook_nb.domain.model import Runbook, Variable

STATE_PATH = typer.Option(
    None, "--state-path", help="Run index (SQLite file); default from PLAYBOOK_DB_PATH/config."
)
VAR = typer.Option(None, "--var", help="Variable value K=V (repeatable); highest priority.")
VARS_FILE = typer.Option(None, "--vars-file", help="Variables from a TOML, YAML or JSON file.")
VARS_ENV = typer.Option(
    None, "--vars-env", help="Read variables from environment variables with this prefix."
)
NO_INTERACTIVE_VARS = typer.Option(
    False, "--no-interactive-vars", help="Never prompt for variables; fail listing every missing one."
)
JSON = typer.Option(False, "--json", help="Print one JSON document on stdout; every message goes to stderr.")


def run_document(store: Store, run_id: int, exit_code: int) -> dict[str, Any]:
    """What `run --json` and `resume --json` print: the run as the index records it, and the exit code."""
    from playbook_nb.faces import run_json

    run = store.get_run(run_id)
    nodes = store.node_states(run_id)
    return {
        "run": run_json.run_summary(run, nodes),
        "nodes": [run_json.node_json(row) for row in nodes],
        "decisions": [run_json.decision_json(row) for row in store.decisions(run_id)],
        "artifacts": str(store.artifact_dir(run_id)),
        "record": str(store.path),
        "exit_code": int(exit_code),
    }


def stdin_is_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, AttributeError):
        return False


def warn_secret_in_argv(what: str) -> None:
    """A secret given as a command-line argument: `ps` shows it to every local user while the run lasts."""
    from playbook_nb.faces.cli.app import err_console

    err_console.print(
        f"[yellow]warning:[/] {what}: a secret on the command line is visible to every local user in the "
        "process list (ps, /proc/PID/cmdline); pass it with --vars-env PREFIX, --vars-file FILE or at the prompt",
        highlight=False,
        soft_wrap=True,
    )


def open_store(state_path: str | None, settings: Settings | None = None) -> Store:
    """The run index of a command: `settings` when the command built them already, else read now."""
    from playbook_nb.app.settings import Settings

    return (settings or Settings.load()).open_store(state_path)


# --max-retries counts retries, not attempts: the help says so (the config key counts attempts, as the seed's)
MAX_RETRIES_HELP = (
    "Operator retries of a failed node after its first attempt: N retries, N+1 attempts in all "
    "(default: [execution] max_retries, which counts attempts as in the seed: 3 attempts = 2 retries)."
)


def resolve_values(
    runbook: Runbook,
    *,
    var: list[str] | None,
    vars_file: Path | None,
    vars_env: str | None,
    no_interactive_vars: bool,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Variables by priority: --var > --vars-file > --vars-env > (base: a resumed run's values) > prompt > default."""
    from rich.prompt import Prompt

    from playbook_nb.app.inputs import parse_var_assignments, resolve_variables

    cli_vars = {k: str(v) for k, v in (base or {}).items()}
    given = parse_var_assignments(var or [])
    for name in sorted(set(given) & runbook.secret_names):
        warn_secret_in_argv(f"--var {name}=...")
    cli_vars.update(given)
    interactive = not no_interactive_vars and stdin_is_tty()

    def prompt(variable: Variable) -> str | None:
        from playbook_nb.faces.cli.app import console

        label = variable.name + (f" ({variable.description})" if variable.description else "")
        default = None if variable.default is None else str(variable.default)
        # Rich returns `default` itself for an empty answer, None included (not ""), and the value check then
        # refuses it ("variable x: None is not a str (from prompt)"). `answer` is typed so that mypy takes
        # Rich's default type as `str | None` rather than the `str` of a `-> str` return.
        answer: str | None = Prompt.ask(
            f"Enter value for {label}", default=default, password=variable.secret, console=console
        )
        return answer

    return resolve_variables(
        runbook,
        cli_vars=cli_vars,
        vars_file=vars_file,
        vars_env_prefix=vars_env,
        interactive=interactive,
        prompt=prompt,
    )
