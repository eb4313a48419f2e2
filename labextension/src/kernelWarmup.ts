// A runbook notebook's kernel imports playbook-nb's kernel side as soon as it is ready, before anyone presses
// Run All: the setup cell then finds the modules loaded (about 0.2 s of imports) and the DAG is drawn sooner.
// The request is silent (no output, no history, no execution count), binds no name in the user's namespace and
// never stops the cells queued after it, whatever its outcome (a kernel without playbook-nb just says no).
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { isRunbookNotebook } from './runbookNotebook';

const WARMUP_CODE = "__import__('playbook_nb.kernel_ext')";

// Every kernel of the notebook is warmed once, when it is first idle: the first one, a restarted one, a new one.
function watch(panel: NotebookPanel): void {
  const session = panel.sessionContext;
  let due = true;
  const maybeWarm = () => {
    const kernel = session.session?.kernel;
    if (due && kernel?.status === 'idle' && isRunbookNotebook(panel.model)) {
      due = false;
      kernel
        .requestExecute(
          { code: WARMUP_CODE, silent: true, store_history: false, allow_stdin: false, stop_on_error: false },
          true
        )
        .done.catch(() => undefined);
    }
  };
  session.kernelChanged.connect(() => {
    due = true;
    maybeWarm();
  });
  session.statusChanged.connect((_, status) => {
    if (status === 'restarting' || status === 'autorestarting' || status === 'starting') {
      due = true;
    } else if (status === 'idle') {
      maybeWarm();
    }
  });
  void session.ready.then(maybeWarm, () => undefined);
}

export function warmRunbookKernels(tracker: INotebookTracker): void {
  tracker.forEach(watch);
  tracker.widgetAdded.connect((_, panel) => watch(panel));
}
