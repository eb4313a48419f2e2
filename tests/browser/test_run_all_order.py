"""Run All on a runbook notebook in a real JupyterLab: playbook-nb's cell executor (labextension/src/cellExecutor.ts)
sends the cells up to the setup cell first and the node cells only once the DAG is drawn, in their order; a
failed setup cell or a kernel restart leaves the held node cells unrun; the kernel of a runbook notebook has
playbook-nb's kernel side imported before anyone presses Run All (labextension/src/kernelWarmup.ts), and no other
notebook's kernel does.
"""

from __future__ import annotations

import re

import nbformat

from playbook_nb.adapters.notebook.compile import compile_runbook, write_notebook
from playbook_nb.domain.validation import parse_runbook
from tests.browser.lab import (
    CURRENT_PANEL,
    KERNEL_TIMEOUT_MS,
    current_notebook,
    open_notebook,
    wait_for_cytoscape_canvas,
    wait_kernel_idle,
)
from tests.browser.test_cockpit import run_all

RUNBOOK = """
[runbook]
title = "Run All order"

[variables.ROUNDS]
type = "int"
default = 2

[first]
type = "Command"
command_name = "echo first {{ ROUNDS }}"

[second]
type = "Command"
command_name = "echo second"
depends_on = ["first"]

[third]
type = "Command"
command_name = "echo third"
depends_on = ["first"]

[fourth]
type = "Command"
command_name = "echo fourth"
depends_on = ["second", "third"]
"""
NODES = ("first", "second", "third", "fourth")

# Every cell of the current notebook, in document order: whether it is a code cell, its prompt, how many outputs it
# shows and their text.
CELLS = (
    """() => {
    const panel = """
    + CURRENT_PANEL
    + """;
    return [...panel.querySelectorAll('.jp-Cell')].map((cell, index) => ({
        index,
        code: cell.classList.contains('jp-CodeCell'),
        prompt: (cell.querySelector('.jp-InputPrompt') || {}).textContent || '',
        outputs: cell.querySelectorAll('.jp-OutputArea-output').length,
        text: (cell.querySelector('.jp-OutputArea') || {}).textContent || '',
    }));
}"""
)

# Installed before JupyterLab loads: counts the execute requests the page sends the kernel (JupyterLab 4 speaks
# the v1 binary websocket protocol; a frame's header, with msg_type, is JSON text inside it).
COUNT_EXECUTE_REQUESTS = """
(() => {
  const send = WebSocket.prototype.send;
  const dec = new TextDecoder();
  window.__pbExecuteRequests = 0;
  WebSocket.prototype.send = function (data) {
    const text = typeof data === 'string' ? data : dec.decode(data instanceof ArrayBuffer ? data : data.buffer || data);
    if (/"msg_type":\\s*"execute_request"/.test(text)) window.__pbExecuteRequests++;
    return send.call(this, data);
  };
})();
"""

# From the next Run All on: the moment the cockpit's canvas first exists, what every code cell's prompt and output
# count were then, and how many execute requests had been sent since (sampled each animation frame and on every
# DOM change).
WATCH_FIRST_DRAW = (
    """() => {
    const panel = """
    + CURRENT_PANEL
    + """;
    window.__pbFirstDraw = null;
    window.__pbExecuteRequests = 0;
    const look = () => {
        if (window.__pbFirstDraw) return;
        if (!panel.querySelector('.jp-OutputArea-output canvas')) return;
        window.__pbFirstDraw = {
            sent: window.__pbExecuteRequests,
            cells: [...panel.querySelectorAll('.jp-Cell')].map(cell => ({
                prompt: (cell.querySelector('.jp-InputPrompt') || {}).textContent || '',
                outputs: cell.querySelectorAll('.jp-OutputArea-output').length,
            })),
        };
    };
    new MutationObserver(look).observe(panel, {subtree: true, childList: true});
    const frame = () => { look(); if (!window.__pbFirstDraw) requestAnimationFrame(frame); };
    requestAnimationFrame(frame);
}"""
)


def runbook_notebook(
    lab_root, name: str, db_path, params_extra: str = "", first_cell: str | None = None
) -> str:
    nb = compile_runbook(parse_runbook(RUNBOOK))
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    params.source += f"\nstate_path = {str(db_path)!r}\nactor = 'order-test'\n{params_extra}"
    if first_cell is not None:
        nb.cells.insert(0, nbformat.v4.new_code_cell(first_cell))
    write_notebook(nb, lab_root / name)
    return name


def roles(lab_root, name: str) -> list[str | None]:
    """The compiled role of each cell of notebook `name` (None for a cell the test added)."""
    nb = nbformat.read(str(lab_root / name), as_version=4)
    return [c.metadata.get("playbook_nb", {}).get("role") for c in nb.cells]


def open_and_run_all(lab_server, page, name: str) -> tuple[list[int], int]:
    """Open notebook `name` and press Run All; the indexes of its node cells, and of its setup cell."""
    cell_roles = roles(lab_server.root_dir, name)
    open_notebook(page, lab_server.base_url, lab_server.token, name)
    run_all(page)
    return [i for i, r in enumerate(cell_roles) if r == "node"], cell_roles.index("setup")


def count(prompt: str) -> int | None:
    match = re.fullmatch(r"\[(\d+)\]:?", prompt.strip())
    return int(match.group(1)) if match else None


