"""Finding a node in a big cockpit (issue 17.6): the search box and the jump list of failed and waiting nodes.

Both are kernel-side and pure over the runbook and the states the graph shows, so they are tested without a
browser; the cockpit's per-view channel (`widget.VIEW_ESM`) draws the answers and centres the node.
"""

from __future__ import annotations

from collections.abc import Mapping

from playbook_nb.domain.model import Runbook
from playbook_nb.presentation import look

MAX_MATCHES = 8  # a longer list is cut, with a line saying how many more match


def search_nodes(runbook: Runbook, query: str) -> list[str]:
    """The nodes a search for `query` finds, best first: an exact id, then an exact title, then every node whose
    id or title contains it (case-insensitive, spaces and underscores alike), in declaration order."""
    wanted = _norm(query)
    if not wanted:
        return []
    if query.strip() in runbook.nodes:
        return [query.strip()]
    exact = [
        nid for nid, node in runbook.nodes.items() if _norm(node.label) == wanted or _norm(nid) == wanted
    ]
    if exact:
        return exact
    return [nid for nid, node in runbook.nodes.items() if wanted in _norm(nid) or wanted in _norm(node.label)]


def search_reply(runbook: Runbook, query: str) -> dict:
    """What the search box shows for `query`: `select` (one match), `matches` (several: [id, text] pairs, at
    most MAX_MATCHES, `more` beyond), or a `line` saying that nothing matches."""
    if not _norm(query):
        return {"line": ""}
    found = search_nodes(runbook, query)
    if len(found) == 1:
        return {"select": found[0], "line": f"found {_title(runbook, found[0])}"}
    if not found:
        return {"line": f"no node matches '{query.strip()}' (search by id or title)"}
    shown = found[:MAX_MATCHES]
    return {
        "matches": [[nid, _title(runbook, nid)] for nid in shown],
        "more": len(found) - len(shown),
        "line": f"{len(found)} nodes match '{query.strip()}': pick one",
    }


def jump_targets(runbook: Runbook, visual: Mapping[str, tuple[str, bool]]) -> list[list[str]]:
    """The jump list: every node shown failed (NOK) or waiting for a decision (a gate, a failure to decide),
    as [id, text] in declaration order; `visual` maps a node to (state shown, awaiting a failure decision)."""
    targets = []
    for node_id in runbook.nodes:
        state, awaiting = visual.get(node_id, ("PENDING", False))
        if state == "NOK":
            why = "failed, needs a decision" if awaiting else "failed"
        elif state == "WAITING":
            why = "gate waiting for a decision"
        else:
            continue
        targets.append([node_id, f"{look(state).mark} {_title(runbook, node_id)}: {why}"])
    return targets


def _title(runbook: Runbook, node_id: str) -> str:
    label = runbook.nodes[node_id].label
    return node_id if label == node_id else f"{label} ({node_id})"


def _norm(text: str) -> str:
    return " ".join(str(text).replace("_", " ").replace("-", " ").lower().split())
