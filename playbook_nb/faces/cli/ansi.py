"""On a terminal, what Rich writes for `runs list` and `show` (their lines and tables), as strings (issue 18.1).

Rich's console and table cost about 20 ms of a 0.1 s start on a terminal (their imports, the style and
segment machinery, the table's layout); for the common case, cells and lines of printable ASCII in a few
known styles, that fit the terminal, this module writes the same characters and SGR codes Rich would:

- the terminal as Rich sees it (`terminal()`): its colour system from `COLORTERM` and `TERM`, `NO_COLOR`
  (attributes kept, colours dropped), its width from `COLUMNS` or the terminal; None (Rich decides) for what
  is not plain to decide here: Windows, Jupyter or IDLE, `TERM=dumb`, an encoding other than UTF-8;
- a line (`line()`) as `Console.print(markup, highlight=...)` renders it: Rich's own `ReprHighlighter`
  patterns (checked equal to Rich's by tests/test_terminal_ansi.py), the markup's styles over them, cut in
  segments where Rich's `Text.render` cuts them;
- a table (`table()`) as `Table(title=...)` draws it with its default heavy-head box, bold header and
  italic centred title, when it fits without wrapping.

Anything else (an unknown style, markup or emoji codes, a character that is not printable ASCII, a line or
table that would wrap) returns None and the caller prints through Rich. tests/test_terminal_ansi.py compares
the strings with Rich's rendering byte for byte.
"""

from __future__ import annotations

import builtins
import os
import re
import sys

# A style as Rich keeps it (rich.style.Style): the attribute bits on, the bits set (on or off), the colour
# (a name in _STANDARD, _EIGHT_BIT or "default"; None for none). Combining lays the later over the earlier.
Style = tuple[int, int, str | None]
NULL: Style = (0, 0, None)

_ATTRIBUTES = {
    "bold": 0,
    "dim": 1,
    "italic": 2,
    "underline": 3,
    "blink": 4,
    "blink2": 5,
    "reverse": 6,
    "conceal": 7,
    "strike": 8,
    "underline2": 9,
    "frame": 10,
    "encircle": 11,
    "overline": 12,
}
_ATTRIBUTE_SGR = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "21", "51", "52", "53")

# Rich's standard colour names and numbers (rich.color.ANSI_COLOR_NAMES, 0-15)
_STANDARD = {
    name: number
    for number, name in enumerate(
        (
            "black",
            "red",
            "green",
            "yellow",
            "blue",
            "magenta",
            "cyan",
            "white",
            "bright_black",
            "bright_red",
            "bright_green",
            "bright_yellow",
            "bright_blue",
            "bright_magenta",
            "bright_cyan",
            "bright_white",
        )
    )
}
# The 256-colour names the terminal styles use: their number, and the standard colour Rich downgrades it to
# on a 16-colour terminal (rich.color.Color.downgrade; the test checks both)
_EIGHT_BIT = {"dark_orange": (208, 9)}

STANDARD, EIGHT_BIT, TRUECOLOR = "standard", "256", "truecolor"


def parse(definition: str) -> Style | None:
    """A style definition as Rich parses it, for what this module draws: attribute words (`bold`, `not
    italic`), one foreground colour of the tables above, `none`. None for anything else (Rich draws it)."""
    on = mask = 0
    colour: str | None = None
    words = iter(definition.split())
    for word in words:
        if word == "none":
            continue
        if word == "not":
            bit = _ATTRIBUTES.get(next(words, ""))
            if bit is None:
                return None
            mask |= 1 << bit
            on &= ~(1 << bit)
        elif word in _ATTRIBUTES:
            bit = _ATTRIBUTES[word]
            mask |= 1 << bit
            on |= 1 << bit
        elif word in _STANDARD or word in _EIGHT_BIT or word == "default":
            colour = word
        else:
            return None
    return (on, mask, colour)


def combine(base: Style, over: Style) -> Style:
    """`base + over` (rich.style.Style._add): the attributes `over` sets replace `base`'s, its colour too."""
    on, mask, colour = over
    return ((base[0] & ~mask) | (on & mask), base[1] | mask, colour or base[2])


