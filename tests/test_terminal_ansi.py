"""On a terminal `runs list` and `show` write their coloured lines and tables as strings (issue 18.1,
playbook_nb/faces/cli/ansi.py): they must be what Rich writes, byte for byte, for every colour system, with
and without NO_COLOR; what they cannot draw so they leave to Rich."""

from __future__ import annotations

import builtins
import io

import pytest
from rich.color import Color, ColorSystem
from rich.console import Console
from rich.default_styles import DEFAULT_STYLES
from rich.highlighter import ReprHighlighter
from rich.style import Style as RichStyle
from rich.table import Table

from playbook_nb.faces.cli import ansi
from playbook_nb.faces.cli.app import _markup, styled
from playbook_nb.presentation import STATE_LOOKS

SYSTEMS = [(ansi.STANDARD, False), (ansi.EIGHT_BIT, False), (ansi.TRUECOLOR, False), (ansi.STANDARD, True)]
SYSTEM_IDS = ["standard", "256", "truecolor", "no_color"]


def _console(system: str, no_color: bool, width: int) -> tuple[Console, io.StringIO]:
    """A Rich console on a terminal of `system`. Rich keeps a style's codes on the style (and its parsed and
    combined styles in caches) whatever the colour system: a process has one terminal, this test several."""
    RichStyle.parse.cache_clear()
    RichStyle._add.cache_clear()
    for style in DEFAULT_STYLES.values():
        style._ansi = None
    out = io.StringIO()
    return Console(file=out, force_terminal=True, color_system=system, width=width, no_color=no_color), out


def _rich_parts(style: RichStyle) -> tuple[int, int, str | None]:
    return (
        style._attributes & style._set_attributes,
        style._set_attributes,
        style.color and style.color.name,
    )


def _ours(style: ansi.Style | None) -> tuple[int, int, str | None] | None:
    return None if style is None else (style[0] & style[1], style[1], style[2])


def test_the_highlighter_patterns_are_richs():
    assert list(ReprHighlighter.highlights) == ansi.REPR_HIGHLIGHTS


def test_highlighting_is_richs_with_the_patterns_that_cannot_match_left_out():
    """The patterns and alternatives left out for a text that cannot hold a match (ansi._patterns) change
    no span: random texts of the characters the patterns look for, and the lines below."""
    import random

    chance = random.Random(18)
    alphabet = "0123456789abcdefxjTrueFalsNon.:-/'\"()<>=[]{}_ "
    texts = ["".join(chance.choice(alphabet) for _ in range(chance.randint(0, 60))) for _ in range(3000)]
    texts += ["".join(text for text, _style in pieces) for pieces in LINES.values()]
    texts += ["::", "1.2.3.4", "a-b-c-d-e", "x=1", "f(", "True", "...", "1j", "/", "'a'", "http://x"]
    highlighter = ReprHighlighter()
    for text in texts:
        rich = [(span.start, span.end, span.style) for span in highlighter(text).spans]
        assert ansi.highlight_spans(text) == rich, text


@pytest.mark.parametrize("name", sorted(ansi.THEME))
def test_the_theme_styles_are_richs(name):
    assert _ours(ansi.parse(ansi.THEME[name])) == _rich_parts(DEFAULT_STYLES[name])


def test_every_highlighter_group_has_its_theme_style():
    import re

    groups = {name for pattern in ansi.REPR_HIGHLIGHTS for name in re.compile(pattern).groupindex}
    assert {f"repr.{name}" for name in groups} <= set(ansi.THEME)


@pytest.mark.parametrize("state", sorted(STATE_LOOKS))
def test_every_state_style_is_parsed_as_rich_parses_it(state):
    definition = STATE_LOOKS[state].rich
    assert _ours(ansi.parse(definition)) == _rich_parts(RichStyle.parse(definition))


@pytest.mark.parametrize("name", sorted(ansi._EIGHT_BIT))
def test_the_256_colours_and_their_standard_downgrades_are_richs(name):
    number, standard = ansi._EIGHT_BIT[name]
    colour = Color.parse(name)
    assert colour.number == number
    assert colour.downgrade(ColorSystem.STANDARD).number == standard


def test_styles_it_does_not_know_are_left_to_rich():
    assert ansi.parse("on red") is None
    assert ansi.parse("#ff0000") is None
    assert ansi.parse("link https://x") is None
    assert ansi.parse("not") is None


