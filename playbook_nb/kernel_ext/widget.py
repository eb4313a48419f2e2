"""The incident cockpit: the runbook's DAG as a live ipycytoscape graph, with a panel per node.

`RunbookWidget(notebook_run)` is what `NotebookRun.show()` displays in JupyterLab. It drives the one engine
through `notebook_run.session` (a `RunSession`), exactly as the node cells do:

- the graph: one cytoscape node per runbook node, edges from `depends_on` (`:success` / `:failure` labelled),
  nodes coloured by state through a stylesheet on the node data field `state`, positions computed in Python
  (`playbook_nb.kernel_ext.widget_layout`) and given to cytoscape's "preset" layout;
- live updates: the widget listens to `session.event_listeners` and re-sends the data of the changed node only
  (one small comm message per change; see `docs/cockpit.md` for the measurement against re-setting the graph);
- the panel (click a node): what the node does (rendered, secrets masked), its dependencies, `when`, its state
  and why, its attempts from the index, its live or last output, and the buttons valid in its state now;
- every button goes through `RunSession` (`run_node`, `decide`, `abort`, `run_until_gate`); a `PlaybookError`
  becomes one line in the panel, never a traceback. Nothing blocks the kernel: a gate waits as state.
"""

from __future__ import annotations

import contextlib
import html
import time
from collections.abc import Callable, Iterator
from typing import Any

import anywidget
import ipycytoscape
import ipywidgets as widgets
import traitlets
from ipywidgets.widgets.widget_string import HTMLStyle

from playbook_nb.domain.engine import Decision, EngineEvent, EventKind, NodeState, PendingDecision, RunState
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.model import DepCondition, NodeType
from playbook_nb.domain.outcome import handled_failures, status_label
from playbook_nb.kernel_ext.cockpit_find import jump_targets, search_reply
from playbook_nb.kernel_ext.kernel_thread import on_this_thread
from playbook_nb.kernel_ext.widget_layout import GATE_H, NODE_H, NODE_W, GraphLayout, compute_layout
from playbook_nb.presentation import (
    AWAITING_RING,
    BAND_FILL,
    BAND_STROKE,
    BAND_TEXT,
    EDGE_COLORS,
    NODE_LEGEND,
    READY,
    look,
    run_look_state,
)

# Visual states (node data `state`): the engine's node states plus READY (PENDING and ready to start now);
# their colours and words come from the one presentation table.
SELECTED_UNDERLAY = "#6366f1"

BUTTONS = ("run", "approve", "reject", "retry", "skip", "abort")
TD = 'style="padding:1px 8px 1px 0;text-align:left;border-bottom:1px solid #e5e7eb"'
PANEL_WIDTH = 400  # px; the graph takes the rest of the row
BIG_GRAPH = 300  # nodes; from here on a pan or zoom redraws a cached picture of the graph, not every element
PACE_EVERY = 200  # graph elements created between two pauses (big graphs)
PACE_PAUSE = 0.05  # seconds
WATCH_POLL = 1.0  # seconds between two looks at the record of a run another session drives


def stylesheet() -> list[dict[str, Any]]:
    """The cytoscape stylesheet: colours by `state`, diamonds for gates, thick borders for critical nodes."""
    style: list[dict[str, Any]] = [
        {
            "selector": "node",
            "style": {
                "shape": "round-rectangle",
                "width": NODE_W,
                "height": NODE_H,
                "label": "data(label)",
                "text-wrap": "wrap",
                "text-max-width": NODE_W - 12,
                "text-valign": "center",
                "text-halign": "center",
                "font-size": 12,
                "font-family": "Helvetica, Arial, sans-serif",
                "border-width": 1.5,
                "border-style": "solid",
            },
        },
        {
            "selector": 'node[type = "Manual"]',
            "style": {"shape": "diamond", "height": GATE_H, "text-max-width": 110},
        },
        {"selector": 'node[type = "Function"]', "style": {"shape": "ellipse"}},
        {  # the box around the rows of one wrapped layer (widget_layout): under the edges, never clicked
            "selector": "node[?band]",
            "style": {
                "shape": "round-rectangle",
                "width": "data(w)",
                "height": "data(h)",
                "background-color": BAND_FILL,
                "border-color": BAND_STROKE,
                "border-width": 1.5,
                "border-style": "dashed",
                "label": "data(label)",
                "text-valign": "center",
                "text-halign": "left",
                "text-margin-x": -6,
                "text-wrap": "wrap",
                "text-max-width": 70,
                "font-size": 11,
                "color": BAND_TEXT,
                "events": "no",
                "z-compound-depth": "bottom",
            },
        },
    ]
    for state in NODE_LEGEND:
        shown = look(state)
        style.append(
            {
                "selector": f'node[state = "{state}"]',
                "style": {"background-color": shown.fill, "border-color": shown.stroke, "color": shown.text},
            }
        )
    style += [
        {"selector": 'node[state = "SKIPPED"]', "style": {"border-style": "dashed", "border-width": 2}},
        # (no bold label for critical nodes: cytoscape's label cache clips the underscores of bold text)
        {"selector": "node[?critical]", "style": {"border-width": 4.5}},
        {
            "selector": "node[?awaiting]",
            "style": {"border-color": AWAITING_RING, "border-width": 6, "border-style": "double"},
        },
        {
            "selector": "node.selected-node",
            "style": {"underlay-color": SELECTED_UNDERLAY, "underlay-padding": 7, "underlay-opacity": 0.35},
        },
        {
            "selector": "edge",
            "style": {
                "width": 1.6,
                "curve-style": "bezier",
                "line-color": EDGE_COLORS[DepCondition.PLAIN],
                "target-arrow-shape": "triangle",
                "target-arrow-color": EDGE_COLORS[DepCondition.PLAIN],
                "arrow-scale": 0.9,
            },
        },
    ]
    for condition in (DepCondition.SUCCESS, DepCondition.FAILURE):
        color = EDGE_COLORS[condition]
        style.append(
            {
                "selector": f'edge[condition = "{condition}"]',
                "style": {
                    "line-color": color,
                    "target-arrow-color": color,
                    "label": "data(condition)",
                    "font-size": 10,
                    "color": color,
                    "text-background-color": "#ffffff",
                    "text-background-opacity": 0.85,
                    "text-background-padding": 2,
                    "line-style": "dashed" if condition is DepCondition.FAILURE else "solid",
                },
            }
        )
    return style


def legend_html(wrapped: bool = False) -> str:
    """The legend; `wrapped`: the graph has a layer wrapped onto rows, drawn inside one box."""
    chips = []
    for state in NODE_LEGEND:
        shown = look(state)
        dashed = "dashed" if state == "SKIPPED" else "solid"
        chips.append(
            f'<span style="display:inline-flex;align-items:center;margin-right:10px;white-space:nowrap">'
            f'<span style="display:inline-block;width:14px;height:11px;background:{shown.fill};'
            f'border:1.5px {dashed} {shown.stroke};border-radius:3px;margin-right:4px"></span>'
            f"{html.escape(shown.word)}</span>"
        )
    chips.append(
        '<span style="display:inline-flex;align-items:center;margin-right:10px;white-space:nowrap">'
        f'<span style="display:inline-block;width:14px;height:11px;background:{look("NOK").fill};'
        f'border:3px double {AWAITING_RING};border-radius:3px;margin-right:4px"></span>failed, needs a decision</span>'
    )
    chips.append(
        '<span style="white-space:nowrap;margin-right:10px">◇ gate</span>'
        '<span style="white-space:nowrap;margin-right:10px"><b>thick border</b>: critical</span>'
        f'<span style="white-space:nowrap;color:{EDGE_COLORS[DepCondition.SUCCESS]}">→ success</span>&nbsp; '
        f'<span style="white-space:nowrap;color:{EDGE_COLORS[DepCondition.FAILURE]}">⇢ failure</span>'
    )
    if wrapped:
        chips.append(
            '<span class="pb-legend-band" style="display:inline-flex;align-items:center;margin-left:10px;'
            f'white-space:nowrap"><span style="display:inline-block;width:22px;height:11px;background:{BAND_FILL};'
            f'border:1.5px dashed {BAND_STROKE};border-radius:3px;margin-right:4px"></span>'
            "one layer, wrapped onto rows</span>"
        )
    return f'<div class="pb-legend" style="font-size:12px;line-height:1.9">{"".join(chips)}</div>'