# The default theme's styles these outputs use (rich.default_styles.DEFAULT_STYLES; the test checks them)
THEME: dict[str, str] = {
    "table.header": "bold",
    "table.title": "italic",
    "repr.tag_start": "bold",
    "repr.tag_name": "bold bright_magenta",
    "repr.tag_contents": "default",
    "repr.tag_end": "bold",
    "repr.attrib_name": "not italic yellow",
    "repr.attrib_value": "not italic magenta",
    "repr.brace": "bold",
    "repr.ipv4": "bold bright_green",
    "repr.ipv6": "bold bright_green",
    "repr.eui64": "bold bright_green",
    "repr.eui48": "bold bright_green",
    "repr.uuid": "not bold bright_yellow",
    "repr.call": "bold magenta",
    "repr.bool_true": "italic bright_green",
    "repr.bool_false": "italic bright_red",
    "repr.none": "italic magenta",
    "repr.ellipsis": "yellow",
    "repr.number_complex": "bold not italic cyan",
    "repr.number": "bold not italic cyan",
    "repr.path": "magenta",
    "repr.filename": "bright_magenta",
    "repr.str": "not bold not italic green",
    "repr.url": "not bold not italic underline bright_blue",
}


_DIGITS = frozenset("0123456789")

# rich.highlighter.ReprHighlighter.highlights, as Rich 15 has them (tests/test_terminal_ansi.py checks they
# are Rich's own): Console.print highlights a line with these, group names prefixed "repr.". Each with what
# a text must hold for it to match anywhere: compiling all four costs about 1.1 ms (2% of a start), the
# fourth, an alternation, most of it; a pattern, or an alternative of the fourth, that cannot match is
# neither compiled nor tried (highlight_spans).
_REPR_PATTERNS = [
    (
        r"(?P<tag_start><)(?P<tag_name>[-\w.:|]*)(?P<tag_contents>[\w\W]*)(?P<tag_end>>)",
        lambda t: "<" in t and ">" in t,
    ),
    (r'(?P<attrib_name>[\w_]{1,50})=(?P<attrib_value>"?[\w_]+"?)?', lambda t: "=" in t),
    (r"(?P<brace>[][{}()])", lambda t: not frozenset("[]{}()").isdisjoint(t)),
]
_REPR_ALTERNATIVES = [
    (r"(?P<ipv4>[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})", lambda t: t.count(".") >= 3),
    (r"(?P<ipv6>([A-Fa-f0-9]{1,4}::?){1,7}[A-Fa-f0-9]{1,4})", lambda t: ":" in t),
    (
        r"(?P<eui64>(?:[0-9A-Fa-f]{1,2}-){7}[0-9A-Fa-f]{1,2}|(?:[0-9A-Fa-f]{1,2}:){7}[0-9A-Fa-f]{1,2}|(?:[0-9A-Fa-f]{4}\.){3}[0-9A-Fa-f]{4})",
        lambda t: t.count("-") >= 7 or t.count(":") >= 7 or t.count(".") >= 3,
    ),
    (
        r"(?P<eui48>(?:[0-9A-Fa-f]{1,2}-){5}[0-9A-Fa-f]{1,2}|(?:[0-9A-Fa-f]{1,2}:){5}[0-9A-Fa-f]{1,2}|(?:[0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4})",
        lambda t: t.count("-") >= 5 or t.count(":") >= 5 or t.count(".") >= 2,
    ),
    (
        r"(?P<uuid>[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12})",
        lambda t: t.count("-") >= 4,
    ),
    (r"(?P<call>[\w.]*?)\(", lambda t: "(" in t),
    (
        r"\b(?P<bool_true>True)\b|\b(?P<bool_false>False)\b|\b(?P<none>None)\b",
        lambda t: "True" in t or "False" in t or "None" in t,
    ),
    (r"(?P<ellipsis>\.\.\.)", lambda t: "..." in t),
    (
        r"(?P<number_complex>(?<!\w)(?:\-?[0-9]+\.?[0-9]*(?:e[-+]?\d+?)?)(?:[-+](?:[0-9]+\.?[0-9]*(?:e[-+]?\d+)?))?j)",
        lambda t: "j" in t,
    ),
    (
        r"(?P<number>(?<!\w)\-?[0-9]+\.?[0-9]*(e[-+]?\d+?)?\b|0x[0-9a-fA-F]*)",
        lambda t: not _DIGITS.isdisjoint(t),
    ),
    (r"(?P<path>\B(/[-\w._+]+)*\/)(?P<filename>[-\w._+]*)?", lambda t: "/" in t),
    (
        r"(?<![\\\w])(?P<str>b?'''.*?(?<!\\)'''|b?'.*?(?<!\\)'|b?\"\"\".*?(?<!\\)\"\"\"|b?\".*?(?<!\\)\")",
        lambda t: "'" in t or '"' in t,
    ),
    (r"(?P<url>(file|https|http|ws|wss)://[-0-9a-zA-Z$_+!`(),.?/;:&=%#~@]*)", lambda t: "://" in t),
]
REPR_HIGHLIGHTS = [pattern for pattern, _holds in _REPR_PATTERNS] + [
    "|".join(pattern for pattern, _holds in _REPR_ALTERNATIVES)
]
_compiled: dict[str, re.Pattern[str]] = {}