# Lines as `show` prints them (and harder ones for the highlighter): pieces (text, style)
LINES = {
    "show_head": (("run 7", "bold"), (" (#7) startup bench: ", ""), ("OK", "green")),
    "show_handled": (
        ("run 12", "bold"),
        (" (#3) handled 10:12:30: ", ""),
        ("OK with 1 handled failure", "dark_orange"),
    ),
    "show_times": (
        (
            "started 2026-12-03 06:54:00  ended 2026-12-03 06:54:00  duration 0.1s  trigger terminal  actor "
            "root  host vm",
            "",
        ),
    ),
    "sha_version": (
        (
            "runbook sha256 574da701925c442df1dba7de4449f5ae68206c41fc3f2e7561c40d4697927fc7  version 1.0.0",
            "",
        ),
    ),
    "variables": (("variables: ENVIRONMENT=staging, COUNT=3, FLAG=True, NOTHING=None, NO=False", ""),),
    "paths_urls": (
        ("notebook: /tmp/pn-x/runs/7/run.ipynb see https://example.com/a?b=1 and ./rel/path", ""),
    ),
    "strings": (("decision: approve on gate by alice (cli) at 2026-12-03 06:54:00 \"looks 'good'\"", ""),),
    "tags_calls": (("<Run id=3 ok> f(x) obj.method(1, 2) ... 1e10 0x1F 3+4j -12.5", ""),),
    "addresses": (("host 10.0.0.1 and 192.168.1.254:8080 00-1B-44-11-3A-B7-00-01 00-1B-44-11-3A-B7", ""),),
    # colons around hex digits: what Rich could take for an emoji code, left to Rich
    "addresses_colons": (("host fe80::1ff:fe23:4567:890a 00:1B:44:11:3A:B7", ""),),
    "uuid": (("id 123e4567-e89b-12d3-a456-426614174000 ok", ""),),
    "styled_over_highlight": (("run 10.0.0.1", "bold red"), (" (x=1) ", "dim"), ("/a/b", "cyan")),
    "empty_styled_piece": (("a", ""), ("", "green"), ("b 12", "")),
    "none_style": (("x 1", "none"), (" y", "")),
    "every_state": tuple((f" {state} 1", look.rich) for state, look in sorted(STATE_LOOKS.items())),
    "empty": (),
    "close_brackets": (("a ] b 1] (x]", ""), ("]", "green")),
    "spaces": (("  lead and trail 1  ", ""),),
}

LEFT_TO_RICH = {"addresses_colons"}


@pytest.mark.parametrize("system,no_color", SYSTEMS, ids=SYSTEM_IDS)
@pytest.mark.parametrize("highlight", [True, False], ids=["highlight", "no_highlight"])
@pytest.mark.parametrize("case", sorted(LINES))
def test_a_line_is_what_rich_writes(case, highlight, system, no_color):
    pieces = LINES[case]
    console, out = _console(system, no_color, 300)
    console.print(_markup(pieces), highlight=highlight)
    drawn = ansi.line(ansi.Terminal(300, system, no_color), pieces, highlight=highlight)
    assert drawn == out.getvalue() or (drawn is None and case in LEFT_TO_RICH)


@pytest.mark.parametrize("soft_wrap", [False, True])
def test_a_line_as_wide_as_the_terminal_and_wider(soft_wrap):
    text = "word 12 " * 5 + "end"  # 43 characters
    for width in (len(text) - 1, len(text), len(text) + 1):
        console, out = _console(ansi.STANDARD, False, width)
        console.print(_markup(styled(text)), highlight=True, soft_wrap=soft_wrap)
        drawn = ansi.line(
            ansi.Terminal(width, ansi.STANDARD, False), styled(text), highlight=True, soft_wrap=soft_wrap
        )
        if drawn is not None:
            assert drawn == out.getvalue(), width
        else:
            assert not soft_wrap and width < len(text)  # Rich wraps it: left to Rich


@pytest.mark.parametrize(
    "pieces",
    [
        styled("a :thumbs_up: b"),  # an emoji code
        styled("[bold]x[/]"),  # markup
        styled("back\\slash"),
        styled("é 1"),  # not ASCII
        styled("tab\there"),
        (("x", "on red"),),  # a style it does not draw
        (("a :thumbs", ""), ("_up: b", "")),  # one emoji code over two unstyled pieces
    ],
    ids=["emoji", "markup", "backslash", "non_ascii", "tab", "background", "emoji_split"],
)
def test_a_line_it_cannot_draw_is_left_to_rich(pieces):
    assert ansi.line(ansi.Terminal(200, ansi.STANDARD, False), pieces, highlight=True) is None


def _rich_table(title, columns, rows, system, no_color, width) -> str:
    console, out = _console(system, no_color, width)
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_markup(cell) for cell in row))
    console.print(table)
    return out.getvalue()


