"""The Typer application every command module registers on, and the one-line error printer."""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.text import Text

from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.exit_codes import ExitCode

app = typer.Typer(
    name="playbook-nb",
    help="Runbooks for SREs: validate, run (terminal or headless notebook), inspect and export run records.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

console = Console()
err_console = Console(stderr=True)


def _print_error(message: str) -> None:
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear error line to stderr and return the Exit to raise."""
    _print_error(message)
    return typer.Exit(code)


def report_error(err: PlaybookError) -> int:
    _print_error(str(err))
    return err.exit_code


def _is_usage_error(err: Exception) -> bool:
    """Typer may bundle its own copy of click: recognise ClickException from either."""
    for module in ("click", "typer._click"):
        try:
            exc_type = importlib.import_module(module).ClickException
        except (ImportError, AttributeError):
            continue
        if isinstance(err, exc_type):
            return True
    return False


def run_app(argv: list[str] | None = None) -> int:
    try:
        code = app(args=argv, standalone_mode=False)
    except PlaybookError as err:
        return report_error(err)
    except typer.Exit as exit_:
        return exit_.exit_code
    except typer.Abort:
        err_console.print("[bold red]aborted[/]")
        return ExitCode.ABORTED
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        return ExitCode.ABORTED
    except Exception as err:  # usage errors (bad option, missing argument) carry their own exit code
        if _is_usage_error(err):
            err.show()
            return err.exit_code
        raise
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(run_app())
