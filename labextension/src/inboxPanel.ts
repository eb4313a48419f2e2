// The "Waiting for me" side panel: the gates the current user may decide now, across all runs of the index
// (GET inbox), each with its prompt, what follows it, Approve / Reject and a comment (POST gates). It
// refreshes every few seconds while visible, and the status-bar badge keeps the count up to date.
import { bellIcon } from '@jupyterlab/ui-components';
import { ISignal, Signal } from '@lumino/signaling';
import { Widget } from '@lumino/widgets';

import { decideGate, IInboxGate, inbox } from './api';
import { element } from './dom';

const REFRESH_MS = 3000;

/** The refused answer of a POST in one line: "409: run 3 is OK: it no longer waits for a decision". */
function oneLine(err: unknown): string {
  return String((err as Error).message ?? err).replace(/\s+/g, ' ').trim();
}

export class InboxModel {
  private _gates: IInboxGate[] = [];
  private _error = '';
  private _changed = new Signal<this, void>(this);
  private _timer: number | undefined;
  private _busy = false;

  get gates(): IInboxGate[] {
    return this._gates;
  }

  get error(): string {
    return this._error;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  start(): void {
    void this.refresh();
  }

  async refresh(): Promise<void> {
    if (this._busy) {
      return;
    }
    this._busy = true;
    try {
      this._gates = (await inbox()).gates;
      this._error = '';
    } catch (err) {
      this._error = `Cannot read the inbox: ${oneLine(err)}`;
    } finally {
      this._busy = false;
    }
    this._changed.emit();
    window.clearTimeout(this._timer);
    this._timer = window.setTimeout(() => void this.refresh(), REFRESH_MS);
  }
}

export class InboxPanel extends Widget {
  private _list = element('ul', { className: 'pb-Inbox-list' });
  private _message = element('div', { className: 'pb-Inbox-message' });
  // the answer to the last decision, kept when its gate leaves the list (decided, or no longer waiting)
  private _notice = element('div', { className: 'pb-Inbox-notice' });

  constructor(private _model: InboxModel) {
    super();
    this.id = 'playbook-nb-inbox';
    this.addClass('pb-Inbox');
    this.title.icon = bellIcon;
    this.title.caption = 'Waiting for me';
    const refresh = element('button', {
      className: 'jp-Button jp-mod-minimal pb-Inbox-refresh',
      title: 'Refresh',
      textContent: '⟳'
    });
    refresh.onclick = () => void this._model.refresh();
    this.node.append(
      element('div', { className: 'pb-Inbox-header' }, element('h2', { textContent: 'Waiting for me' }), refresh),
      this._notice,
      this._message,
      this._list
    );
    this._model.changed.connect(() => this._render());
  }

  private _render(): void {
    const gates = this._model.gates;
    this.node.dataset.count = String(gates.length);
    this._message.textContent = this._model.error || (gates.length ? '' : 'No gate waits for you.');
    // keep the rows a user is typing in: only add and remove rows, by gate
    const wanted = new Map(gates.map(gate => [`${gate.run}/${gate.node}`, gate]));
    for (const row of Array.from(this._list.children) as HTMLLIElement[]) {
      if (!wanted.has(row.dataset.key ?? '')) {
        row.remove();
      }
    }
    const have = new Set((Array.from(this._list.children) as HTMLLIElement[]).map(row => row.dataset.key));
    for (const [key, gate] of wanted) {
      if (!have.has(key)) {
        this._list.append(this._row(key, gate));
      }
    }
  }

  private _row(key: string, gate: IInboxGate): HTMLLIElement {
    const head = element(
      'div',
      { className: 'pb-Inbox-head' },
      element('span', { className: 'pb-Inbox-node', textContent: gate.node }),
      element('span', { className: 'pb-Inbox-run', textContent: `${gate.workflow} · run ${gate.run}` })
    );
    const prompt = element('div', { className: 'pb-Inbox-prompt', textContent: gate.prompt || '(no prompt)' });
    const next = element('ul', { className: 'pb-Inbox-next' });
    for (const step of gate.next) {
      next.append(
        element(
          'li',
          {},
          element('span', { className: 'pb-Inbox-nextNode', textContent: `then ${step.node}: ` }),
          element('code', { className: 'pb-Inbox-command', textContent: step.command })
        )
      );
    }
    const comment = element('textarea', {
      className: 'pb-Inbox-comment',
      placeholder: 'Comment (recorded with the decision)',
      rows: 2
    });
    const answer = element('div', { className: 'pb-Inbox-answer' });
    const approve = element('button', { className: 'jp-Button jp-mod-accept pb-Inbox-approve', textContent: 'Approve' });
    const reject = element('button', { className: 'jp-Button jp-mod-warn pb-Inbox-reject', textContent: 'Reject' });
    const tell = (text: string, mod: string) => {
      answer.className = `pb-Inbox-answer ${mod}`;
      answer.textContent = text;
      this._notice.className = `pb-Inbox-notice ${mod}`;
      this._notice.textContent = `${gate.node} · run ${gate.run}: ${text}`;
    };
    const decide = async (decision: 'approve' | 'reject') => {
      approve.disabled = reject.disabled = true;
      answer.className = 'pb-Inbox-answer';
      answer.textContent = decision === 'approve' ? 'Approving…' : 'Rejecting…';
      try {
        const taken = await decideGate(gate.run, gate.node, decision, comment.value);
        const done = taken.applied
          ? `${decision === 'approve' ? 'Approved' : 'Rejected'} by ${taken.actor}: ${gate.node} is ${taken.state}`
          : `Sent: the run has not taken the decision yet`;
        tell(done, 'pb-mod-ok');
      } catch (err) {
        tell(oneLine(err), 'pb-mod-refused'); // 409 (decided already, run ended), 403 (not an approver)
        approve.disabled = reject.disabled = false;
      }
      void this._model.refresh();
    };
    approve.onclick = () => void decide('approve');
    reject.onclick = () => void decide('reject');
    const deadline = gate.deadline
      ? element('div', { className: 'pb-Inbox-deadline', textContent: `waits until ${gate.deadline}` })
      : '';
    const row = element(
      'li',
      { className: 'pb-Inbox-gate' },
      head,
      prompt,
      next,
      deadline,
      comment,
      element('div', { className: 'pb-Inbox-actions' }, approve, reject),
      answer
    );
    row.dataset.key = key;
    row.dataset.runId = String(gate.run);
    row.dataset.node = gate.node;
    return row;
  }
}

/** The status-bar item: "N waiting for me"; a click opens the panel. */
export class InboxBadge extends Widget {
  constructor(model: InboxModel, open: () => void) {
    super();
    this.addClass('pb-InboxBadge');
    this.node.title = 'Gates waiting for your decision (Runbooks)';
    this.node.onclick = open;
    const render = () => {
      const count = model.gates.length;
      this.node.dataset.count = String(count);
      this.node.textContent = `${count} waiting for me`;
      this.node.classList.toggle('pb-mod-waiting', count > 0);
    };
    model.changed.connect(render);
    render();
  }
}