RUN_COLUMNS = ("run", "#", "workflow", "status", "started", "duration", "trigger", "actor")
NODE_COLUMNS = ("node", "state", "attempts", "last exit", "duration", "reason")
TABLES = {
    "runs_list": (
        "runs in /tmp/pn-abc/index.db",
        RUN_COLUMNS,
        [
            (
                styled(str(i)),
                styled(str(i)),
                styled("startup bench"),
                styled(status, STATE_LOOKS[status].rich),
                styled("2026-12-03 06:54:00"),
                styled("0.1s"),
                styled("terminal"),
                styled("root"),
            )
            for i, status in enumerate(["OK", "NOK", "ABORTED", "RUNNING", "HANDLED"], 1)
        ],
    ),
    "orphaned": (
        "runs of deploy",
        RUN_COLUMNS,
        [
            (
                styled("3"),
                styled("1"),
                styled("deploy"),
                (("RUNNING", "blue"), (" ", ""), ("orphaned (owner gone since 06:54:00)", "bold red")),
                styled(""),
                styled(""),
                styled("terminal"),
                styled(""),
            )
        ],
    ),
    "show_nodes": (
        None,
        NODE_COLUMNS,
        [
            (
                styled(f"n{i:04d}"),
                styled(state, STATE_LOOKS[state].rich),
                styled("1"),
                styled("0"),
                styled("0.01s"),
                styled("exit code 1 after three tries" if state == "NOK" else ""),
            )
            for i, state in enumerate(["OK", "NOK", "SKIPPED", "PENDING", "WAITING"])
        ],
    ),
    "no_rows": ("runs in /x.db", RUN_COLUMNS, []),
    "long_title_fits": (
        "a title exactly as wide as the table!!",
        ("a", "b"),
        [(styled("x" * 30), styled("y"))],
    ),
    "lead_spaces": ("t", ("a",), [(styled("  lead"),), (styled("  "),)]),
    "empty_styled_cell": (
        "t",
        ("a", "b"),
        [(styled("", "green"), styled("x 1")), ((("a", "bold"), ("", "dim")), styled(""))],
    ),
    "close_brackets": ("a]", ("a]",), [(styled("x ]"),), ((("]", "green"), ("y]", "")),)]),
    "odd_width_title": ("abc", ("col",), [(styled("wider cell"),)]),
}


@pytest.mark.parametrize("system,no_color", SYSTEMS, ids=SYSTEM_IDS)
@pytest.mark.parametrize("case", sorted(TABLES))
def test_a_table_is_what_rich_draws(case, system, no_color):
    title, columns, rows = TABLES[case]
    drawn = ansi.table(ansi.Terminal(200, system, no_color), title, columns, rows)
    assert drawn == _rich_table(title, columns, rows, system, no_color, 200)


def test_a_table_as_wide_as_the_terminal_and_wider():
    title, columns, rows = TABLES["runs_list"]
    width = len(ansi.table(ansi.Terminal(200, ansi.STANDARD, False), title, columns, rows).splitlines()[1])
    assert ansi.table(ansi.Terminal(width, ansi.STANDARD, False), title, columns, rows) == _rich_table(
        title, columns, rows, ansi.STANDARD, False, width
    )
    assert ansi.table(ansi.Terminal(width - 1, ansi.STANDARD, False), title, columns, rows) is None


@pytest.mark.parametrize(
    "title,cell",
    [
        ("runs in /a/very/long/path/that/is/wider/than/the/whole/table.db", styled("x")),  # Rich wraps it
        ("trailing space ", styled("x" * 40)),  # Rich strips the centred title
        ("t", styled(":thumbs_up:")),
        ("t", styled("[bold]x[/]")),
        ("t", styled("é")),
        ("t", (("OK ", "green"),)),  # Rich strips the styled trailing space
        ("t", (("x", "on red"),)),
        ("[bold]t[/]", styled("x")),
    ],
    ids=[
        "long_title",
        "title_trailing_space",
        "emoji",
        "markup",
        "non_ascii",
        "styled_trailing_space",
        "background",
        "title_markup",
    ],
)
def test_a_table_it_cannot_draw_is_left_to_rich(title, cell):
    assert ansi.table(ansi.Terminal(200, ansi.STANDARD, False), title, ("a",), [(cell,)]) is None


@pytest.mark.parametrize(
    "environ",
    [
        {"TERM": "xterm"},
        {"TERM": "xterm-256color"},
        {"TERM": "xterm-kitty"},
        {"TERM": "screen-16color"},
        {"TERM": "xterm", "COLORTERM": "truecolor"},
        {"TERM": "xterm-256color", "COLORTERM": "24bit"},
        {"TERM": "xterm", "NO_COLOR": "1"},
        {"TERM": "xterm", "NO_COLOR": ""},
        {"TERM": "xterm", "COLUMNS": "123"},
        {"TERM": "vt100", "COLUMNS": "40"},
        {},
    ],
    ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()) or "nothing",
)
def test_the_terminal_is_the_one_rich_sees(monkeypatch, environ):
    monkeypatch.delattr(
        builtins, "get_ipython", raising=False
    )  # an earlier test's IPython shell in this worker
    for name in ("TERM", "COLORTERM", "NO_COLOR", "COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("sys.stdout", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
    term = ansi.terminal()
    console = Console(force_terminal=True)
    assert term == ansi.Terminal(console.width, console.color_system, console.no_color)


@pytest.mark.parametrize(
    "environ,encoding",
    [({"TERM": "dumb"}, "utf-8"), ({"TERM": "unknown"}, "utf-8"), ({"TERM": "xterm"}, "latin-1")],
    ids=["dumb", "unknown", "latin1"],
)
def test_a_terminal_rich_draws_otherwise_is_left_to_rich(monkeypatch, environ, encoding):
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("sys.stdout", io.TextIOWrapper(io.BytesIO(), encoding=encoding))
    assert ansi.terminal() is None
