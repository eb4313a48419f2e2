"""The Typer application every command module registers on, the consoles, `--json` output, and the one-line
error printer.

Output conventions (issue 19): `-h`/`--help` everywhere, `--version`, Typer's shell completion
(`--install-completion`, `--show-completion`); off a terminal (a pipe, a CI log) lines are never wrapped nor
table cells truncated; `NO_COLOR` is honoured (by Rich); `--json` prints one JSON document on stdout and
every message on stderr.

Start-up matters (`--help`, `runs list`, `show` should cost little more than importing Typer): this module and
every command module import only Typer and light modules at their top; what a command needs (the run
session, networkx, the notebook machinery, Rich's console) is imported when the command runs. `run_app`
imports only the module of the command it runs (`COMMAND_MODULES`) and builds only that command;
`print_lines` and `print_table` write what Rich would as strings, without Rich's console: off a terminal
the plain text, on one the coloured text of `ansi` (what it cannot draw so, Rich draws).
`tests/test_startup.py` keeps it so.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import sys
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

import typer

from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.exit_codes import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

    from playbook_nb.faces.cli import ansi

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


def plain_stdout() -> bool:
    """Printing to stdout now, Rich would write plain text as it is: off a terminal as Rich decides it
    (`TTY_COMPATIBLE`, then `FORCE_COLOR`, then isatty), hence without colour and unwrapped. Decided without
    building the console when it is not built yet: `runs list` and `show` off a terminal then write their
    lines and tables as strings and never import rich.console (issue 18.1)."""
    built: Console | None = console._console  # type: ignore[attr-defined]
    if built is not None:
        styles = built.is_terminal or built.color_system or built.record or built.quiet
        return built.file is sys.stdout and not styles
    if "IPython" in sys.modules:  # Rich sees Jupyter itself: leave it to Rich
        return False
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "0"
    force = os.environ.get("FORCE_COLOR")
    if force is not None:
        return force == ""
    try:
        return not sys.stdout.isatty()
    except (AttributeError, ValueError):
        return True


def colour_stdout() -> ansi.Terminal | None:
    """stdout is a terminal (plain_stdout is False) that `ansi` draws for as Rich would, and Rich's console
    is not built yet (its settings, once made, are Rich's to apply): the terminal, else None. On it `runs
    list` and `show` write their coloured lines and tables as strings, without importing rich.console."""
    if console._console is not None:  # type: ignore[attr-defined]
        return None
    from playbook_nb.faces.cli import ansi

    return ansi.terminal()


# A cell or a line to print: its pieces, each a text and its Rich style ("" for none), so that one formatter
# serves both writers: Rich's markup on a terminal, the plain text off one.
Styled = tuple[tuple[str, str], ...]


def styled(text: str, style: str = "") -> Styled:
    return ((text, style),)


def _markup(pieces: Styled) -> str:
    return "".join(f"[{style}]{escape(text)}[/]" if style else escape(text) for text, style in pieces)


def _plain(pieces: Styled) -> str:
    return "".join(text for text, _style in pieces)


def _write_stdout(text: str) -> None:
    """The plain path's write; a reader that went away (`| head -1`) ends the command as Rich would."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(1) from None


def print_lines(lines: list[Styled], *, highlight: bool = True, soft_wrap: bool = False) -> None:
    """Lines on stdout: each as plain text off a terminal, or as `ansi` colours it on one, when Rich would
    write exactly that, else by Rich (`highlight`: Rich's highlighting of numbers and paths on a terminal;
    `soft_wrap`: a long line is left to the terminal to wrap)."""
    from playbook_nb.faces.cli.terminal_view import _written_as_is

    plain = plain_stdout()
    term = None if plain else colour_stdout()
    for line in lines:
        text = _plain(line)
        if plain and _written_as_is(text) and len(text) < UNWRAPPED_WIDTH:
            _write_stdout(text + "\n")
            continue
        if term is not None:
            from playbook_nb.faces.cli import ansi

            drawn = ansi.line(term, line, highlight=highlight, soft_wrap=soft_wrap)
            if drawn is not None:
                _write_stdout(drawn)
                continue
        console.print(_markup(line), highlight=highlight, soft_wrap=soft_wrap)


def print_table(title: str | None, columns: tuple[str, ...], rows: list[tuple[Styled, ...]]) -> None:
    """A table on stdout: built as strings when Rich would draw exactly that (off a terminal
    terminal_view._plain_table, on one ansi.table), else Rich's Table."""
    from playbook_nb.faces.cli.terminal_view import _plain_table

    if plain_stdout():
        text = _plain_table(title, columns, [tuple(_plain(c) for c in row) for row in rows], UNWRAPPED_WIDTH)
        if text is not None:
            _write_stdout(text)
            return
    else:
        term = colour_stdout()
        if term is not None:
            from playbook_nb.faces.cli import ansi

            text = ansi.table(term, title, columns, rows)
            if text is not None:
                _write_stdout(text)
                return
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_markup(cell) for cell in row))
    console.print(table)


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


# Each command module, in the order `--help` lists their commands, with the commands and groups it registers
# on `app` (tests/test_startup.py checks this table against what the modules register): a command line
# imports the one module of the command it names, the others' options and decorators cost about 2 ms.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "model_cmds": ("validate", "create", "dag", "export-dot", "convert"),
    "run_cmds": ("run", "resume", "set-status"),
    "approve_cmds": ("approve",),  # a gate a run waits at, from anywhere
    "runs_cmds": ("show", "runs", "info"),  # `runs` is runs_group's, with diff and prune, and list
    "config_cmds": ("config",),
    "notebook_cmds": ("compile", "kernel"),
    "export_cmds": ("export", "scan", "verify"),
    "ops_cmds": ("test", "replay"),  # rehearsal, acceptance packs
    "store_cmds": ("store",),
}


def load_commands(name: str | None = None) -> None:
    """Register on `app` the command or group `name` (its module imported), or every one when `name` is
    None or no command's."""
    modules = [module for module, names in COMMAND_MODULES.items() if name in names] or list(COMMAND_MODULES)
    for module in modules:
        importlib.import_module(f"playbook_nb.faces.cli.{module}")


def _command_name(argv: list[str]) -> str | None:
    """The command or group `argv` names; None for none (`--help`, `--version`) and under shell completion
    (`_PLAYBOOK_NB_COMPLETE`), which needs every command."""
    if any(key.endswith("_COMPLETE") for key in os.environ):
        return None
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _narrowed(argv: list[str]) -> typer.Typer:
    """`app` with only the command or group that `argv` names, when it names one: Typer turns every registered
    command's signature into click's at each start (28 commands: about 7 ms), and a command needs its own.
    The whole application for the rest: no command (`--help`, `--version`), a name that is none (click's
    "No such command" lists them), shell completion."""
    name = _command_name(argv)
    if name is None:
        return app
    commands = [info for info in app.registered_commands if _name_of(info) == name]
    groups = [info for info in app.registered_groups if info.name == name]
    if len(commands) + len(groups) != 1:
        return app
    narrowed = copy.copy(app)
    narrowed.registered_commands = commands
    narrowed.registered_groups = [_narrowed_group(info, argv[argv.index(name) + 1 :]) for info in groups]
    return narrowed


def _narrowed_group(info: Any, argv: list[str]) -> Any:
    """A group (`runs`, `store`) with only the command the rest of `argv` names, when it names one of its
    commands; else the whole group (its --help, click's "No such command")."""
    group = info.typer_instance
    name = next((arg for arg in argv if not arg.startswith("-")), None)
    commands = [c for c in group.registered_commands if _name_of(c) == name]
    if len(commands) != 1 or group.registered_groups:
        return info
    sub = copy.copy(group)
    sub.registered_commands = commands
    narrowed = copy.copy(info)
    narrowed.typer_instance = sub
    return narrowed


def _name_of(info: Any) -> str | None:
    """A registered command's name: given, or its function's (Typer's rule: lower case, - for _)."""
    return info.name or (info.callback and info.callback.__name__.lower().replace("_", "-"))


def run_app(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    load_commands(_command_name(args))
    try:
        code = _narrowed(args)(args=args, prog_name=PROG_NAME, standalone_mode=False)
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
