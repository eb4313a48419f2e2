// The notebook cell executor: a runbook notebook's DAG is drawn before its node cells are sent.
//
// JupyterLab's Run All asks for every cell's execution in one task. For a 200-node runbook (405 cells) that is
// about half a second of the page's time before it handles the kernel's first message, and then the replies of
// 200 node cells compete with the cockpit's first render. On a runbook notebook (metadata "playbook_nb") this
// executor sends the cells in their order, as JupyterLab would, but holds the cells after the setup cell (the one
// that shows the cockpit) until that cell has run and its graph is on the page; the rest then go out in batches.
// Every other notebook's cells go straight to JupyterLab's own runCell.
//
// A batch is sent only once the previous one has been answered, all "ok": a kernel aborts the requests queued
// when a cell fails (stop_on_error) but runs those that arrive after, so a later send must never follow a failure.
// A failed, cancelled or interrupted cell, or a kernel restart, drops the held cells: they never run, as the
// requests JupyterLab would have queued would have been aborted.
import { ISessionContext } from '@jupyterlab/apputils';
import { Cell, CodeCell, ICodeCellModel } from '@jupyterlab/cells';
import { INotebookCellExecutor, INotebookModel, runCell } from '@jupyterlab/notebook';

import { isRunbookNotebook, RUNBOOK_METADATA_KEY } from './runbookNotebook';

type RunOptions = INotebookCellExecutor.IRunCellOptions;

const SETUP_ROLE = 'setup';
// Code cells a batch: the first batch after the graph 25 (about 60 ms of the page's time to send, so the page
// answers a click soon after the graph appears), each next one twice the last, up to 200: a 1,000-node runbook's
// cells all ran in 25 s in batches of 25, 20 s in batches of 100, 21 s so, 22 s with JupyterLab's own executor.
const FIRST_BATCH = 25;
const LARGEST_BATCH = 200;
const WIDGET_MIME = 'application/vnd.jupyter.widget-view+json';
const WIDGET_LOADING = 'Loading widget...'; // what @jupyter-widgets/jupyterlab-manager shows until a view renders
const GRAPH = '[class*="pb-cyto-"]'; // the cockpit's ipycytoscape view (playbook_nb/kernel_ext/widget.py)
const COCKPIT = '.playbook-cockpit';
const HEARD = '[data-pb-heard="true"]'; // set by the cockpit's view when the kernel has answered its hello
// the longest the held cells wait for the setup cell's graph (a page in a hidden tab draws nothing)
const DRAWN_TIMEOUT_MS = 3000;
const DRAWN_POLL_MS = 20;

interface IHeld {
  options: RunOptions;
  marked: boolean;
  resolve: (ran: boolean) => void;
  reject: (reason: unknown) => void;
}

function role(cell: Cell): string | undefined {
  const meta = cell.model.getMetadata(RUNBOOK_METADATA_KEY) as { role?: string } | undefined;
  return meta?.role;
}

// The setup cell counts as drawn once the cockpit's graph (the element of class pb-cyto-<model id>) holds a
// canvas and the cockpit's view has heard the kernel; when its outputs hold no cockpit (the variables form, a
// refusal), once every widget view among them has rendered; at the latest after DRAWN_TIMEOUT_MS.
function drawn(cell: Cell): Promise<void> {
  if (!(cell instanceof CodeCell)) {
    return Promise.resolve();
  }
  const outputs = cell.model.outputs;
  let widget = false;
  for (let i = 0; i < outputs.length; i++) {
    widget = widget || WIDGET_MIME in outputs.get(i).data;
  }
  if (!widget) {
    return Promise.resolve();
  }
  const node = cell.outputArea.node;
  const shown = () => {
    const cockpit = node.querySelector(COCKPIT);
    if (cockpit || node.querySelector(GRAPH)) {
      // its graph has a canvas, and its view has heard the kernel's answer to its hello: ipykernel 7.4 can
      // publish a cell's "idle" under the previous cell's id when a widget message on a subshell interleaves
      // with the cells (seen in CI), and JupyterLab's execution indicator then stays busy for good
      return node.querySelector(`${GRAPH} canvas`) !== null && (!cockpit || node.querySelector(HEARD) !== null);
    }
    // no cockpit: done once every widget view has rendered
    return !Array.from(node.querySelectorAll('.jp-OutputArea-output')).some(
      out => out.childElementCount === 0 && out.textContent === WIDGET_LOADING
    );
  };
  const start = performance.now();
  return new Promise(resolve => {
    const check = () => {
      const done =
        cell.isDisposed || shown() || performance.now() - start > DRAWN_TIMEOUT_MS;
      if (!done) {
        setTimeout(check, DRAWN_POLL_MS);
        return;
      }
      // one frame for cytoscape to paint before the next batch takes the page; a timer for a hidden tab
      let settled = false;
      const finish = () => {
        if (!settled) {
          settled = true;
          resolve();
        }
      };
      requestAnimationFrame(() => setTimeout(finish, 0));
      setTimeout(finish, 100);
    };
    check();
  });
}

