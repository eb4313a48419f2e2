"""The Typer application every command module registers on, and the one-line error printer.

Start-up matters (`--help`, `runs list`, `show` should cost little more than importing Typer): this module and
every command module import only Typer and light modules at their top; what a command needs (the run
session, networkx, the notebook machinery, Rich's console) is imported when the command runs.
`tests/test_startup.py` keeps it so.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

import typer

from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.exit_codes import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    name="playbook-nb",
    help="Runbooks for SREs: validate, run (terminal or headless notebook), inspect and export run records.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help and usage errors: Rich's help panels cost more to import than Typer
    context_settings={"max_content_width": 120},  # a wide terminal shows the commands' help whole
)


class _LazyConsole:
    """A Rich Console made on first use (importing rich.console costs about as much as Typer itself)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.get(), name, value)


console: Console = _LazyConsole()  # type: ignore[assignment]
err_console: Console = _LazyConsole(stderr=True)  # type: ignore[assignment]


def real_console() -> Console:
    """The Rich Console behind `console`, for what keeps it (a live progress display)."""
    return console.get()  # type: ignore[attr-defined]


def escape(text: str) -> str:
    """Rich's markup escape, imported on first use (start-up of the commands that print no markup)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def _print_error(message: str) -> None:
    from rich.text import Text

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
