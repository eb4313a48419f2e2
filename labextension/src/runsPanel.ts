// The "Runbook runs" side panel: the runs of the index the server uses (GET runs), newest first, with
// status colours and handled-failure marks, filters, and actions. It refreshes every few seconds while a
// listed run is RUNNING, and rarely otherwise.
import { Widget } from '@lumino/widgets';

import { IRun, IRunFilter, listRuns, me, resumeNotebook } from './api';
import { runbookIcon } from './runbookNotebook';
import { element } from './dom';

const LIVE_MS = 2000; // while a listed run is RUNNING
const IDLE_MS = 10000; // a new run shows within this
const STATUSES = ['', 'RUNNING', 'OK', 'NOK', 'ABORTED'];

export interface IRunActions {
  openReport(run: IRun): void;
  openNotebook(run: IRun): void;
  /** The directory the file browser shows: where a resume notebook is written. */
  directory(): string;
  /** Open a notebook of the contents (the resume notebook) in the main area. */
  openPath(path: string): Promise<void>;
}

/** A refused answer in one line: "409: run 3 is OK: only an ABORTED run can be resumed". */
function oneLine(err: unknown): string {
  return String((err as Error).message ?? err).replace(/\s+/g, ' ').trim();
}

function when(iso: string | null): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  return `${date.toLocaleDateString()} ${date.toLocaleTimeString()}`;
}

export class RunsPanel extends Widget {
  private _workflow = element('select', { className: 'pb-RunsPanel-workflowFilter', title: 'Workflow' });
  private _status = element('select', { className: 'pb-RunsPanel-statusFilter', title: 'Status' });
  private _mine = element('input', { type: 'checkbox', className: 'pb-RunsPanel-mine' });
  private _list = element('ul', { className: 'pb-RunsPanel-list' });
  private _message = element('div', { className: 'pb-RunsPanel-message' });
  // the answer to the last action (Resume): kept across refreshes, replaced by the next action
  private _notice = element('div', { className: 'pb-RunsPanel-notice' });
  private _timer: number | undefined;
  private _workflows = new Set<string>();
  private _actor: Promise<string> | null = null;
  private _refreshing = false;

