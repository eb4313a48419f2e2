"""The Typer application every command module registers on, the consoles, `--json` output, and the one-line
error printer.

Output conventions (issue 19): `-h`/`--help` everywhere, `--version`, Typer's shell completion
(`--install-completion`, `--show-completion`); off a terminal (a pipe, a CI log) lines are never wrapped nor
table cells truncated; `NO_COLOR` is honoured (by Rich); `--json` prints one JSON document on stdout and
every message on stderr.

Start-up matters (`--help`, `runs list`, `show` should cost little more than importing Typer): this module and
every command module import only Typer and light modules at their top; what a command needs (the run
session, networkx, the notebook machinery, Rich's console) is imported when the command runs.
`tests/test_startup.py` keeps it so.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

import typer

from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.exit_codes import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

PROG_NAME = "playbook-nb"

app = typer.Typer(
    name=PROG_NAME,
    help="Runbooks for SREs: validate, run (terminal or headless notebook), inspect and export run records.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion, --show-completion (Typer's)
    rich_markup_mode=None,  # plain help and usage errors: Rich's help panels cost more to import than Typer
    # -h too; a wide terminal shows the commands' help whole
    context_settings={"max_content_width": 120, "help_option_names": ["-h", "--help"]},
)

# Off a terminal a line is as long as it is: a CI log keeps it whole (Rich would wrap at 80 columns and
# truncate table cells, "deploy_applic…").
UNWRAPPED_WIDTH = 100_000


def _unwrapped_off_terminal(target: Console) -> Console:
    if not target.is_terminal:
        target.width = UNWRAPPED_WIDTH
    return target


class _LazyConsole:
    """A Rich Console made on first use (importing rich.console costs about as much as Typer itself)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = _unwrapped_off_terminal(Console(**self._options))
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


class _JsonOutput:
    """`--json`: the human messages go to stderr, one JSON document to stdout."""

    active = False
    emitted = False
    last_error: str | None = None


def json_output() -> None:
    """Called by a command given `--json`: from now on `console` writes to stderr."""
    _JsonOutput.active = True
    console.file = sys.stderr
    _unwrapped_off_terminal(real_console())


def json_active() -> bool:
    return _JsonOutput.active


def emit_json(document: Any) -> None:
    """The one JSON document of a `--json` command, on stdout."""
    _JsonOutput.emitted = True
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


def _version(value: bool) -> None:
    if value:
        from playbook_nb import __version__

        typer.echo(f"{PROG_NAME} {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main_options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Runbooks for SREs: validate, run (terminal or headless notebook), inspect and export run records."""


def _print_error(message: str) -> None:
    _JsonOutput.last_error = message
    from rich.text import Text

    err_console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear error line to stderr and return the Exit to raise."""
    _print_error(message)
    return typer.Exit(code)


def report_error(err: PlaybookError) -> int:
    _print_error(str(err))
    return err.exit_code


def _json_error(code: int) -> int:
    """Under `--json` a failure still leaves one JSON document on stdout: the error line and the exit code."""
    if code and _JsonOutput.active and not _JsonOutput.emitted:
        emit_json({"error": _JsonOutput.last_error or f"exit code {code}", "exit_code": int(code)})
    return code


class _UsageError(Protocol):
    """What run_app uses of a ClickException (click's own or the copy Typer bundles)."""

    exit_code: int

    def show(self) -> None: ...


def _is_usage_error(err: Exception) -> TypeGuard[_UsageError]:
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
        code = app(args=argv, prog_name=PROG_NAME, standalone_mode=False)
    except PlaybookError as err:
        return _json_error(report_error(err))
    except typer.Exit as exit_:
        return _json_error(exit_.exit_code)
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
    return _json_error(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    sys.exit(run_app())