HOST_FILTERS = {"all": "all", "NOK": "failed", "OK": "OK", "open": "not run yet"}
# the host table fits the panel: fixed column widths, long host names and errors wrap
HOST_COLUMNS = (("host", 33), ("state", 11), ("#", 6), ("exit", 10), ("took", 10), ("error / output", 30))


def host_matches(state: str, wanted: str) -> bool:
    if wanted == "all":
        return True
    if wanted == "open":
        return state not in ("OK", "NOK", "REMOVED")
    return state == wanted


def hosts_html(rows: list, wanted: str = "all") -> str:
    """The host table of a fleet node (issue 21): counts over every host, the rows the filter keeps, and each
    host's output (already masked in the record) behind a disclosure."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no host yet"
    shown = [r for r in rows if host_matches(r.state, wanted)]
    body = "".join(
        f'<tr class="pb-host" data-host="{html.escape(r.host)}" data-state="{r.state}">'
        f"<td {TD}><code>{html.escape(r.host)}</code>{' (' + r.membership + ')' if r.membership else ''}</td>"
        f"<td {TD}>{r.state}</td><td {TD}>{r.attempt}</td>"
        f"<td {TD}>{'' if r.exit_code is None else r.exit_code}</td>"
        f"<td {TD}>{'' if r.duration is None else f'{r.duration:.2f}s'}</td>"
        f"<td {TD}>{html.escape(r.error or '')}</td></tr>"
        + (
            f'<tr class="pb-host-output" data-host="{html.escape(r.host)}"><td colspan="{len(HOST_COLUMNS)}" '
            f'style="padding:0 0 3px 0;border-bottom:1px solid #e5e7eb"><details><summary>output of '
            f"<code>{html.escape(r.host)}</code></summary>{_pre((r.stdout or '') + (r.stderr or ''))}"
            "</details></td></tr>"
            if (r.stdout or r.stderr)
            else ""
        )
        for r in shown
    )
    return (
        f'<div class="pb-host-table" style="font-size:12px" data-filter="{wanted}">{html.escape(summary)}; '
        f'showing {len(shown)}<table style="border-collapse:collapse;font-size:12px;width:100%;'
        f'table-layout:fixed;overflow-wrap:anywhere"><colgroup>'
        + "".join(f'<col style="width:{width}%">' for _name, width in HOST_COLUMNS)
        + "</colgroup><tr>"
        + "".join(f'<th {TD[:-1]};white-space:nowrap">{name}</th>' for name, _width in HOST_COLUMNS)
        + f"</tr>{body}</table></div>"
    )


def _pre(text: str, color: str = "#111827") -> str:
    return (
        f'<pre style="margin:2px 0;padding:4px 6px;background:#f3f4f6;color:{color};white-space:pre-wrap;'
        f'word-break:break-word;font-size:12px;max-height:180px;overflow:auto">{html.escape(text)}</pre>'
    )


KERNEL_VIEW = "kernel"  # the panel of the kernel itself: kernel-side tests, a front end that runs no JS
MAX_VIEWS = (
    16  # panels kept for browser views; the oldest goes when a view that never said goodbye is replaced
)

# Each browser view of the cockpit (a second tab, another person's browser on the same kernel) says hello with an
# id of its own: the kernel gives it a node panel of its own (class pb-view-<id>), and this view shows that one
# only. A node tapped in this view's graph selects the node in this view's panel, highlighted in this graph only.
# The same element is the view's toolbar for a big graph (issue 17.6): Fit, the search box, the jump list of
# failed and waiting nodes (the kernel answers searches and keeps the list, `cockpit_find`), and the wheel: over
# the graph it scrolls the notebook until the graph has focus (a click inside it); then it zooms; a click outside
# or Escape gives it back. All of it is per view: another tab's zoom, focus and search are its own.
VIEW_ESM = """
function render({ model, el }) {
  const view = Array.from(crypto.getRandomValues(new Uint8Array(8)), b => b.toString(16).padStart(2, '0')).join('');
  el.classList.add('pb-view-channel');
  el.dataset.pbView = view;
  el.dataset.lmSuppressShortcuts = 'true';  // typing in the search box is not a notebook shortcut
  el.innerHTML = `<div class="pb-toolbar" style="display:flex;flex-wrap:wrap;align-items:center;gap:6px;
      margin:2px 0 4px 0;font-size:12px">
    <button class="jupyter-button widget-button pb-fit" title="Fit the whole graph in the view">Fit</button>
    <input class="pb-search" type="search" placeholder="find a node: id or title" title="find a node by id or title"
      style="width:200px;height:24px;box-sizing:border-box;padding:0 6px">
    <select class="pb-jump" title="failed and waiting nodes: pick one to go to it"
      style="height:24px;max-width:340px"></select>
    <span class="pb-wheel-hint" style="color:#6b7280;flex:1 1 0;min-width:0;white-space:nowrap;overflow:hidden;
      text-overflow:ellipsis"></span>
  </div>
  <div class="pb-search-result" style="font-size:12px;margin:0 0 4px 0"></div>`;
  const fitButton = el.querySelector('.pb-fit');
  const search = el.querySelector('.pb-search');
  const jump = el.querySelector('.pb-jump');
  const hint = el.querySelector('.pb-wheel-hint');
  const result = el.querySelector('.pb-search-result');
  let stopped = false;
  let cy = null;
  let asked = 0;
  const send = (msg) => { try { model.send({ view, ...msg }); } catch (err) { /* no kernel: a saved record */ } };
  const interactive = () => model.get('interactive');
  const showInteractive = () => {
    for (const part of [search, jump, result]) part.style.display = interactive() ? '' : 'none';
  };
  const showJump = () => {
    const targets = model.get('jump') || [];
    jump.replaceChildren();
    const head = document.createElement('option');
    head.value = '';
    head.textContent = targets.length ? `failed / waiting: ${targets.length}` : 'nothing failed or waiting';
    jump.appendChild(head);
    for (const [id, text] of targets) {
      const option = document.createElement('option');
      option.value = id;
      option.textContent = text;
      jump.appendChild(option);
    }
    jump.disabled = !targets.length;
  };
  const centre = (id) => {
    if (!live()) return;
    const node = cy.getElementById(id);
    if (node.empty()) return;
    if (cy.zoom() < 0.8) cy.zoom(0.8);  // readable
    cy.center(node);
    if (chosen && chosen.id === id) chosen.centred = true;
  };
  // This view's selection, drawn again on a graph drawn anew (see `adopt`): {id, centred}.
  let chosen = null;
  const mark = (id) => {
    chosen = { id, centred: false };
    if (!live()) return;
    cy.nodes('.selected-node').removeClass('selected-node');
    cy.getElementById(id).addClass('selected-node');
  };
  let hasFocus = null;
  const focused = (on) => {
    // (the hint never changes the toolbar's height: a click whose mousedown moved the page would be lost)
    if (!cy || hasFocus === on) return;
    hasFocus = on;
    cy.userZoomingEnabled(on);
    const box = cy.container();
    box.style.outline = on ? '2px solid #6366f1' : '';
    box.style.outlineOffset = '-2px';
    box.dataset.pbFocus = on ? 'graph' : 'page';
    if (el.dataset.pbDeaf) return;  // that line stays until the kernel is heard
    hint.textContent = on ? 'wheel zooms the graph (Esc or a click outside: the wheel scrolls the page)'
                          : 'click the graph to zoom it with the wheel';
  };
  const onDocDown = (event) => { if (live() && !cy.container().contains(event.target)) focused(false); };
  // A press in the cockpit stays in the cockpit, as one on its graph already does (cytoscape prevents its
  // default): JupyterLab's notebook would make the setup cell its active cell and focus it, and in a notebook of
  // 400 cells that sets every cell editor measuring the page, 50 ms and more before a button's click is handled.
  const keepPress = (event) => event.stopPropagation();
  // A focus that comes into a node panel (a button clicked, the comment box) stays there too, for the same reason:
  // the notebook would make the setup cell active, and in a notebook of 400 cells every editor then measures the
  // page (1 s here, the first click after Run All). Typing in the comment box is no shortcut either way (command
  // mode's keys skip a focused input); only a notebook in edit mode hears it, and leaves edit mode as it would.
  const keepFocus = (event) => {
    if (!(event.target instanceof Element) || !event.target.closest('.pb-panel')) return;  // a node panel's own
    const notebook = el.closest('.jp-Notebook');
    if (!notebook || !notebook.classList.contains('jp-mod-editMode')) event.stopPropagation();
  };
  let cockpitEl = null;
  const onKey = (event) => { if (event.key === 'Escape') focused(false); };
  fitButton.addEventListener('click', () => { if (live()) cy.fit(undefined, 24); });
  let typing = null;
  const ask = () => { asked += 1; send({ search: search.value, asked }); };
  search.addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(ask, 250); });
  search.addEventListener('keydown', (event) => {
    event.stopPropagation();  // typing here is not a notebook shortcut
    if (event.key === 'Enter') { clearTimeout(typing); ask(); }
  });
  jump.addEventListener('change', () => {
    const id = jump.value;
    jump.value = '';
    if (id) { centre(id); send({ select: id, center: true }); }
  });
  result.addEventListener('click', (event) => {
    const pick = event.target.closest('.pb-match');
    if (pick) { centre(pick.dataset.node); send({ select: pick.dataset.node, center: true }); }
  });
  model.on('change:jump', showJump);
  model.on('change:interactive', showInteractive);
  showJump();
  showInteractive();
  const showFound = (msg) => {
    result.replaceChildren();
    if (msg.line) {
      const line = document.createElement('span');
      line.className = 'pb-search-line';
      line.textContent = msg.line;
      line.style.color = msg.matches || msg.select ? '#374151' : '#b91c1c';
      result.appendChild(line);
    }
    for (const [id, text] of msg.matches || []) {
      const pick = document.createElement('button');
      pick.className = 'jupyter-button widget-button pb-match';
      pick.dataset.node = id;
      pick.textContent = text;
      pick.style.margin = '0 0 0 6px';
      result.appendChild(pick);
    }
    if (msg.more) result.appendChild(document.createTextNode(` and ${msg.more} more: type more of the name`));
    if (!msg.line && !(msg.matches || []).length) result.replaceChildren();
  };
  // The cytoscape instance of this view's graph; looked up again at each use, because the graph's view may be
  // drawn anew (JupyterLab's windowed notebook re-attaches a long notebook's outputs) and the old one is gone.
  const adopt = (instance) => {
    cy = instance;
    hasFocus = null;
    focused(false);
    if (chosen) {  // a selection made on the graph this one replaces
      const { id, centred } = chosen;
      mark(id);
      if (centred) centre(id);
    }
    cy.container().addEventListener('mousedown', () => focused(true), true);
    cy.on('tap', 'node', (event) => {
      mark(event.target.id());
      send({ select: event.target.id() });
    });
    cy.on('tap', (event) => {
      // cytoscape's polygon test counts a diamond's top and bottom corners twice when the point is exactly on
      // their column, so a click at the very centre of a gate (a whole pixel when the graph is centred) falls
      // through to the background; what is drawn under the point decides instead.
      if (event.target !== cy) return;
      const node = drawnAt(event.position);
      if (node) { mark(node.id()); send({ select: node.id() }); }
    });
  };
  const drawnAt = (p) => {
    let found = null;
    cy.nodes().forEach((n) => {
      if (n.data('band') || !n.visible()) return;
      const c = n.position();
      const dx = Math.abs(p.x - c.x) / (n.outerWidth() / 2), dy = Math.abs(p.y - c.y) / (n.outerHeight() / 2);
      const shape = n.pstyle('shape').value;
      const inside = shape === 'diamond' ? dx + dy <= 1
        : shape === 'ellipse' ? dx * dx + dy * dy <= 1 : dx <= 1 && dy <= 1;
      if (inside) found = n;  // the last drawn is on top
    });
    return found;
  };
  const live = () => {
    const cockpit = el.closest('.playbook-cockpit');
    const host = cockpit && [...cockpit.querySelectorAll('div')].find(d => d._cyreg && d._cyreg.cy);
    if (host && host._cyreg.cy !== cy) adopt(host._cyreg.cy);
    return cy;
  };
  const hook = () => {
    if (stopped) return;
    const cockpit = el.closest('.playbook-cockpit');
    const host = cockpit && [...cockpit.querySelectorAll('div')].find(d => d._cyreg && d._cyreg.cy);
    if (!host) { setTimeout(hook, 100); return; }
    adopt(host._cyreg.cy);
    cockpit.dataset.pbView = view;
    cockpitEl = cockpit;
    cockpit.addEventListener('mousedown', keepPress);
    cockpit.addEventListener('focusin', keepFocus);
    document.addEventListener('mousedown', onDocDown, true);
    document.addEventListener('keydown', onKey, true);
    model.on('msg:custom', onMsg);
    revive().then((how) => { el.dataset.pbRevived = how; }, (err) => { el.dataset.pbRevived = `error: ${err}`; });
    send({ hello: true });
    // The kernel answers each hello with `ready`. A view that hears nothing asks again every 5 s (the kernel may
    // be busy); after 25 s it says that it hears nothing: its search and jump list depend on those answers.
    let tries = 0;
    const again = setInterval(() => {
      if (heard || stopped || !interactive()) { clearInterval(again); return; }  // a saved record hears nothing
      tries += 1;
      send({ hello: true });
      if (tries >= 5) {
        el.dataset.pbDeaf = 'true';
        hint.textContent = 'no answer from the kernel to this view yet: if this stays, reload the page';
      }
    }, 5000);
  };
  // anywidget (0.11) gives a model 2 s from its creation to load its ESM; past that it marks the model's runtime
  // failed, and from then on drops every message the kernel sends to the model, while what the view sends still
  // goes out. After Run All of a big runbook the page, busy with some 700 new widgets, can take longer (seen in
  // CI: every `ready` reached the page's websocket, none reached this view). So the view hands its model's
  // messages to ipywidgets' own handler, as anywidget does once the runtime is ready, and asks the kernel for
  // the model's state again (a jump list sent meanwhile was dropped too). Returns what it did.
  const revive = async () => {
    const manager = model.widget_manager;  // `model` here is anywidget's proxy of the model
    if (!manager || !manager._models) return 'no widget manager';
    model.set('pb_probe', view);  // marks this view's model (never sent to the kernel)
    for (const id of Object.keys(manager._models)) {
      let real = null;
      try { real = await manager._models[id]; } catch (err) { continue; }
      if (!real || typeof real.get !== 'function' || real.get('pb_probe') !== view) continue;
      const own = Object.getPrototypeOf(real), base = Object.getPrototypeOf(own);
      if (!real.comm || !Object.prototype.hasOwnProperty.call(own, '_handle_comm_msg')
          || !base || typeof base._handle_comm_msg !== 'function') return 'left as it is';
      real.comm.on_msg(base._handle_comm_msg.bind(real));
      real.comm.send({ method: 'request_state' }, {});
      return 'revived';
    }
    return 'model not found';
  };
  const onMsg = (msg) => {
    if (msg.view !== view) return;
    if (msg.ready && !heard) {
      heard = true;
      el.dataset.pbHeard = 'true';
      if (el.dataset.pbDeaf) { delete el.dataset.pbDeaf; const was = hasFocus; hasFocus = null; focused(!!was); }
    }
    if (msg.ready && !el.querySelector('style')) {  // this view's panel exists: show only that one
      const style = document.createElement('style');
      style.textContent = `.playbook-cockpit[data-pb-view="${view}"] .pb-panel:not(.pb-view-${view})`
        + ' { display: none !important; }';
      el.appendChild(style);
    }
    if (msg.found && msg.asked === asked) {  // the latest search's answer; one match: marked and centred
      showFound(msg.found);
      if (msg.found.select) { mark(msg.found.select); centre(msg.found.select); }
    }
    if (msg.selected) {
      mark(msg.selected);
      if (msg.center) centre(msg.selected);
    }
  };
  let heard = false;
  hook();
  return () => {
    stopped = true;
    document.removeEventListener('mousedown', onDocDown, true);
    document.removeEventListener('keydown', onKey, true);
    if (cockpitEl) {
      cockpitEl.removeEventListener('mousedown', keepPress);
      cockpitEl.removeEventListener('focusin', keepFocus);
    }
    send({ bye: true });
  };
}
export default { render };
"""


def _iopub_unbounded() -> None:
    """Let the kernel's IOPub socket queue every message of a big graph instead of dropping past ZeroMQ's
    default high-water mark of 1000: the pauses alone were not enough when the machine was loaded (a
    1000-node graph lost all its edges). libzmq applies the new limit to the server's open connection too;
    it is set on the IOPub thread, which owns the socket."""
    from ipykernel.kernelapp import IPKernelApp

    if not IPKernelApp.initialized():
        return
    thread = getattr(IPKernelApp.instance(), "iopub_thread", None)
    if thread is not None:
        import zmq

        thread.schedule(lambda: thread.socket.setsockopt(zmq.SNDHWM, 0))


class _Pacer:
    """For a big graph, a short pause after every PACE_EVERY elements created (each one comm_open): the server
    reads the kernel's IOPub queue meanwhile. The queue's own limit is lifted too (`_iopub_unbounded`): a full
    queue drops messages, and for one lost edge the page refuses the graph's whole edge list."""

    def __init__(self, on: bool) -> None:
        self.on = on
        self.count = 0

    def __call__(self) -> None:
        if not self.on:
            return
        self.count += 1
        if self.count % PACE_EVERY == 0:
            time.sleep(PACE_PAUSE)


