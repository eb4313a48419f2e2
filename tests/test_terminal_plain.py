"""Off a terminal the run summary table is built as strings (issue 18.2): it must be what Rich draws."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from playbook_nb.faces.cli.terminal_view import _plain_table

COLUMNS = ("node", "state", "attempts", "reason")
CASES = {
    "one_ok": ("run 1: OK", [("n0", "OK", "1", "")]),
    "nok_and_skipped": (
        "run 12345: NOK",
        [("a_very_long_node_name", "NOK", "3", "exit code 1 after three tries"), ("b", "SKIPPED", "0", "x")],
    ),
    "many_rows": ("run 7: OK", [(f"n{i:04d}", "OK", "1", "") for i in range(300)]),
    "no_rows": ("r", []),
    "spaces_kept": ("run 3: OK", [("x", "OK", "1", "  lead and trail  ")]),
}


def _rich(title: str, rows: list[tuple[str, ...]]) -> str:
    out = io.StringIO()
    table = Table(title=title, show_lines=False)
    for column in COLUMNS:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console(file=out, width=100_000).print(table)
    return out.getvalue()


@pytest.mark.parametrize("case", sorted(CASES))
def test_plain_table_is_what_rich_draws(case):
    title, rows = CASES[case]
    assert _plain_table(title, COLUMNS, rows, 100_000) == _rich(title, rows)


@pytest.mark.parametrize(
    "title,reason",
    [
        ("run 1: OK", ":thumbs_up: went fine"),  # an emoji code Rich replaces
        ("run 1: OK", "[bold]x[/]"),  # markup
        ("run 1: OK", "é"),  # not ASCII: cell widths differ
        ("run 1: a title longer than the whole table", ""),  # Rich wraps the title
    ],
    ids=["emoji", "markup", "non_ascii", "long_title"],
)
def test_plain_table_leaves_to_rich_what_renders_otherwise(title, reason):
    assert _plain_table(title, COLUMNS, [("x", "OK", "1", reason)], 100_000) is None
