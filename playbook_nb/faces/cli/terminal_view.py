"""What a run looks like in a terminal: a live progress bar, one line per transition, streamed output."""

from __future__ import annotations

import contextlib
import os
import re
import select
import stat
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `show` and `runs list` read STATE_STYLE: importing this module stays light
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from playbook_nb.adapters.store import Store
    from playbook_nb.app.session import RunSession
    from playbook_nb.domain.engine import EngineEvent

from playbook_nb.presentation import mark as state_mark
from playbook_nb.presentation import rich_style

FINAL = {"OK", "NOK", "SKIPPED"}


class TerminalView:
    """`ui` is the `[ui]` configuration: progress_style (bar | spinner | none), color_theme (auto | none),
    show_timestamps (a node's transition lines start with the time), compact_output (no command output lines,
    no summary table)."""

    def __init__(self, console: Console, store: Store, ui: Any = None):
        self.console = console
        self.progress_style = getattr(ui, "progress_style", "bar")
        # times on a terminal only: a CI log stamps its lines itself
        self.show_timestamps = bool(getattr(ui, "show_timestamps", False)) and console.is_terminal
        self.compact = bool(getattr(ui, "compact_output", False))
        if getattr(ui, "color_theme", "auto") == "none":
            console.no_color = True
        console.on_broken_pipe = self._on_broken_pipe  # type: ignore[method-assign]
        self._stdout_pipe: int | None = None
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if stat.S_ISFIFO(os.fstat(sys.stdout.fileno()).st_mode):
                self._stdout_pipe = sys.stdout.fileno()
        self.store = store
        self._plain = self._plain_output()  # after the colour theme: no_color leaves plain lines plain
        # Rich asks every std stream for a terminal size at each line (three ioctls), then COLUMNS. With no
        # terminal on any of them the width cannot change during the run: read it once (issue 18.2).
        self._plain_width: int | None = None
        if self._plain and not any(_isatty(fd) for fd in (0, 1, 2)):
            self._plain_width = console.width
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._final: set[str] = set()  # nodes in a final state, for the progress bar
        self._hosts: dict[str, dict[str, str]] = {}  # fleet node -> host -> state, this attempt
        self._errors_shown: set[tuple[str, int]] = set()  # (node, attempt) whose error line was printed

    pipe_closed = False  # stdout is a pipe whose reader went away (`playbook-nb run ... | head -1`)

    def _print(self, *args, **kwargs) -> None:
        if not self.pipe_closed:
            self.console.print(*args, **kwargs)

    def _plain_output(self) -> bool:
        """Off a terminal, without colour and not recorded, Rich would write a line's plain text as it is."""
        console = self.console
        return not (console.is_terminal or console.color_system or console.record or console.quiet)

    def _write_plain(self, line: str) -> bool:
        """Write `line` straight to the console's file when Rich would write exactly that (off a terminal, no
        colour; a printable line without emoji codes, brackets or backslashes, shorter than the console's
        width): a transition or output line costs a string, not Rich's markup parse and render (issue 18.2).
        False: print it through Rich."""
        if self.pipe_closed:
            return True
        if not self._plain or not _written_as_is(line):
            return False
        if len(line) >= (self._plain_width if self._plain_width is not None else self.console.width):
            return False
        self._write_file(line + "\n")
        return True

    def _write_file(self, text: str) -> None:
        """`text` straight to the console's file (the plain path), unless its reader has gone."""
        if self.pipe_closed:
            return
        try:
            self.console.file.write(text)
            self.console.file.flush()
        except BrokenPipeError:
            self._on_broken_pipe()

    def _on_broken_pipe(self) -> None:
        """The reader of our stdout went away (rich calls this in place of raising SystemExit): stop
        printing, send later writes nowhere, and abort the run (its command's process group is stopped, the
        run ends ABORTED and resumable; `run` then says so on stderr and exits 3)."""
        self.pipe_closed = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        session = getattr(self, "_session", None)
        if session is not None:
            session.abort_switch.request("the output pipe was closed")

    def check_pipe(self) -> None:
        """While a command runs silently: notice at once that the reader of our stdout (a pipe) went away."""
        if self.pipe_closed or self._stdout_pipe is None:
            return
        poller = select.poll()
        poller.register(self._stdout_pipe, select.POLLOUT)
        for _fd, events in poller.poll(0):
            if events & (select.POLLERR | select.POLLHUP):
                self._on_broken_pipe()

    def attach(self, session: RunSession) -> None:
        self._session = session  # before the first line: a closed pipe aborts this session
        session.idle = self.check_pipe
        session.event_listeners.append(self._on_event)
        session.output_listeners.append(self._on_output)
        session.host_listeners.append(self._on_host)
        run = self.store.get_run(session.run_id)
        self._print(
            f"[bold]{run.title}[/]  run {run.id} (#{run.number})  "
            f"[dim]{session.options.trigger}, actor {session.options.actor}[/]"
        )

    @contextlib.contextmanager
    def live(self, session: RunSession) -> Iterator[None]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            SpinnerColumn() if self.progress_style == "spinner" else BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
            disable=not self.console.is_terminal or self.progress_style == "none",
        )
        total = len(session.runbook.nodes)
        self._final = {node_id for node_id, state in session.states().items() if state in FINAL}
        self._task = self._progress.add_task("nodes", total=total, completed=len(self._final))
        with self._progress:
            yield
        self._progress = None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Stop the live bar while a prompt waits for an answer."""
        if self._progress is None:
            yield
            return
        self._progress.stop()
        try:
            yield
        finally:
            self._progress.start()

    def gate(self, session: RunSession, node_id: str) -> None:
        node = session.runbook.node(node_id)
        if node.description:
            self._print(f"  [dim]{node.description.strip()}[/]")
        prompt_before = session.rendered(node_id).get("prompt_before")
        if prompt_before:
            self._print(f"  {prompt_before}")

    def _on_output(self, node_id: str, stream: str, text: str) -> None:
        if self.compact:
            return
        style = "red" if stream == "stderr" else "dim"
        for line in text.rstrip("\n").splitlines():
            if not self._write_plain(f"  │ {line}"):
                self._print(f"  │ {line}", style=style, highlight=False, markup=False)

    def _on_host(self, node_id: str, result) -> None:
        """Fleet nodes (issue 21): a line per host that ends, with the node's counts and failing hosts."""
        from playbook_nb.domain.fleet import progress_line

        states = self._hosts.setdefault(node_id, {})
        state = str(result.state)
        if state == "REMOVED":
            states.pop(result.host, None)
            self.console.print(
                f"  - {_escape(result.host)} REMOVED (left the inventory; not run)", highlight=False
            )
            return
        states[result.host] = "PENDING" if state == "ADDED" else state
        if state == "ADDED":
            self.console.print(f"  + {_escape(result.host)} ADDED (joined the inventory)", highlight=False)
        if result.ended_at is None:  # planned, started, or OK in an earlier attempt: counted, not printed
            return
        mark = state_mark(result.state)
        took = f" {result.duration:.2f}s" if result.duration is not None else ""
        error = f"  {result.error}" if result.error else ""
        counts: dict[str, int] = {}
        for state in states.values():
            counts[state] = counts.get(state, 0) + 1
        failing = [h for h, s in states.items() if s == "NOK"]
        self.console.print(
            f"  {mark} [{rich_style(str(result.state))}]{_escape(result.host)}[/] {result.state}{took}"
            f"{_escape(error)}  [dim]{_escape(progress_line(counts, len(states), failing))}[/]",
            highlight=False,
        )

    def _on_event(self, event: EngineEvent) -> None:
        if event.kind == "node_state" and event.node:
            state = event.state or ""
            node = self._session.runbook.node(event.node)
            if state in FINAL:
                self._final.add(event.node)
            else:
                self._final.discard(event.node)
            detail = ""
            if state == "RUNNING":
                self._hosts.pop(event.node, None)
                shown = self._session.rendered(event.node)
                detail = shown.get("command") or shown.get("function") or ""
                if event.attempt and event.attempt > 1:
                    detail = f"attempt {event.attempt}  {detail}"
            elif state == "WAITING":
                detail = "waits for a decision"
            elif state in ("NOK", "SKIPPED") and event.reason:
                detail = event.reason
            elif state == "OK":
                result = self._session.last_result(event.node)
                detail = f"{result.duration:.2f}s" if result else ""
            if state == "PENDING" and not event.reason:
                return
            mark = state_mark(state)
            if not self._write_plain(f"{mark} {event.node} {state}  ({node.type}) {detail}"):
                self._print(
                    f"{self._now()}{mark} [bold]{event.node}[/] [{rich_style(state)}]{state}[/]  "
                    f"[dim]({node.type})[/] {_escape(detail)}",
                    highlight=False,
                )
            self._print_attempt_error(event.node, state)
            if self._progress is not None and self._task is not None:
                self._progress.update(self._task, completed=len(self._final))
        elif event.kind == "decision":
            data = event.data
            comment = f' "{data.get("comment")}"' if data.get("comment") else ""
            self._print(
                f"{self._now()}  [magenta]decision[/] {data.get('decision')} on [bold]{event.node}[/] by {data.get('actor')}{comment}",
                highlight=False,
            )
        elif event.kind == "run_state" and event.state != "RUNNING":
            reason = f": {event.reason}" if event.reason else ""
            self._print(f"[{rich_style(event.state or '')}]run {event.state}[/]{_escape(reason)}")

    def _now(self) -> str:
        if not self.show_timestamps:
            return ""
        import time

        return f"[dim]{time.strftime('%H:%M:%S')}[/] "

    def _print_attempt_error(self, node_id: str, state: str) -> None:
        """After a failed attempt, what went wrong, as the node's error says it (a bad template, an unknown
        plugin, an exit code): the state line alone says only where the run goes next."""
        if state not in ("NOK", "SKIPPED", "PENDING", "WAITING"):
            return
        result = self._session.last_result(node_id)
        attempts = self._session.engine.attempts(node_id)
        if result is None or result.ok or result.interrupted or not result.error:
            return
        if (node_id, attempts) in self._errors_shown:
            return
        self._errors_shown.add((node_id, attempts))
        self._print(f"  [red]error:[/] {_escape(result.error)}", highlight=False)

    def summary(self, session: RunSession) -> None:
        from rich.table import Table

        if self.compact:
            run = self.store.get_run(session.run_id)
            self._print(f"record: run {run.id} in {self.store.path}")
            return
        from playbook_nb.faces import run_json

        run = self.store.get_run(session.run_id)
        nodes = self.store.node_states(session.run_id)
        label, look_state = run_json.outcome(run, nodes)
        columns = ("node", "state", "attempts", "reason")
        plain = self._plain and _plain_table(
            f"run {session.run_id}: {label}",
            columns,
            [(row.node_id, row.state, str(row.attempts or 0), row.reason or "") for row in nodes],
            self.console.width,
        )
        if plain:  # what Rich would write, without its per-cell layout
            self._write_file(plain)
            self._print(f"record: run {run.id} in {self.store.path}")
            self._print(f"artifacts: {self.store.artifact_dir(run.id)}")
            return
        table = Table(
            title=f"run {session.run_id}: [{rich_style(look_state)}]{_escape(label)}[/]", show_lines=False
        )
        for column in columns:
            table.add_column(column)
        for row in nodes:
            table.add_row(
                row.node_id,
                f"[{rich_style(row.state)}]{row.state}[/]",
                str(row.attempts or 0),
                _escape(row.reason or ""),
            )
        self._print(table)
        self._print(f"record: run {run.id} in {self.store.path}")
        self._print(f"artifacts: {self.store.artifact_dir(run.id)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# What Rich takes for an emoji code (rich._emoji_replace): `:name:`, `:name-text:`, `:name-emoji:`
_EMOJI_CODE = re.compile(r"(:(\S*?)(?:(?:\-)(emoji|text))?:)")
# The names of Rich's emoji codes made of digits only (rich._emoji_codes): a time such as 10:12:30 holds none
_DIGIT_EMOJI = frozenset({"100", "1234"})


def _written_as_is(text: str) -> bool:
    """Rich, off a terminal without colour, writes `text` exactly as it is: printable, no emoji code (a name
    between two colons; only digits, as in a time, are no code but 100 and 1234), no markup tag or escaped
    bracket (a `[` or a backslash)."""
    if not text.isprintable() or "[" in text or "\\" in text:
        return False
    if text.count(":") <= 1:
        return True
    return all(
        name.isdigit() and name.isascii() and name not in _DIGIT_EMOJI
        for name in (m.group(2) for m in _EMOJI_CODE.finditer(text))
    )


def _plain_table(
    title: str | None, columns: tuple[str, ...], rows: list[tuple[str, ...]], width: int
) -> str | None:
    """A table as Rich draws it off a terminal without colour (its default heavy-head box, the title, if any,
    centred above), built as strings: Rich's layout costs about a millisecond a row (issue 18.2). None when a
    cell could render otherwise (not plain ASCII, markup or emoji codes) or the title or table would wrap."""
    cells = [title or "", *columns, *(cell for row in rows for cell in row)]
    for cell in cells:
        if not (cell.isascii() and _written_as_is(cell)) or "]" in cell:
            return None
    widths = [len(column) for column in columns]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    total = sum(widths) + 3 * len(widths) + 1
    if total > width or len(title or "") > total:
        return None
    lines = []
    if title:
        left = (total - len(title)) // 2
        lines.append(" " * left + title + " " * (total - len(title) - left))
    lines.append("┏" + "┳".join("━" * (w + 2) for w in widths) + "┓")
    lines.append("┃" + "┃".join(f" {c.ljust(w)} " for c, w in zip(columns, widths, strict=True)) + "┃")
    lines.append("┡" + "╇".join("━" * (w + 2) for w in widths) + "┩")
    for row in rows:
        lines.append("│" + "│".join(f" {c.ljust(w)} " for c, w in zip(row, widths, strict=True)) + "│")
    lines.append("└" + "┴".join("─" * (w + 2) for w in widths) + "┘")
    return "\n".join(lines) + "\n"


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False