class ViewChannel(anywidget.AnyWidget):
    """The cockpit's per-view element (see VIEW_ESM): its own panel, and its toolbar for a big graph."""

    _esm = traitlets.Unicode(VIEW_ESM).tag(sync=True)
    jump: traitlets.List[list[str]] = traitlets.List().tag(
        sync=True
    )  # [id, text] of the failed and waiting nodes (cockpit_find)
    interactive = traitlets.Bool(True).tag(sync=True)  # False for a saved record: Fit only


class _Panel:
    """The node panel of one browser view: its own selection, comment, buttons, output and log."""

    header: widgets.HTML
    details: widgets.HTML
    attempts: widgets.HTML
    host_filter: widgets.ToggleButtons
    hosts: widgets.HTML
    host_box: widgets.VBox
    output_area: widgets.Output
    comment: widgets.Text
    buttons: dict[str, widgets.Button]
    panel_output: widgets.Output
    panel: widgets.VBox

    def __init__(self, view: str, build: Callable[[_Panel], None] | None = None) -> None:
        self.view = view
        self.selected: str | None = None
        self._build = build  # not None: the widgets are made when first asked for (see RunbookWidget._defer)

    @property
    def built(self) -> bool:
        return self.__dict__.get("_build") is None

    def __getattr__(self, name: str) -> Any:  # only for what is not there yet: a deferred panel's widgets
        build = self.__dict__.get("_build")
        if build is None or name.startswith("__"):
            raise AttributeError(name)
        self._build = None
        build(self)
        return getattr(self, name)