def _compile(source: str) -> re.Pattern[str]:
    pattern = _compiled.get(source)
    if pattern is None:
        pattern = _compiled[source] = re.compile(source)
    return pattern


class Terminal:
    """The terminal Rich would write to: its width, colour system, and whether NO_COLOR drops colours. (A
    plain class: a NamedTuple costs a fifth of a millisecond to define, at every start.)"""

    __slots__ = ("width", "colour_system", "no_color", "_codes")

    def __init__(self, width: int, colour_system: str, no_color: bool) -> None:
        self.width = width
        self.colour_system = colour_system
        self.no_color = no_color
        self._codes: dict[Style, str] = {}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Terminal):
            return NotImplemented
        return (self.width, self.colour_system, self.no_color) == (
            other.width,
            other.colour_system,
            other.no_color,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Terminal({self.width}, {self.colour_system!r}, no_color={self.no_color})"

    def sgr(self, style: Style) -> str:
        """The codes of `style` (rich.style.Style._make_ansi_codes), "" for none."""
        codes = self._codes.get(style)
        if codes is None:
            codes = self._codes[style] = self._sgr(style)
        return codes

    def _sgr(self, style: Style) -> str:
        on, mask, colour = style
        attributes = on & mask
        codes = [code for bit, code in enumerate(_ATTRIBUTE_SGR) if attributes & (1 << bit)]
        if colour is not None and not self.no_color:
            codes.append(self._colour_code(colour))
        return ";".join(codes)

    def _colour_code(self, colour: str) -> str:
        if colour == "default":
            return "39"
        number = _STANDARD.get(colour)
        if number is None:
            eight_bit, standard = _EIGHT_BIT[colour]
            if self.colour_system != STANDARD:
                return f"38;5;{eight_bit}"
            number = standard
        return str(30 + number if number < 8 else 82 + number)

    def render(self, text: str, spans: list[tuple[int, int, Style]], base: Style = NULL) -> str:
        """`text` with its spans (start, end, style; later ones laid over earlier ones), cut where Rich's
        Text.render cuts it: at every span's start and end, each piece in the combined style of the spans
        over it (`base` under all)."""
        if not spans:
            return self._styled(text, base)
        cuts = sorted({0, len(text), *(s for s, _e, _st in spans), *(e for _s, e, _st in spans)})
        out = []
        for start, end in zip(cuts, cuts[1:], strict=False):
            style = base
            for s, e, over in spans:
                if s <= start < e:
                    style = combine(style, over)
            out.append(self._styled(text[start:end], style))
        return "".join(out)

    def _styled(self, text: str, style: Style) -> str:
        codes = self.sgr(style) if text else ""
        return f"\x1b[{codes}m{text}\x1b[0m" if codes else text


def terminal() -> Terminal | None:
    """The terminal stdout is, as Rich's Console would see it, when it is one this module draws for; None
    when Rich is left to decide (not a terminal, Windows, Jupyter or IDLE, a dumb terminal, not UTF-8, a
    stdout Rich proxies). Only called when stdout is a terminal by Rich's rule (app.plain_stdout is False)."""
    environ = os.environ
    if sys.platform == "win32" or hasattr(builtins, "get_ipython"):  # an IPython shell runs (Rich's test)
        return None
    if getattr(sys.stdin, "__module__", "").startswith("idlelib"):
        return None
    stdout = sys.stdout
    if stdout is None or hasattr(stdout, "rich_proxied_file"):
        return None
    if not (getattr(stdout, "encoding", None) or "utf-8").lower().startswith("utf"):
        return None
    term = environ.get("TERM", "")
    if term.lower() in ("dumb", "unknown"):
        return None
    if environ.get("COLORTERM", "").strip().lower() in ("truecolor", "24bit"):
        colour_system = TRUECOLOR
    else:
        colors = term.strip().lower().rpartition("-")[2]
        colour_system = EIGHT_BIT if colors in ("kitty", "256color") else STANDARD
    width = _width(environ)
    if width is None or width < 1:
        return None
    return Terminal(width, colour_system, environ.get("NO_COLOR", "") != "")


def _width(environ) -> int | None:
    """Console.size's width: COLUMNS when it is digits, else the first of stdin, stdout, stderr that is a
    terminal, else 80."""
    columns = environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        try:
            return int(columns)
        except ValueError:
            return None
    width = None
    for fd in (0, 1, 2):
        try:
            width = os.get_terminal_size(fd).columns
        except (AttributeError, ValueError, OSError):
            continue
        break
    return width or 80


# A line or a cell: its pieces, each a text and its Rich style ("" for none), as app.Styled
Pieces = tuple[tuple[str, str], ...]


def _markup_spans(pieces: Pieces) -> list[tuple[int, int, Style]] | None:
    """The spans Rich's markup gives `pieces` printed as `[style]text[/]` (app._markup), or None when a
    piece could render otherwise: a style this module does not know, text that is not printable ASCII or
    holds what Rich reads as markup or an emoji code."""
    if len(pieces) == 1 and not pieces[0][1]:  # most cells: one unstyled piece
        return [] if _fits(pieces[0][0]) else None
    spans = []
    position = 0
    run = ""  # the unstyled text since the last tag: Rich replaces emoji codes in it as one piece
    for text, style in pieces:
        if not style:
            run += text
        else:
            parsed = parse(style)
            if parsed is None or not _fits(run) or not _fits(text):
                return None
            run = ""
            spans.append((position, position + len(text), parsed))
        position += len(text)
    return spans if _fits(run) else None


def _fits(text: str) -> bool:
    """Printable ASCII that Rich writes as it is (terminal_view._written_as_is: no markup, no emoji code)."""
    if not (text.isascii() and text.isprintable()) or "[" in text or "\\" in text:
        return False
    if text.count(":") <= 1:
        return True
    from playbook_nb.faces.cli.terminal_view import _written_as_is

    return _written_as_is(text)


def line(term: Terminal, pieces: Pieces, *, highlight: bool, soft_wrap: bool = False) -> str | None:
    """One line as `Console.print(markup, highlight=highlight, soft_wrap=soft_wrap)` writes it, with its
    newline; None when Rich should write it (see _markup_spans; longer than the terminal is wide, unless
    soft-wrapped: Rich wraps it)."""
    spans = _markup_spans(pieces)
    if spans is None:
        return None
    text = "".join(text for text, _style in pieces)
    if not soft_wrap and len(text) > term.width:
        return None
    if highlight:
        spans = _highlights(text) + spans  # Rich copies the markup's styles over the highlighter's
    return term.render(text, spans) + "\n"


def _highlights(text: str) -> list[tuple[int, int, Style]]:
    return [(start, end, _theme(name)) for start, end, name in highlight_spans(text)]


def highlight_spans(text: str) -> list[tuple[int, int, str]]:
    """ReprHighlighter's spans over `text` (rich.text.Text.highlight_regex: a span per named group that
    matched something, in the order of the patterns, their matches and their groups), with their style
    names. The fourth pattern, an alternation, is matched as its alternatives: at each step the leftmost
    match of any, the first alternative's at a tie, as `finditer` of the whole does (none matches empty);
    each alternative compiled alone, and only when `text` holds what it needs."""
    spans: list[tuple[int, int, str]] = []
    for source, holds in _REPR_PATTERNS:
        if holds(text):
            for found in _compile(source).finditer(text):
                _add_groups(spans, found)
    alternatives = [_compile(source) for source, holds in _REPR_ALTERNATIVES if holds(text)]
    upcoming: list[re.Match[str] | None] = [pattern.search(text) for pattern in alternatives]
    while True:
        best: re.Match[str] | None = None
        for match in upcoming:
            if match is not None and (best is None or match.start() < best.start()):
                best = match
        if best is None:
            return spans
        _add_groups(spans, best)
        position = best.end()
        for index, match in enumerate(upcoming):  # an alternative's next match from here on
            if match is not None and match.start() < position:
                upcoming[index] = alternatives[index].search(text, position)


def _add_groups(spans: list[tuple[int, int, str]], match: re.Match[str]) -> None:
    for name in match.groupdict():
        start, end = match.span(name)
        if start != -1 and end > start:
            spans.append((start, end, f"repr.{name}"))


_theme_styles: dict[str, Style] = {}


def _theme(name: str) -> Style:
    style = _theme_styles.get(name)
    if style is None:
        parsed = parse(THEME[name])
        assert parsed is not None, name
        style = _theme_styles[name] = parsed
    return style


def table(
    term: Terminal, title: str | None, columns: tuple[str, ...], rows: list[tuple[Pieces, ...]]
) -> str | None:
    """A table as Rich's `Table(title=title)` (columns as given, cells as markup) draws it on `term`: the
    heavy-head box, the header in table.header's style (bold), the title centred above in table.title's
    (italic); None when Rich should draw it: a cell or title it would render otherwise, a title it would
    strip or wrap, a table wider than the terminal."""
    if title is not None and (not _fits(title) or title != title.rstrip()):
        return None
    cells: list[list[tuple[str, list[tuple[int, int, Style]]]]] = []
    for row in rows:
        drawn = []
        for pieces in row:
            spans = _markup_spans(pieces)
            text = "".join(text for text, _style in pieces)
            if spans is None or (spans and text != text.rstrip()):  # Rich strips a cell's trailing spaces
                return None
            drawn.append((text, spans))
        cells.append(drawn)
    for column in columns:
        if not _fits(column):
            return None
    widths = [len(column) for column in columns]
    for drawn in cells:
        widths = [max(w, len(text)) for w, (text, _spans) in zip(widths, drawn, strict=True)]
    total = sum(widths) + 3 * len(widths) + 1
    if total > term.width or len(title or "") > total:
        return None
    lines = []
    if title:
        left = (total - len(title)) // 2
        lines.append(
            term.render(" " * left + title + " " * (total - len(title) - left), [], _theme("table.title"))
        )
    header = _theme("table.header")
    pad = term.render(" ", [], header)
    lines.append("┏" + "┳".join("━" * (w + 2) for w in widths) + "┓")
    lines.append(
        "┃"
        + "┃".join(
            f"{pad}{term.render(c.ljust(w), [], header)}{pad}" for c, w in zip(columns, widths, strict=True)
        )
        + "┃"
    )
    lines.append("┡" + "╇".join("━" * (w + 2) for w in widths) + "┩")
    for drawn in cells:
        lines.append(
            "│"
            + "│".join(
                f" {term.render(text.ljust(w), spans)} "
                for (text, spans), w in zip(drawn, widths, strict=True)
            )
            + "│"
        )
    lines.append("└" + "┴".join("─" * (w + 2) for w in widths) + "┘")
    return "\n".join(lines) + "\n"
