"""The Typer application every command module registers on, and the one-line error printer."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from playbook_nb.errors import PlaybookError

app = typer.Typer(
    name="playbook-nb",
    help="Runbooks for SREs: validate, run (terminal or headless notebook), inspect and export run records.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear error line to stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def report_error(err: PlaybookError) -> int:
    err_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
    return err.exit_code


def run_app(argv: list[str] | None = None) -> int:
    try:
        code = app(args=argv, standalone_mode=False)
    except PlaybookError as err:
        return report_error(err)
    except typer.Exit as exit_:
        return exit_.exit_code
    except typer.Abort:
        err_console.print("[bold red]aborted[/]")
        return 3
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        return 3
    except Exception as err:  # click usage errors carry their own exit code
        import click

        if isinstance(err, click.ClickException):
            err.show()
            return err.exit_code
        raise
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(run_app())