def _panel_field(name: str) -> Any:
    """RunbookWidget.<name> is the attribute of the panel the code at hand works on (see RunbookWidget._using)."""
    return property(
        lambda self: getattr(self._panel, name), lambda self, value: setattr(self._panel, name, value)
    )


class RunbookWidget(widgets.VBox):
    """The cockpit for one run: graph + legend + node panel. Built with `RunbookWidget(notebook_run)`."""

    # the node panel in use: the kernel's own, or the one of the browser view a click came from
    selected = _panel_field("selected")
    header = _panel_field("header")
    details = _panel_field("details")
    attempts = _panel_field("attempts")
    host_filter = _panel_field("host_filter")
    hosts = _panel_field("hosts")
    host_box = _panel_field("host_box")
    output_area = _panel_field("output_area")
    comment = _panel_field("comment")
    buttons = _panel_field("buttons")
    panel_output = _panel_field("panel_output")
    panel = _panel_field("panel")

    def __init__(self, notebook_run, **kwargs):
        kwargs.setdefault("_dom_classes", ("playbook-cockpit",))  # in the comm_open, not one message more
        super().__init__(**kwargs)
        self.notebook_run = notebook_run
        self.session = notebook_run.session
        self.runbook = self.session.runbook
        self._tasks: set = set()  # nodes started by a click, running on the kernel's event loop
        self.messages: list[str] = []  # every line shown in the panel's log (kernel-side tests read it)
        self._visual: dict[str, tuple[str, bool]] = {}
        self.graph_layout: GraphLayout = compute_layout(self.runbook)

        self.cyto = self._build_graph()
        self.nodes: dict[str, ipycytoscape.Node] = {
            n.data["id"]: n for n in self.cyto.graph.nodes if not n.data.get("band")
        }
        self.status = widgets.HTML()
        self.run_until_gate_button = widgets.Button(
            description="Run until a gate",
            icon="forward",
            button_style="primary",
            tooltip="session.run_until_gate()",
            _dom_classes=("pb-button-run-until-gate",),
        )
        self.run_until_gate_button.on_click(on_this_thread(lambda _b: self.on_run_until_gate()))
        # ipycytoscape's own CSS gives its box 400px x 100% and cytoscape measures the box once, when first
        # displayed, possibly before the widget's Layout (our height and width) reaches the DOM: a size rule
        # that is in place before the graph is attached makes the first fit right.
        self.cyto.add_class(f"pb-cyto-{self.cyto.model_id}")
        self.legend = widgets.HTML(self._size_rule() + legend_html(bool(self.graph_layout.bands)))

        self.panels: dict[str, _Panel] = {}  # one node panel per browser view (issue 13.7)
        self._panel = _Panel(KERNEL_VIEW)
        self._panel = self._build_panel(KERNEL_VIEW)  # the kernel's own (tests, and a front end without JS)
        self.panel_stack = widgets.VBox([self.panel], layout={"flex": "0 0 auto"})
        self.view_channel = ViewChannel()
        self.view_channel.on_msg(on_this_thread(self._on_view_msg))
        self.children = [
            widgets.HBox([self.run_until_gate_button, self.status], layout={"align_items": "center"}),
            self.legend,
            self.view_channel,  # this view's toolbar: Fit, search, jump list
            widgets.HBox(
                [self.cyto, self.panel_stack], layout={"width": "100%", "align_items": "flex-start"}
            ),
        ]

        self.watch_banner = widgets.HTML(_dom_classes=("pb-watch-only",))
        if self.session.watch_only:
            self._watch_only()

        self.cyto.on("node", "click", on_this_thread(self.on_node_click))
        self.session.event_listeners.append(self._on_event)
        self.session.output_listeners.append(self._on_output)
        self.session.host_listeners.append(self._on_host)
        self.refresh()

    # ------------------------------------------------------------------ one panel per browser view
    def _build_panel(self, view: str) -> _Panel:
        """A node panel of its own (selection, comment, buttons, output, log) for the browser view `view`."""
        panel = _Panel(view)
        self.panels[view] = panel
        self._fill_panel(panel)
        return panel

    def _defer(self, view: str) -> _Panel:
        """A panel made when it is first used (`_Panel.__getattr__`): the kernel's own, once a browser view has
        adopted the one on screen. Its 80 widgets would otherwise reach the page while it draws the graph."""

        def build(panel: _Panel) -> None:
            self._fill_panel(panel)
            self._in_panel(panel, self._update_panel_here)

        panel = _Panel(view, build)
        self.panels[view] = panel
        return panel

    def _fill_panel(self, panel: _Panel) -> None:
        """The widgets of `panel`; every class and layout given to the constructors, so each widget is one
        comm_open (and one for its layout and style) and nothing follows. The texts share one layout and one
        style, the buttons theirs (each is a model of its own otherwise: 20 comm_opens fewer a panel)."""
        view = panel.view
        flex = "0 0 auto"  # a flex column would squeeze the output areas to nothing
        hidden = {"display": "none"} if self.session.watch_only else {}
        flexed = widgets.Layout(flex=flex)
        text_style = HTMLStyle()
        button_layout = widgets.Layout(width="auto", **hidden)  # watch-only: hidden, all together
        button_style = widgets.ButtonStyle()
        with self._using(panel):
            self.header = widgets.HTML(
                "<i>Click a node to see what it does, its attempts and its output.</i>",
                layout=flexed,
                style=text_style,
            )
            self.details = widgets.HTML(layout=flexed, style=text_style)
            self.attempts = widgets.HTML(layout=flexed, style=text_style)
            # fleet nodes (issue 21): each host's latest state and output, filtered
            self.host_filter = widgets.ToggleButtons(
                options=[(label, value) for value, label in HOST_FILTERS.items()],
                value="all",
                style={"button_width": "auto"},
                layout={"width": "auto", "flex_flow": "row wrap"},
                _dom_classes=("pb-host-filter",),
            )
            self.host_filter.observe(
                on_this_thread(lambda _change: self._in_panel(panel, self._show_hosts)), names="value"
            )
            self.hosts = widgets.HTML(style=text_style)
            self.host_box = widgets.VBox(
                [widgets.HTML("<b>Hosts</b>", style=text_style), self.host_filter, self.hosts],
                layout={"display": "none", "flex": flex},
                _dom_classes=("pb-hosts",),
            )
            self.output_area = widgets.Output(
                layout=widgets.Layout(
                    max_height="220px",
                    min_height="24px",
                    overflow="auto",
                    border="1px solid #f3f4f6",
                    flex=flex,
                ),
                _dom_classes=("pb-node-output",),
            )
            self.comment = widgets.Text(
                placeholder="comment (recorded with the decision)",
                layout={"width": "98%", "flex": flex, **hidden},
                _dom_classes=("pb-comment",),
            )
            self.buttons = {}
            for name, description, style, icon in (
                ("run", "Run", "primary", "play"),
                ("approve", "Approve", "success", "check"),
                ("reject", "Reject", "danger", "times"),
                ("retry", "Retry", "warning", "redo"),
                ("skip", "Skip", "", "step-forward"),
                ("abort", "Abort run", "danger", "stop"),
            ):
                button = widgets.Button(
                    description=description,
                    button_style=style,
                    icon=icon,
                    disabled=True,
                    layout=button_layout,
                    style=button_style,
                    _dom_classes=(f"pb-button-{name}",),
                )
                button.on_click(self._click_handler(name, panel))
                self.buttons[name] = button
            self.panel_output = widgets.Output(
                layout=widgets.Layout(max_height="160px", overflow="auto", flex=flex),
                _dom_classes=("pb-log",),
            )
            self.panel = widgets.VBox(
                [
                    self.header,
                    widgets.HBox(list(self.buttons.values()), layout={"flex_flow": "row wrap", "flex": flex}),
                    self.comment,
                    self.details,
                    self.attempts,
                    self.host_box,
                    widgets.HTML("<b>Output</b>", layout=flexed, style=text_style),
                    self.output_area,
                    widgets.HTML("<b>Log</b>", layout=flexed, style=text_style),
                    self.panel_output,
                ],
                layout=widgets.Layout(
                    width=f"{PANEL_WIDTH}px",
                    flex="0 0 auto",
                    padding="4px 8px",
                    border="1px solid #e5e7eb",
                    overflow="auto",
                ),
                _dom_classes=("pb-panel", f"pb-view-{view}"),
            )

    @contextlib.contextmanager
    def _using(self, panel: _Panel) -> Iterator[_Panel]:
        """Run the panel code below on `panel` (the selection, comment and buttons of one browser view)."""
        before = self._panel
        self._panel = panel
        try:
            yield panel
        finally:
            self._panel = before

    def _in_panel(self, panel: _Panel, call: Callable[[], Any]) -> Any:
        with self._using(panel):
            return call()

    def _restack(self) -> None:
        """The panels in the DOM: each browser view's (every view shows only its own), or the kernel's own
        while no view has said hello (a front end that runs no JavaScript)."""
        views = [p.panel for v, p in self.panels.items() if v != KERNEL_VIEW]
        self.panel_stack.children = tuple(views) or (self.panels[KERNEL_VIEW].panel,)

    def _each_panel(self, call: Callable[[], Any]) -> None:
        for panel in list(self.panels.values()):
            if not panel.built:  # made (and brought in step) when first used
                continue
            with self._using(panel):
                call()

    def _on_view_msg(self, _channel, content: dict, _buffers) -> None:
        """A browser view speaks: it appeared (a panel of its own), went away, or a node was clicked in it."""
        view = str((content or {}).get("view") or "")
        if not view.isalnum() or len(view) > 40 or view == KERNEL_VIEW:
            return
        if content.get("bye"):
            panel = self.panels.pop(view, None)
            if panel is not None:
                self._restack()
                panel.panel.close()
            return
        panel = self.panels.get(view)
        # a new view, or one that did not hear the first `ready` and asks again: answered each time
        answer = panel is None or bool(content.get("hello"))
        if panel is None:
            if len(self.panels) > MAX_VIEWS:  # views that went away without a word (a closed browser tab)
                oldest = next(v for v in self.panels if v != KERNEL_VIEW)
                self._on_view_msg(None, {"view": oldest, "bye": True}, None)
            if len(self.panels) == 1:
                # The first view adopts the panel on screen, with what was clicked or typed in it already
                # (nothing in the page is replaced), and the kernel gets a new one of its own, not shown.
                panel = self.panels.pop(KERNEL_VIEW)
                panel.view = view
                panel.panel.add_class(f"pb-view-{view}")
                self.panels[view] = panel
                self._panel = self._defer(KERNEL_VIEW)
                if panel.selected in self.nodes:  # marked in this view's graph only, from now on
                    self.nodes[panel.selected].classes = ""
                    self.view_channel.send({"view": view, "selected": panel.selected})
            else:
                panel = self._build_panel(view)
                self._restack()
                with self._using(panel):
                    self._update_panel_here()
        if answer:
            self.view_channel.send({"view": view, "ready": True})
        if "search" in content:
            # One message: the view marks and centres the match itself (a reply to an older search, overtaken
            # by the typing, is ignored there), before the panel's widgets follow.
            found = search_reply(self.runbook, str(content.get("search") or "")[:200])
            self.view_channel.send({"view": view, "found": found, "asked": content.get("asked")})
            node_id = found.get("select")
            if node_id:
                with self._using(panel):
                    self.select(node_id)
            return
        node_id = content.get("select")
        if node_id in self.nodes:
            with self._using(panel):
                self.select(node_id)
            if content.get("center"):  # picked from the jump list or a search's list: marked and centred
                self.view_channel.send({"view": view, "selected": node_id, "center": True})

    # ------------------------------------------------------------------ a saved record (issue 13.6)
    def show_as_record(self) -> None:
        """The final graph of a finished headless run, saved as widget state in its executed notebook: no
        action buttons (nothing can drive a finished run from its record), a line saying what it is, and
        no node panel (its content comes from the kernel): a click on a node shows its recorded details and
        attempts as a tooltip that JupyterLab draws from the saved state alone."""
        for control in (self.run_until_gate_button, self.panel_stack):
            control.layout.display = "none"
        self.view_channel.interactive = False  # Fit stays; search and the jump list need the kernel
        for node_id, element in self.nodes.items():
            record = (
                '<div class="pb-record-tip" style="background:#fff;color:#111827;padding:6px;max-width:420px">'
                + self._details_html(node_id)
                + self._attempts_html(node_id)
                + "</div>"
            )
            element.data = {**element.data, "record": record.replace("\n", " ")}
        self.cyto.tooltip_source = "record"
        self.watch_banner.value = (
            '<div style="padding:4px 8px;margin-bottom:4px;background:#f3f4f6;border:1px solid #9ca3af;'
            'border-radius:4px;color:#111827">'
            f"<b>Record</b>: run {self.session.run_id} ended {html.escape(str(self.session.status))}. "
            "This graph is read-only: click a node for what it ran and its attempts.</div>"
        )
        self.children = [self.watch_banner, *self.children]

    # ------------------------------------------------------------------ watch-only (issue 13)
    def _watch_only(self) -> None:
        """Another session drives this run: no action buttons, a line saying who drives it, and the states
        followed live from the record (polled on the kernel's event loop)."""
        self.run_until_gate_button.layout.display = "none"
        for panel in self.panels.values():
            for control in (*panel.buttons.values(), panel.comment):
                control.layout.display = "none"
        self._update_watch_banner()
        self.children = [self.watch_banner, *self.children]
        self._schedule_watch()

    def _update_watch_banner(self) -> None:
        note = self.session.owner_line() or f"run {self.session.run_id} is {self.session.status}"
        self.watch_banner.value = (
            '<div style="padding:4px 8px;margin-bottom:4px;background:#fef3c7;border:1px solid #f59e0b;'
            'border-radius:4px;color:#78350f">'
            f"<b>Watch-only</b>: run {self.session.run_id} is {html.escape(note)}. "
            "Its states follow live here; actions are off. To drive it from this notebook, take it over: "
            f"<code>open_run(..., run_id={self.session.run_id}, take_over=True)</code> in the setup cell "
            "(an event with your name).</div>"
        )

    def _schedule_watch(self) -> None:
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no kernel loop (tests call watch_tick() themselves)
        loop.call_later(WATCH_POLL, self._watch_tick_and_again)

    def _watch_tick_and_again(self) -> None:
        if self.comm is None:  # the widget was closed
            return
        with contextlib.suppress(PlaybookError):
            self.watch_tick()
        self._schedule_watch()

    def watch_tick(self) -> bool:
        """Bring a watch-only cockpit in step with the record; True when the run had moved on."""
        changed = self.session.sync()
        if changed:
            self._visual.clear()
            self.refresh()
        self._update_watch_banner()
        return changed

    # ------------------------------------------------------------------ building
    def _size_rule(self) -> str:
        return (
            f"<style>.pb-cyto-{self.cyto.model_id} {{ height: {self.graph_layout.widget_height}px !important; "
            f"width: {self.cyto.layout.width} !important; }}</style>"
        )

    def _build_graph(self) -> ipycytoscape.CytoscapeWidget:
        big = len(self.runbook.nodes) >= BIG_GRAPH
        # Every option goes in the constructor, so the widget's comm_open (and its layout's) carries it: set
        # afterwards, each would be one more message (13 of them).
        cyto = ipycytoscape.CytoscapeWidget(
            layout=widgets.Layout(
                height=f"{self.graph_layout.widget_height}px",  # before display: cytoscape needs a box
                # The graph's width does not depend on the panel being attached: cytoscape measures its box once,
                # when it is first displayed (a flex width would still be the whole row then, and the fit would
                # be off).
                width=f"calc(100% - {PANEL_WIDTH + 12}px)",
                min_width="360px",
                flex="0 0 auto",
            ),
            min_zoom=0.1,
            max_zoom=3.0,
            wheel_sensitivity=0.3,
            auto_unselectify=True,  # selection is ours (class `selected-node`), not cytoscape's
            auto_ungrabify=True,  # nodes stay where the layered layout put them
            tooltip_source="no-tooltip",  # a click opens the panel, not a tooltip over the graph
            # The wheel scrolls the notebook over the graph; each view turns zooming on while its graph has focus
            # (VIEW_ESM): a 200-node graph is taller than the page, and a wheel that zooms traps the reader.
            user_zooming_enabled=False,
            # a big graph: panning and zooming move a picture, edges hidden meanwhile
            texture_on_viewport=big,
            hide_edges_on_viewport=big,
            cytoscape_style=stylesheet(),
            # what set_layout() makes of it: ipycytoscape's default updated with ours
            cytoscape_layout={"name": "cola", **self.graph_layout.cytoscape_layout()},
        )
        # Every element is a widget of its own: its whole state goes in the constructor, so its comm_open carries
        # it and nothing follows (setting data, position, grabbable or the "directed" class afterwards would be one
        # more message each: 7,000 instead of 2,500 for 1,000 nodes; with that burst some never reached the page
        # (ZeroMQ queues 1,000 IOPub messages by default, then drops) and the graph never displayed).
        nodes = []
        if big:
            _iopub_unbounded()
        pace = _Pacer(big)
        for node_id in self.runbook.nodes:
            x, y = self.graph_layout.positions[node_id]
            pace()
            nodes.append(
                ipycytoscape.Node(
                    data=self._node_data(node_id, "PENDING", False),
                    position={"x": x, "y": y},
                    grabbable=False,
                )
            )
        for band in self.graph_layout.bands:
            data = {
                "id": f"pb band {band.layer}",  # a space: never a runbook node's id
                "band": True,
                "label": band.label,
                "w": band.x1 - band.x0,
                "h": band.y1 - band.y0,
            }
            position = {"x": (band.x0 + band.x1) / 2, "y": (band.y0 + band.y1) / 2}
            nodes.append(ipycytoscape.Node(data=data, position=position, grabbable=False, selectable=False))
        edges = []
        for node_id, node in self.runbook.nodes.items():
            for dep in node.depends_on:
                data = {
                    "id": f"{dep.node}->{node_id}",
                    "source": dep.node,
                    "target": node_id,
                    "condition": str(dep.condition),
                }
                pace()
                edges.append(ipycytoscape.Edge(data=data, classes=" directed "))  # (add_edges' own class)
        # ipycytoscape's Graph keeps an adjacency dict (`_adj`, synced, read by no front end) and re-sends the whole
        # of it for each node it adds: 215 messages and 0.5 MB for the 200-node graph. Held, the graph's nodes,
        # edges and adjacency go in one message each.
        with cyto.graph.hold_sync():
            cyto.graph.add_nodes(nodes)
            cyto.graph.add_edges(edges, directed=True)
        return cyto

    def _node_data(self, node_id: str, state: str, awaiting: bool) -> dict[str, Any]:
        node = self.runbook.node(node_id)
        x, y = self.graph_layout.positions[node_id]
        critical = self.session.engine.is_critical(node_id)
        return {
            "id": node_id,
            "label": node.label,
            "type": str(node.type),
            "critical": critical,
            "state": state,
            "awaiting": awaiting,
            "x": x,  # the preset position, also in data so a test can find a node without private JS
            "y": y,
        }

    # ------------------------------------------------------------------ state -> graph
    def visual_state(self, node_id: str, ready: set[str]) -> tuple[str, bool]:
        """(state shown, awaiting a failure decision) for one node."""
        engine = self.session.engine
        state = engine.state(node_id)
        pending = engine.pending_decision(node_id)
        if state is NodeState.WAITING or pending is PendingDecision.GATE:
            return "WAITING", False
        if state is NodeState.PENDING and node_id in ready:
            return READY, False
        return str(state), pending is PendingDecision.FAILURE and self.session.status is RunState.RUNNING

    def _set_node(self, node_id: str, state: str, awaiting: bool) -> None:
        if self._visual.get(node_id) == (state, awaiting):
            return
        self._visual[node_id] = (state, awaiting)
        element = self.nodes[node_id]
        element.data = {**element.data, "state": state, "awaiting": awaiting}  # one comm message

    def refresh(self) -> None:
        """Bring the graph, the status line and the panel in step with the engine (called after each cell).
        Computing "ready" applies the skips that became certain, as `session.ready()` always does."""
        ready = set(self.session.ready()) if self.session.status is RunState.RUNNING else set()
        self._ready = ready
        for node_id in self.runbook.nodes:
            self._set_node(node_id, *self.visual_state(node_id, ready))
        self._update_jump()
        self._update_status()
        self._update_panel()

    def _update_jump(self) -> None:
        """The jump list every view shows: the failed and waiting nodes (a comm message only when it changes)."""
        targets = jump_targets(self.runbook, self._visual)
        if targets != self.view_channel.jump:
            self.view_channel.jump = targets

    def _on_event(self, event: EngineEvent) -> None:
        """Live: restyle the node an engine event is about (no session.ready() here: we are inside a flush)."""
        if event.kind is EventKind.NODE_STATE and event.node in self.nodes:
            state = str(event.state)
            pending = (event.data or {}).get("pending")
            if state == "WAITING" or pending == "gate":
                self._set_node(event.node, "WAITING", False)
            else:
                self._set_node(event.node, state, pending == "failure")
            self._update_jump()
            for panel in list(self.panels.values()):
                if event.node == panel.selected and state == "RUNNING":
                    panel.output_area.outputs = ()  # state only: clear_output() would go through capture
            if state in ("RUNNING", "OK", "NOK", "SKIPPED", "PENDING"):
                self._update_panel(live=True)  # Run is off while any node runs, on again after
        elif event.kind is EventKind.RUN_STATE:
            self._update_status()

    def _on_output(self, node_id: str, stream: str, text: str) -> None:
        for panel in list(self.panels.values()):
            if node_id != panel.selected:
                continue
            if stream == "stderr":
                panel.output_area.append_stderr(text)
            else:
                panel.output_area.append_stdout(text)

    def _update_status(self) -> None:
        session = self.session
        status = session.status
        shown, color = str(status), look(status).stroke
        if status is RunState.OK:  # "OK with 1 handled failure", in amber: the record says what happened
            handled = len(handled_failures(session.store.node_states(session.run_id)))
            shown, color = status_label(str(status), handled), look(run_look_state(status, handled)).stroke
        waiting = (
            ", ".join(f"{nid} ({kind})" for nid, kind in session.awaiting())
            if status is RunState.RUNNING
            else ""
        )
        reason = session.engine.run_reason
        self.status.value = (
            f'<span class="pb-status" data-status="{status}" style="margin-left:10px">'
            f"run {session.run_id}: <b style='color:{color}'>{html.escape(shown)}</b>"
            + (f" ({html.escape(reason)})" if reason and status is not RunState.RUNNING else "")
            + (f" · waiting for {html.escape(waiting)}" if waiting else "")
            + "</span>"
            + (
                f'<div class="pb-legal-basis" style="margin-left:10px;color:#4a5568">legal basis: '
                f"{html.escape(self.runbook.meta.legal_basis)}</div>"
                if self.runbook.meta.legal_basis
                else ""
            )
        )
        self.run_until_gate_button.disabled = status is not RunState.RUNNING or not getattr(
            self, "_ready", set()
        )

    # ------------------------------------------------------------------ the panel
    def on_node_click(self, node: dict) -> None:
        """ipycytoscape click callback: `node` is the cytoscape JSON of the clicked element."""
        node_id = (node or {}).get("data", {}).get("id")
        if len(self.panels) > 1 and self._panel.view == KERNEL_VIEW:
            return  # browser views select in their own panels (their own message says which view)
        if node_id in self.nodes:
            self.select(node_id)

    def select(self, node_id: str | None) -> None:
        """Select `node_id` in the panel in use. The kernel's own panel marks it in the graph model, which every
        view draws; a browser view's panel does not (that view marks it in its own graph)."""
        if self._panel.view == KERNEL_VIEW and len(self.panels) == 1:
            if self.selected and self.selected in self.nodes:
                self.nodes[self.selected].classes = ""
            if node_id:
                self.nodes[node_id].classes = "selected-node"
        self.selected = node_id
        self._update_panel_here()
        self._show_stored_output()

    def enabled_buttons(self, node_id: str | None = None) -> set[str]:
        """Names of the buttons valid for `node_id` (default: the selected node) in the engine's state now."""
        node_id = node_id or self.selected
        session = self.session
        if session.status is not RunState.RUNNING or session.watch_only:
            return set()
        enabled = {"abort"}  # whenever the run is RUNNING, whatever is selected
        if node_id is None:
            return enabled
        allowed = session.engine.allowed_decisions(node_id)
        busy = bool(session.abort_switch.in_flight) or any(  # a node runs now: no second Run until it ends
            state == "RUNNING" for state, _awaiting in self._visual.values()
        )
        if not busy and node_id in getattr(self, "_ready", set()) and not self.runbook.node(node_id).is_gate:
            enabled.add("run")
        for name, decision in (
            ("approve", Decision.APPROVE),
            ("reject", Decision.REJECT),
            ("retry", Decision.RETRY),
            ("skip", Decision.SKIP),
        ):
            if decision in allowed:
                enabled.add(name)
        return enabled

    def _update_panel(self, live: bool = False) -> None:
        """Every view's panel in step with the engine."""
        self._each_panel(lambda: self._update_panel_here(live))

    def _update_panel_here(self, live: bool = False) -> None:
        enabled = self.enabled_buttons()
        for name, button in self.buttons.items():
            button.disabled = name not in enabled
        node_id = self.selected
        if node_id is None:
            return
        session = self.session
        node = self.runbook.node(node_id)
        state, awaiting = self._visual.get(node_id, ("PENDING", False))
        shown = look(state)
        fill, border, text, label = shown.fill, shown.stroke, shown.text, shown.word
        critical = session.engine.is_critical(node_id)
        kind = "gate (Manual)" if node.is_gate else str(node.type)
        if not live:  # before the header: a panel whose header names a node shows that node's details
            self.details.value = self._details_html(node_id)
            self.attempts.value = self._attempts_html(node_id)
            self._show_hosts()
        self.header.value = (
            f'<div class="pb-node-header" data-node="{html.escape(node_id)}" data-state="{state}">'
            f'<span style="font-size:15px;font-weight:600">{html.escape(node.label)}</span>'
            + (f" <code>{html.escape(node_id)}</code>" if node.label != node_id else "")
            + "<br>"
            f"{html.escape(kind)}{' · <b>critical</b>' if critical else ''} · "
            f'<span style="background:{fill};color:{text};border:1px solid {border};padding:0 5px;'
            f'border-radius:3px">{html.escape(label if not awaiting else "failed, needs a decision")}</span><br>'
            f'<span class="pb-explain">{html.escape(session.explain(node_id))}</span></div>'
        )

    def _on_host(self, node_id: str, _result) -> None:
        for panel in list(self.panels.values()):
            if node_id == panel.selected:
                self._in_panel(panel, self._show_hosts)

    def _show_hosts(self) -> None:
        node_id = self.selected
        if node_id is None or not self.runbook.node(node_id).is_fleet:
            self.host_box.layout.display = "none"
            return
        self.host_box.layout.display = ""
        try:
            rows = list(self.session.store.latest_hosts(self.session.run_id, node_id).values())
        except PlaybookError as err:
            self.hosts.value = f"<i>hosts unavailable: {html.escape(str(err))}</i>"
            return
        self.hosts.value = hosts_html(rows, self.host_filter.value)

    def _details_html(self, node_id: str) -> str:
        node = self.runbook.node(node_id)
        rows: list[str] = []
        if node.description.strip():
            rows.append(f"<div>{html.escape(node.description.strip())}</div>")
        rendered = self.session.rendered(node_id)
        code = self._code_for(node_id) if node.type is NodeType.PYTHON else None
        for key, value in rendered.items():
            if key == "code" and code is not None:
                value = code
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v!r}" for k, v in value.items()) or "(none)"
            rows.append(f"<b>{html.escape(key)}</b>{_pre(str(value))}")
        if node.depends_on:
            deps = []
            for dep in node.depends_on:
                cond = "" if dep.condition is DepCondition.PLAIN else f" <i>on {dep.condition}</i>"
                deps.append(
                    f"<code>{html.escape(dep.node)}</code>{cond} ({self.session.engine.state(dep.node)})"
                )
            rows.append("<b>depends on</b>: " + ", ".join(deps))
        else:
            rows.append("<b>depends on</b>: nothing")
        if node.when:
            rows.append(f"<b>when</b>: <code>{html.escape(node.when)}</code>")
        if node.retries:
            rows.append(f"<b>automatic retries</b>: {node.retries}")
        return (
            '<div class="pb-details" style="font-size:12px;line-height:1.5">' + "<br>".join(rows) + "</div>"
        )

    def _attempts_html(self, node_id: str) -> str:
        try:
            attempts = self.session.store.attempts(self.session.run_id, node_id)
        except PlaybookError as err:
            return f"<i>attempts unavailable: {html.escape(str(err))}</i>"
        if not attempts:
            return '<div class="pb-attempts" style="font-size:12px"><b>Attempts</b>: none yet</div>'
        rows = "".join(
            f'<tr class="pb-attempt" data-attempt="{a.attempt}" data-status="{a.status}"><td {TD}>{a.attempt}</td>'
            f"<td {TD}>{a.status}</td>"
            f"<td {TD}>{'' if a.duration is None else f'{a.duration:.2f}s'}</td>"
            f"<td {TD}>{'' if a.exit_code is None else a.exit_code}</td>"
            f"<td {TD}>{html.escape(self.session.redactor.redact(a.error or ''))}</td></tr>"
            for a in attempts
        )
        return (
            '<div class="pb-attempts" style="font-size:12px"><b>Attempts</b>'
            '<table style="border-collapse:collapse;font-size:12px"><tr>'
            + "".join(f"<th {TD}>{name}</th>" for name in ("#", "status", "duration", "exit", "error"))
            + f"</tr>{rows}</table></div>"
        )

    def _show_stored_output(self) -> None:
        """The selected node's last attempt, from the index: stdout and stderr (secrets masked when stored)."""
        self.output_area.outputs = ()  # state only: clear_output() would go through capture
        if self.selected is None:
            return
        try:
            attempts = self.session.store.attempts(self.session.run_id, self.selected)
        except PlaybookError:
            return
        if not attempts:
            return
        last = attempts[-1]
        if last.stdout:
            self.output_area.append_stdout(last.stdout)
        if last.stderr:
            self.output_area.append_stderr(last.stderr)
        if not last.stdout and not last.stderr:
            self.output_area.append_stdout(f"(attempt {last.attempt}: no output)\n")

    def _code_for(self, node_id: str) -> str | None:
        """The code a Python node's Run button executes: the last code its cell ran, when NotebookRun records
        it (`cell_code` / `last_code`: {node_id: code}), else the runbook's."""
        for attr in ("cell_code", "last_code", "codes"):
            recorded = getattr(self.notebook_run, attr, None)
            if isinstance(recorded, dict) and recorded.get(node_id) is not None:
                return recorded[node_id]
        return self.runbook.node(node_id).code

    # ------------------------------------------------------------------ actions
    def say(self, line: str) -> None:
        """One line in the panel's log (inside an action it is printed into the log Output). A line of a shared
        control (Run until a gate, in the kernel's own panel) goes to every browser view's log as well."""
        self.messages.append(line)
        print(line)
        if self._panel.view == KERNEL_VIEW:
            for panel in list(self.panels.values()):
                if panel.view != KERNEL_VIEW:
                    panel.panel_output.append_stdout(line + "\n")

    @contextlib.contextmanager
    def action(self, what: str) -> Iterator[None]:
        """Every button: prints land in the panel, a PlaybookError is one line, then the cockpit refreshes.
        While it runs, NotebookRun's printer of node output is held back: the output goes to the panel's
        output area (our own listener) instead of twice."""
        listeners = self.session.output_listeners
        printer = getattr(self.notebook_run, "_print_output", None)
        held = printer is not None and printer in listeners
        if held:
            listeners.remove(printer)
        try:
            with self.panel_output:
                try:
                    yield
                except PlaybookError as err:
                    self.say(f"{what}: error: {err}")
                try:
                    self.refresh()
                    if self.selected:
                        self._show_stored_output()
                except PlaybookError as err:
                    self.say(f"{what}: error: {err}")
        finally:
            if held:
                listeners.append(printer)

    def _click_handler(self, name: str, panel: _Panel) -> Callable[[widgets.Button], None]:
        handlers = {
            "run": self.on_run,
            "approve": self.on_approve,
            "reject": self.on_reject,
            "retry": self.on_retry,
            "skip": self.on_skip,
            "abort": self.on_abort,
        }

        def handler(_button: widgets.Button) -> None:
            with self._using(panel):  # the selection and comment of the view whose button was clicked
                handlers[name]()

        return on_this_thread(handler)

    def _comment(self) -> str | None:
        text = self.comment.value.strip()
        return text or None

    def _report(self, report) -> None:
        result = report.result
        if report.ran and result is not None:
            line = f"{report.node_id}: {report.state} (attempt {report.attempt}, {result.duration:.2f}s)"
            if result.error:
                line += f" — {result.error}"
        else:
            line = f"{report.node_id}: {report.message}"
        self.say(line)

    def _refusal(self, name: str) -> str | None:
        """Why button `name` is not valid for the selected node now, as the line to say; None when it is."""
        if self.selected is None:
            return f"{name}: select a node first"
        if name not in self.enabled_buttons():
            return f"{name}: not possible for '{self.selected}' now ({self.session.explain(self.selected)})"
        return None

    def _guard(self, name: str) -> str | None:
        """The selected node if button `name` is valid for it now; else say why not (never an error)."""
        refusal = self._refusal(name)
        if refusal is not None:
            self.say(refusal)
            return None
        return self.selected

    def on_run(self) -> None:
        with self.action("run"):
            node_id = self._guard("run")
            if node_id is None:
                return
            self._start(node_id)

    def _start(self, node_id: str) -> None:
        """Run a node for a Run or Retry click: a Command or Function node as a task on the kernel's loop (its
        command runs while the kernel stays free for Abort), a Python node here, in the kernel's namespace."""
        code = self._code_for(node_id) if self.runbook.node(node_id).type is NodeType.PYTHON else None
        self.output_area.outputs = ()  # state only: clear_output() would go through capture
        if code is None and self._in_background(self._run_async(node_id, code, self._panel)):
            return
        self._report(self.session.run_node(node_id, code=code))

    def _in_background(self, coroutine) -> bool:
        """In a kernel, a Run click starts the node as a task on the kernel's event loop and returns: the
        kernel stays free to handle the next click (Abort) while the command runs. Elsewhere (no running
        loop: tests, a plain IPython), False and the caller runs it here."""
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coroutine.close()
            return False
        task = loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.refresh()
        return True

    async def _run_async(self, node_id: str, code: str | None, panel: _Panel) -> None:
        """(`panel`: the view whose click started it: its log says how it ended.)"""
        report = await self.session.run_node_async(node_id, code=code)
        with self._using(panel), self.action("run"):
            self._report(report)

    def _decide(self, name: str, decision: Decision, then: Callable[[str], None] | None = None) -> None:
        """Button `name`: record `decision` on the selected node, if valid now, before the click's `action` opens
        the panel's log, so the node's new colour is the first message the page gets (opening the log flushes the
        kernel's streams first, 4 to 5 ms here); then, in the action, say it (or why there was none, or the error)
        and call `then` with the node decided."""
        refusal = self._refusal(name)
        node_id = self.selected
        actor, comment = self.session.options.actor, self._comment()
        failed: Exception | None = None
        if refusal is None and node_id is not None:
            try:
                self.session.decide(node_id, decision, actor, comment, source="notebook")
            except Exception as err:  # raised in the action: a PlaybookError is one line, else its traceback
                failed = err
        with self.action(name):
            if failed is not None:
                raise failed
            if refusal is not None:
                self.say(refusal)
                return
            assert node_id is not None  # no refusal: a node is selected
            self.say(f"{node_id}: {decision} by {actor}" + (f" ({comment})" if comment else ""))
            self.comment.value = ""
            if then is not None:
                then(node_id)

    def on_approve(self) -> None:
        self._decide("approve", Decision.APPROVE)

    def on_reject(self) -> None:
        self._decide("reject", Decision.REJECT)

    def on_skip(self) -> None:
        self._decide("skip", Decision.SKIP)

    def on_retry(self) -> None:
        self._decide("retry", Decision.RETRY, then=self._start)

    def on_abort(self) -> None:
        with self.action("abort"):
            if self.session.status is not RunState.RUNNING:
                self.say(f"abort: run {self.session.run_id} is {self.session.status} already")
                return
            actor = self.session.options.actor
            comment = self._comment()
            self.session.abort(actor, "aborted from the widget", comment=comment)
            self.say(f"run {self.session.run_id} aborted by {actor}")
            self.comment.value = ""

    def on_run_until_gate(self) -> None:
        with self.action("run until a gate"):
            if self.session.status is not RunState.RUNNING:
                self.say(f"run {self.session.run_id} is {self.session.status}: nothing to run")
                return
            if self.session.options.parallel <= 1 and self._in_background(
                self._run_until_gate_async(self._panel)
            ):
                return
            self._ran(self.session.run_until_gate())

    async def _run_until_gate_async(self, panel: _Panel) -> None:
        session = self.session
        reports = []
        while session.status is RunState.RUNNING:
            ready = [n for n in session.ready() if session.state(n) is NodeState.PENDING]
            if not ready:
                break
            for node_id in ready:
                reports.append(await session.run_node_async(node_id))
                if session.status is not RunState.RUNNING:
                    break
        with self._using(panel), self.action("run until a gate"):
            self._ran(reports)

    def _ran(self, reports) -> None:
        for report in reports:
            self._report(report)
        waiting = ", ".join(f"{nid} ({kind})" for nid, kind in self.session.awaiting())
        tail = f"; waiting for {waiting}" if waiting else ""
        self.say(f"ran {len(reports)} node(s); run is {self.session.status}{tail}")

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.session.event_listeners.remove(self._on_event)
        with contextlib.suppress(ValueError):
            self.session.output_listeners.remove(self._on_output)
        super().close()