// One shared-model transaction for them all: one a cell costs about half a millisecond of the page's time.
function setQueued(items: IHeld[], queued: boolean): void {
  const live = items.filter(item => !item.options.cell.isDisposed);
  if (!live.length) {
    return;
  }
  live[0].options.notebook.sharedModel.transact(() => {
    for (const item of live) {
      item.marked = queued;
      (item.options.cell.model as ICodeCellModel).executionState = queued ? 'running' : 'idle';
    }
  }, false);
}

class RunbookQueue {
  private held: IHeld[] = [];
  private sending = false;
  private scheduled = false;
  private batch = FIRST_BATCH;

  constructor(session: ISessionContext | undefined) {
    // a restart or a new kernel ends what was asked of the old one
    session?.kernelChanged.connect((_, change) => {
      if (change.oldValue) {
        this.drop();
      }
    });
    session?.statusChanged.connect((_, status) => {
      if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
        this.drop();
      }
    });
    session?.disposed.connect(() => this.drop());
  }

  push(options: RunOptions): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.held.push({ options, marked: false, resolve, reject });
      if (!this.sending && role(options.cell) === SETUP_ROLE) {
        // Run All pushes the cells in order: everything up to the setup cell is here, and the kernel can start
        // on it now rather than after the page has queued the other cells and scrolled to the last one
        void this.pump();
      }
      // once Run All's loop has pushed every cell (a microtask), so that a batch sees them all
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => {
          this.scheduled = false;
          this.markQueued();
          void this.pump();
        });
      }
    });
  }

  private drop(): void {
    this.batch = FIRST_BATCH;
    const dropped = this.held.splice(0);
    setQueued(dropped.filter(item => item.marked), false);
    for (const item of dropped) {
      item.resolve(false);
    }
  }

  // A held code cell shows "[*]" as JupyterLab's queued cells do: the notebook does not look finished while
  // cells wait their turn.
  private markQueued(): void {
    const marks = this.held.filter(item => !item.marked && item.options.cell.model.type === 'code');
    setQueued(marks, true);
  }

  private async pump(): Promise<void> {
    if (this.sending) {
      return;
    }
    this.sending = true;
    try {
      while (this.held.length) {
        const { sent, setup } = this.sendBatch(); // what it leaves held, push's microtask has marked
        const results = await Promise.allSettled(sent);
        if (!results.every(r => r.status === 'fulfilled' && r.value)) {
          this.drop();
          continue;
        }
        this.batch = setup ? FIRST_BATCH : Math.min(this.batch * 2, LARGEST_BATCH);
        if (setup) {
          // marks for the browser's performance panel
          performance.mark('playbook-nb:setup-ran');
          await drawn(setup);
          performance.mark('playbook-nb:dag-drawn');
        }
      }
    } finally {
      this.sending = false;
    }
  }

  // Sends held cells in order, up to this.batch code cells, ending after a setup cell.
  private sendBatch(): { sent: Promise<boolean>[]; setup: Cell | null } {
    const sent: Promise<boolean>[] = [];
    let code = 0;
    while (this.held.length && code < this.batch) {
      const item = this.held.shift()!;
      const cell = item.options.cell;
      const ran = runCell(item.options);
      ran.then(item.resolve, item.reject);
      sent.push(ran);
      if (cell.model.type === 'code') {
        code++;
      }
      if (role(cell) === SETUP_ROLE) {
        return { sent, setup: cell };
      }
    }
    return { sent, setup: null };
  }
}

const queues = new WeakMap<INotebookModel, RunbookQueue>();

function runCellInOrder(options: RunOptions): Promise<boolean> {
  const notebook = options.notebook;
  if (!isRunbookNotebook(notebook)) {
    return runCell(options);
  }
  let queue = queues.get(notebook);
  if (!queue) {
    queue = new RunbookQueue(options.sessionContext);
    queues.set(notebook, queue);
  }
  return queue.push(options);
}

export const cellExecutor: INotebookCellExecutor = Object.freeze({ runCell: runCellInOrder });
