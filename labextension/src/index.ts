// playbook-nb's JupyterLab extension: runbooks (*.playbook.toml) open as notebooks compiled on the fly by the
// server, a "New runbook" launcher card, and the "Runbook runs" side panel over the REST API.
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, IToolbarWidgetRegistry, MainAreaWidget, showErrorMessage } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import {
  INotebookCellExecutor,
  INotebookTracker,
  INotebookWidgetFactory,
  NotebookWidgetFactory
} from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { IRun, newRunbook, reportHtml } from './api';
import { cellExecutor } from './cellExecutor';
import { warmRunbookKernels } from './kernelWarmup';
import { recordPath, RunRecordDrive } from './recordDrive';
import {
  addFileTypes,
  addNotebookFactory,
  RECORD_FACTORY,
  RECORD_FILE_TYPE,
  RUNBOOK_FACTORY,
  RUNBOOK_FILE_TYPE,
  runbookIcon
} from './runbookNotebook';
import { InboxBadge, InboxModel, InboxPanel } from './inboxPanel';
import { RunsPanel } from './runsPanel';

const COMMAND_NEW = 'playbook-nb:new-runbook';
const COMMAND_OPEN = 'playbook-nb:open-runbook-notebook';
const COMMAND_RUNS = 'playbook-nb:show-runs';
const COMMAND_INBOX = 'playbook-nb:show-inbox';

const notebooks: JupyterFrontEndPlugin<void> = {
  id: 'playbook-nb:runbook-notebooks',
  description: 'Open *.playbook.toml as the notebook compiled from it; a "New runbook" launcher card.',
  autoStart: true,
  requires: [INotebookWidgetFactory, INotebookTracker, IDocumentManager],
  optional: [ILauncher, ICommandPalette, IDefaultFileBrowser, IToolbarWidgetRegistry, ISettingRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    base: NotebookWidgetFactory.IFactory,
    tracker: INotebookTracker,
    docManager: IDocumentManager,
    launcher: ILauncher | null,
    palette: ICommandPalette | null,
    browser: IDefaultFileBrowser | null,
    toolbarRegistry: IToolbarWidgetRegistry | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ) => {
    const trans = translator ?? nullTranslator;
    addFileTypes(app);
    warmRunbookKernels(tracker);
    addNotebookFactory(
      app,
      base,
      tracker,
      { name: RUNBOOK_FACTORY, label: 'Runbook notebook', fileType: RUNBOOK_FILE_TYPE, kernel: true },
      toolbarRegistry,
      settingRegistry,
      trans
    );
    addNotebookFactory(
      app,
      base,
      tracker,
      { name: RECORD_FACTORY, label: 'Runbook record', fileType: RECORD_FILE_TYPE, kernel: false },
      toolbarRegistry,
      settingRegistry,
      trans
    );
    app.serviceManager.contents.addDrive(new RunRecordDrive());

    app.commands.addCommand(COMMAND_OPEN, {
      label: 'Open as Runbook notebook',
      execute: args => docManager.openOrReveal(String(args.path), RUNBOOK_FACTORY)
    });
    app.commands.addCommand(COMMAND_NEW, {
      label: 'New runbook',
      caption: 'Write a starter runbook (.playbook.toml) here and open it in the editor',
      icon: runbookIcon,
      execute: async () => {
        try {
          const path = await newRunbook(browser?.model.path ?? '');
          await browser?.model.refresh();
          return docManager.openOrReveal(path, 'Editor');
        } catch (err) {
          void showErrorMessage('New runbook', err as Error);
        }
      }
    });
    launcher?.add({ command: COMMAND_NEW, category: 'Other', rank: 0 });
    palette?.addItem({ command: COMMAND_NEW, category: 'Runbooks' });
  }
};

class ReportView extends Widget {
  constructor(html: string) {
    super();
    this.addClass('pb-Report');
    const frame = document.createElement('iframe');
    frame.setAttribute('sandbox', ''); // the report has no script; it gets no rights either
    frame.srcdoc = html;
    this.node.appendChild(frame);
  }
}

/** A panel in the left sidebar, restored with the layout, and a palette command that shows it. */
function addSidePanel(
  app: JupyterFrontEnd,
  restorer: ILayoutRestorer | null,
  palette: ICommandPalette | null,
  panel: Widget,
  rank: number,
  command: string,
  label: string
): void {
  app.shell.add(panel, 'left', { rank });
  restorer?.add(panel, panel.id);
  app.commands.addCommand(command, { label, execute: () => app.shell.activateById(panel.id) });
  palette?.addItem({ command, category: 'Runbooks' });
}

const runs: JupyterFrontEndPlugin<void> = {
  id: 'playbook-nb:runs-panel',
  description: 'The "Runbook runs" side panel: runs of the index, filters, live refresh, report, notebook, resume.',
  autoStart: true,
  requires: [IDocumentManager],
  optional: [ILayoutRestorer, ICommandPalette, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    docManager: IDocumentManager,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    browser: IDefaultFileBrowser | null
  ) => {
    const openReport = async (run: IRun) => {
      try {
        const view = new MainAreaWidget({ content: new ReportView(await reportHtml(run.id)) });
        view.id = `playbook-nb-report-${run.id}-${Date.now()}`;
        view.title.label = `Report: ${run.title} #${run.number}`;
        view.title.icon = runbookIcon;
        view.title.closable = true;
        app.shell.add(view, 'main');
        app.shell.activateById(view.id);
      } catch (err) {
        void showErrorMessage(`Report of run ${run.id}`, err as Error);
      }
    };
    const openNotebook = (run: IRun) => {
      void docManager.openOrReveal(recordPath(run.id), RECORD_FACTORY);
    };
    const directory = () => browser?.model.path ?? '';
    const openPath = async (path: string) => {
      await browser?.model.refresh();
      const widget = docManager.openOrReveal(path);
      if (!widget) {
        throw new Error(`cannot open ${path}`);
      }
      await widget.context.ready;
    };
    const panel = new RunsPanel({ openReport, openNotebook, directory, openPath });
    addSidePanel(app, restorer, palette, panel, 600, COMMAND_RUNS, 'Runbook runs');
  }
};

const inboxPlugin: JupyterFrontEndPlugin<void> = {
  id: 'playbook-nb:inbox',
  description: 'The "Waiting for me" panel: gates the user may decide, Approve / Reject; a status-bar count.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette, IStatusBar],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    statusBar: IStatusBar | null
  ) => {
    const model = new InboxModel();
    const panel = new InboxPanel(model);
    addSidePanel(app, restorer, palette, panel, 610, COMMAND_INBOX, 'Waiting for me (gates)');
    statusBar?.registerStatusItem('playbook-nb:inbox-badge', {
      item: new InboxBadge(model, () => app.shell.activateById(panel.id)),
      align: 'left',
      rank: 50
    });
    model.start();
  }
};

// Replaces JupyterLab's own executor (disabled in package.json): see cellExecutor.ts.
const executorPlugin: JupyterFrontEndPlugin<INotebookCellExecutor> = {
  id: 'playbook-nb:cell-executor',
  description: "Runs a runbook notebook's cells once its DAG is drawn; any other notebook's as JupyterLab does.",
  autoStart: true,
  provides: INotebookCellExecutor,
  activate: () => cellExecutor
};

export default [notebooks, runs, inboxPlugin, executorPlugin];
