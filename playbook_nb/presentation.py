"""How a state looks, in every face: one table of colour, mark and word per state.

The widget (cytoscape), the SVG of the DAG, the HTML post-mortem, the terminal (Rich) and the notebook's cell
lines all read `look(state)`; no face keeps a table of its own, so a state never shows two colours.

States are the engine's node states, its run states, the attempt states of the record (`INTERRUPTED`) and a
fleet host's plan states (`ADDED`, `REMOVED`), plus one visual state, `READY` (a PENDING node that may start
now). Unknown words look like PENDING.
"""

from __future__ import annotations

from playbook_nb.domain.records import Values

READY = "READY"  # visual state only: PENDING and ready to start now
HANDLED = "HANDLED"  # visual run state only: OK with handled failures


class StateLook(Values):  # a NamedTuple's reading at a plain class's cost (domain/records.py)
    """How one state looks in every face."""

    fill: str  # node background: widget, SVG, HTML node badge
    stroke: str  # node border; the solid colour of a run badge, an attempt bar, a host row
    text: str  # text on `fill`
    mark: str  # one character before a node id (terminal, notebook cell lines)
    word: str  # legend word
    rich: str  # terminal style (Rich markup)


STATE_LOOKS: dict[str, StateLook] = {
    "PENDING": StateLook("#e5e7eb", "#6b7280", "#111827", "·", "pending", "dim"),
    READY: StateLook("#bae6fd", "#0284c7", "#0c4a6e", "·", "ready", "cyan"),
    "RUNNING": StateLook("#2563eb", "#1e3a8a", "#ffffff", "▶", "running", "blue"),
    "WAITING": StateLook("#fbbf24", "#b45309", "#111827", "⏸", "waiting for a decision", "yellow"),
    "OK": StateLook("#4ade80", "#15803d", "#052e16", "✔", "ok", "green"),
    "NOK": StateLook("#f87171", "#b91c1c", "#450a0a", "✘", "failed", "bold red"),
    "SKIPPED": StateLook("#f9fafb", "#9ca3af", "#6b7280", "⊘", "skipped", "bright_black"),
    # run status (a run that stopped and may resume), attempt and host states
    "ABORTED": StateLook("#fbbf24", "#b45309", "#111827", "■", "aborted", "yellow"),
    # a run that ended OK past handled failures (a node failed and was skipped, a rollback ran): amber
    HANDLED: StateLook("#fcd34d", "#d97706", "#111827", "✔", "ok with handled failures", "dark_orange"),
    "INTERRUPTED": StateLook("#fbbf24", "#d97706", "#111827", "■", "interrupted", "yellow"),
    "ADDED": StateLook("#bae6fd", "#0284c7", "#0c4a6e", "+", "added", "cyan"),
    "REMOVED": StateLook("#f9fafb", "#9ca3af", "#6b7280", "−", "removed", "bright_black"),
}

# The node states a DAG legend shows, in this order (widget, SVG).
NODE_LEGEND: tuple[str, ...] = ("PENDING", READY, "RUNNING", "WAITING", "OK", "NOK", "SKIPPED")

# A dependency edge's colour by its condition (DepCondition's values): widget, SVG, DOT.
EDGE_COLORS: dict[str, str] = {"plain": "#9ca3af", "success": "#16a34a", "failure": "#dc2626"}

# The box around the rows of one wrapped layer (widget, SVG, PNG): a wide generation reads as one layer.
BAND_FILL = "#eef2ff"
BAND_STROKE = "#a5b4fc"
BAND_TEXT = "#4f46e5"

# A failed node that waits for Retry / Skip / Abort: its NOK fill with a ring in this colour.
AWAITING_RING = "#d97706"


def look(state: object) -> StateLook:
    """The look of a state word (a NodeState, RunState, attempt or host status, or READY)."""
    return STATE_LOOKS.get(str(state).upper(), STATE_LOOKS["PENDING"])


def mark(state: object) -> str:
    """The one-character mark of a state; a blank for a word that is no state."""
    shown = STATE_LOOKS.get(str(state).upper())
    return shown.mark if shown else " "


def rich_style(state: object) -> str:
    """The terminal (Rich) style of a state; "none" (plain) for a word that is no state, so `[style]...[/]`
    is always valid markup."""
    shown = STATE_LOOKS.get(str(state).upper())
    return shown.rich if shown else "none"


def run_look_state(status: object, handled: int) -> str:
    """The state word a run's status is drawn with: HANDLED (amber) for an OK run with handled failures."""
    return HANDLED if str(status) == "OK" and handled else str(status)
