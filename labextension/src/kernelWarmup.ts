// A runbook notebook's kernel imports playbook-nb's kernel side as soon as it is ready, before anyone presses
// Run All: the setup cell then finds the modules loaded (about 0.2 s of imports) and the DAG is drawn sooner.
// The request is silent (no output, no history, no execution count), binds no name in the user's namespace and
// never stops the cells queued after it, whatever its outcome (a kernel without playbook-nb just says no).
import { ISessionContext } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

const METADATA_KEY = 'playbook_nb';
const WARMUP_CODE = "__import__('playbook_nb.kernel_ext')";

function warm(session: ISessionContext): void {
  const kernel = session.session?.kernel;
  if (!kernel || kernel.status === 'dead') {
    return;
  }
  kernel
    .requestExecute(
      { code: WARMUP_CODE, silent: true, store_history: false, allow_stdin: false, stop_on_error: false },
      true
    )
    .done.catch(() => undefined);
}

// Every kernel of the notebook is warmed once, when it is first idle: the first one, a restarted one, a new one.
function watch(panel: NotebookPanel): void {
  const session = panel.sessionContext;
  let due = true;
  const maybeWarm = () => {
    if (due && session.session?.kernel?.status === 'idle' && panel.model?.getMetadata(METADATA_KEY) !== undefined) {
      due = false;
      warm(session);
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