def test_run_all_draws_the_dag_first_then_runs_every_node_cell_in_order(lab_server, page, tmp_path):
    name = runbook_notebook(lab_server.root_dir, "order.ipynb", tmp_path / "runs.db")
    page.context.add_init_script(COUNT_EXECUTE_REQUESTS)
    cell_roles = roles(lab_server.root_dir, name)
    nodes = [i for i, r in enumerate(cell_roles) if r == "node"]
    open_notebook(page, lab_server.base_url, lab_server.token, name)
    page.evaluate(WATCH_FIRST_DRAW)
    run_all(page)
    wait_for_cytoscape_canvas(page)
    wait_kernel_idle(page)

    first_draw = page.evaluate("() => window.__pbFirstDraw")
    assert first_draw, "the cockpit's canvas was never seen"
    # When the DAG first appears, only the cells up to the setup cell have been sent (parameters, runbook source,
    # setup: JupyterLab's own executor has sent all 8 by then); every node cell shows it is queued ("[*]") and
    # none has printed anything.
    assert first_draw["sent"] == 3, first_draw["sent"]
    at_draw = first_draw["cells"]
    assert all("[*]" in at_draw[i]["prompt"] for i in nodes), [at_draw[i] for i in nodes]
    assert [at_draw[i]["outputs"] for i in nodes] == [0] * len(nodes)

    cells = page.evaluate(CELLS)
    counts = [count(cells[i]["prompt"]) for i in nodes]
    assert None not in counts, [cells[i]["prompt"] for i in nodes]
    assert counts == sorted(counts) and len(set(counts)) == len(counts), counts  # the document's order
    assert count(cells[cell_roles.index("setup")]["prompt"]) < counts[0]
    for node_id, i in zip(NODES, nodes, strict=True):
        assert node_id in cells[i]["text"], cells[i]["text"]
    assert not any("[*]" in c["prompt"] for c in cells if c["code"])


def test_a_failing_setup_cell_leaves_every_node_cell_unrun(lab_server, page, tmp_path):
    # the setup cell refuses the parameter (papermill passes text; this is not a mapping) and fails
    name = runbook_notebook(
        lab_server.root_dir, "order_bad.ipynb", tmp_path / "runs.db", 'approvals = "everything"\n'
    )
    nodes, setup_at = open_and_run_all(lab_server, page, name)
    wait_kernel_idle(page)
    cells = page.evaluate(CELLS)
    setup = cells[setup_at]
    assert "parameter approvals" in setup["text"], setup["text"]
    for i in nodes:  # never sent: no count, no "[*]" left behind, no output
        assert cells[i]["prompt"].strip() in ("[ ]:", "[ ]", ""), cells[i]
        assert cells[i]["outputs"] == 0, cells[i]


def test_a_kernel_restart_drops_the_node_cells_still_waiting(lab_server, page, tmp_path):
    # the parameters cell takes its time, so the node cells are still held when the kernel restarts
    name = runbook_notebook(
        lab_server.root_dir, "order_restart.ipynb", tmp_path / "runs.db", "import time; time.sleep(6)\n"
    )
    nodes, _ = open_and_run_all(lab_server, page, name)
    sessions = lab_server.api("GET", "/api/sessions") or []
    (kernel,) = [s["kernel"] for s in sessions if s.get("path") == name]
    assert kernel["execution_state"] == "busy", kernel  # still in the parameters cell's sleep
    # Kernel > Restart Kernel..., then the dialog's Restart, as a user does
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Kernel$")).click()
    page.locator(".lm-Menu-item:not(.lm-mod-disabled)", has_text=re.compile(r"^Restart Kernel")).first.click()
    page.locator(".jp-Dialog button.jp-mod-accept").click()
    page.wait_for_timeout(1_000)
    wait_kernel_idle(page)
    page.wait_for_timeout(8_000)  # longer than the sleep: a cell sent to the new kernel would have run by now
    wait_kernel_idle(page)
    cells = page.evaluate(CELLS)
    for i in nodes:
        assert count(cells[i]["prompt"]) is None and "[*]" not in cells[i]["prompt"], cells[i]
        assert cells[i]["outputs"] == 0, cells[i]


def test_only_a_runbook_notebook_kernel_is_warmed_with_playbook_nb(lab_server, page, tmp_path):
    probe = "import sys; print('kernel side loaded:', 'playbook_nb.kernel_ext' in sys.modules)"
    runbook = runbook_notebook(lab_server.root_dir, "warm.ipynb", tmp_path / "runs.db", first_cell=probe)
    plain = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(probe)])
    plain.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(plain, str(lab_server.root_dir / "plain_probe.ipynb"))

    for name, loaded in ((runbook, True), ("plain_probe.ipynb", False)):
        open_notebook(page, lab_server.base_url, lab_server.token, name)
        current_notebook(page).locator(".jp-CodeCell").first.click()
        page.keyboard.press("Shift+Enter")
        page.wait_for_function(  # its output, and its count (the reply comes after the output)
            "() => { const p = " + CURRENT_PANEL + "; const c = p && p.querySelector('.jp-CodeCell');"
            " const o = c && c.querySelector('.jp-OutputArea'), n = c && c.querySelector('.jp-InputPrompt');"
            " return !!o && o.textContent.includes('kernel side loaded') && /\\[\\d+\\]/.test(n.textContent); }",
            timeout=KERNEL_TIMEOUT_MS,
        )
        first = page.evaluate(CELLS)[0]
        assert f"kernel side loaded: {loaded}" in first["text"], (name, first)
        assert count(first["prompt"]) == 1, (name, first)  # the warm-up took no execution count