  constructor(private _actions: IRunActions) {
    super();
    this.id = 'playbook-nb-runs';
    this.addClass('pb-RunsPanel');
    this.title.icon = runbookIcon;
    this.title.caption = 'Runbook runs';
    this._workflow.append(element('option', { value: '', textContent: 'All workflows' }));
    for (const status of STATUSES) {
      this._status.append(element('option', { value: status, textContent: status || 'All statuses' }));
    }
    const refresh = element('button', {
      className: 'jp-Button jp-mod-minimal pb-RunsPanel-refresh',
      title: 'Refresh',
      textContent: '⟳'
    });
    refresh.onclick = () => void this.refresh();
    for (const control of [this._workflow, this._status, this._mine]) {
      control.onchange = () => void this.refresh();
    }
    this.node.append(
      element('div', { className: 'pb-RunsPanel-header' }, element('h2', { textContent: 'Runbook runs' }), refresh),
      element(
        'div',
        { className: 'pb-RunsPanel-filters' },
        this._workflow,
        this._status,
        element('label', { className: 'pb-RunsPanel-mineLabel' }, this._mine, 'Mine')
      ),
      this._notice,
      this._message,
      this._list
    );
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  protected onBeforeHide(): void {
    this._schedule(undefined);
  }

  dispose(): void {
    this._schedule(undefined);
    super.dispose();
  }

  private async _filter(): Promise<IRunFilter> {
    const filter: IRunFilter = { limit: 100 };
    if (this._workflow.value) {
      filter.workflow = this._workflow.value;
    }
    if (this._status.value) {
      filter.status = this._status.value;
    }
    if (this._mine.checked) {
      this._actor = this._actor ?? me();
      filter.actor = await this._actor;
    }
    return filter;
  }

  async refresh(): Promise<void> {
    if (this._refreshing || this.isDisposed) {
      return;
    }
    this._refreshing = true;
    let live = false;
    try {
      const runs = await listRuns(await this._filter());
      this._render(runs);
      live = runs.some(run => run.status === 'RUNNING');
      this._message.textContent = runs.length ? '' : 'No runs match.';
    } catch (err) {
      this._message.textContent = `Cannot list runs: ${(err as Error).message}`;
    } finally {
      this._refreshing = false;
    }
    this.node.dataset.live = String(live);
    if (this.isVisible) {
      this._schedule(live ? LIVE_MS : IDLE_MS);
    }
  }

  /** Resume: the server writes (or finds) the notebook set to resume the run, Lab opens it; the user runs it
   * and decides in its cockpit. A refusal (not ABORTED, driven by a live session) is one line here. */
  async resume(run: IRun): Promise<void> {
    this._notice.className = 'pb-RunsPanel-notice';
    this._notice.textContent = `Resuming run ${run.id}…`;
    try {
      const path = await resumeNotebook(run.id, this._actions.directory());
      await this._actions.openPath(path);
      this._notice.textContent = `Opened ${path}: run it (Run All) to resume run ${run.id}; its gates wait for you in the cockpit.`;
      this._notice.classList.add('pb-mod-ok');
    } catch (err) {
      this._notice.textContent = `Cannot resume run ${run.id}: ${oneLine(err)}`;
      this._notice.classList.add('pb-mod-refused');
    }
  }

  private _schedule(ms: number | undefined): void {
    window.clearTimeout(this._timer);
    this._timer = ms === undefined ? undefined : window.setTimeout(() => void this.refresh(), ms);
  }

  private _render(runs: IRun[]): void {
    for (const run of runs) {
      if (!this._workflows.has(run.workflow)) {
        this._workflows.add(run.workflow);
        this._workflow.append(element('option', { value: run.workflow, textContent: run.title || run.workflow }));
      }
    }
    this._list.replaceChildren(...runs.map(run => this._row(run)));
  }

  private _row(run: IRun): HTMLLIElement {
    const badge = element('span', { className: 'pb-RunsPanel-status', textContent: run.status });
    badge.style.background = run.colour.fill;
    badge.style.borderColor = run.colour.stroke;
    const title = element('span', { className: 'pb-RunsPanel-title', textContent: `${run.title} #${run.number}` });
    const head = element('div', { className: 'pb-RunsPanel-head' }, badge, title);
    if (run.handled_failures.length) {
      const mark = element('span', {
        className: 'pb-RunsPanel-handled',
        textContent: `⚠ ${run.handled_failures.length} handled`,
        title: `${run.status_label}: ${run.handled_failures.join(', ')}`
      });
      head.append(mark);
    }
    const meta = element('div', {
      className: 'pb-RunsPanel-meta',
      textContent: [`run ${run.id}`, when(run.started_at), run.actor, run.trigger, run.owner_note]
        .filter(Boolean)
        .join(' · ')
    });
    const report = element('button', { className: 'jp-Button pb-RunsPanel-report', textContent: 'Report' });
    report.onclick = () => this._actions.openReport(run);
    const actions = element('div', { className: 'pb-RunsPanel-actions' }, report);
    if (run.filed_notebook) {
      const notebook = element('button', { className: 'jp-Button pb-RunsPanel-notebook', textContent: 'Notebook' });
      notebook.onclick = () => this._actions.openNotebook(run);
      actions.append(notebook);
    }
    if (run.status === 'ABORTED' || run.status === 'RUNNING') {
      const resume = element('button', {
        className: 'jp-Button pb-RunsPanel-resume',
        textContent: 'Resume',
        title: 'Open a notebook that resumes this run (refused while another session drives it)'
      });
      resume.onclick = () => void this.resume(run);
      actions.append(resume);
    }
    const row = element('li', { className: 'pb-RunsPanel-run', title: run.status_label }, head, meta, actions);
    row.dataset.runId = String(run.id);
    row.dataset.status = run.status;
    row.style.borderLeftColor = run.colour.stroke;
    return row;
  }
}
