// "Runbook notebook": *.playbook.toml opened as the notebook the server compiles from it on every open
// (playbook_nb/faces/server/runbook_contents.py). The panels join the notebook tracker, so Run All, the
// kernel menu and ipywidgets work on them exactly as on any notebook.
import { JupyterFrontEnd } from '@jupyterlab/application';
import { createToolbarFactory, IToolbarWidgetRegistry, IWidgetTracker } from '@jupyterlab/apputils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, NotebookPanel, NotebookWidgetFactory } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

export const RUNBOOK_FILE_TYPE = 'playbook-runbook';
// The notebook and cell metadata key of a notebook compiled from a runbook (playbook_nb/adapters/notebook/compile.py)
export const RUNBOOK_METADATA_KEY = 'playbook_nb';

export function isRunbookNotebook(model: INotebookModel | null | undefined): boolean {
  return model?.getMetadata(RUNBOOK_METADATA_KEY) !== undefined;
}
export const RUNBOOK_FACTORY = 'Runbook notebook';
export const RECORD_FILE_TYPE = 'playbook-run-record';
export const RECORD_FACTORY = 'Runbook record';

const RUNBOOK_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16">
  <g class="jp-icon-warn0" fill="#d97706"><circle cx="5" cy="6" r="3"/><circle cx="19" cy="6" r="3"/>
  <circle cx="12" cy="18" r="3"/></g>
  <g stroke="#6b7280" stroke-width="1.6" fill="none"><path d="M7 8l4 8M17 8l-4 8"/></g></svg>`;

export const runbookIcon = new LabIcon({ name: 'playbook-nb:runbook', svgstr: RUNBOOK_SVG });

export function addFileTypes(app: JupyterFrontEnd): void {
  app.docRegistry.addFileType({
    name: RUNBOOK_FILE_TYPE,
    displayName: 'Runbook',
    extensions: ['.playbook.toml'],
    mimeTypes: ['application/toml'],
    icon: runbookIcon,
    contentType: 'file',
    fileFormat: 'text'
  });
  // Filed run notebooks, served read-only by the run-record drive (recordDrive.ts).
  app.docRegistry.addFileType({
    name: RECORD_FILE_TYPE,
    displayName: 'Runbook run record',
    extensions: [],
    pattern: '^playbook-run-\\d+\\.ipynb$',
    mimeTypes: ['application/x-ipynb+json'],
    icon: runbookIcon,
    contentType: 'notebook',
    fileFormat: 'json'
  });
}

export interface IFactoryOptions {
  name: string;
  label: string;
  fileType: string;
  // A run record never starts a kernel: pressing Run All on it must not start a new run.
  kernel: boolean;
}

export function addNotebookFactory(
  app: JupyterFrontEnd,
  defaults: NotebookWidgetFactory.IFactory,
  tracker: IWidgetTracker<NotebookPanel>,
  options: IFactoryOptions,
  toolbarRegistry: IToolbarWidgetRegistry | null,
  settingRegistry: ISettingRegistry | null,
  translator: ITranslator
): NotebookWidgetFactory {
  // The token holds JupyterLab's own notebook factory: its renderers and cell factory are reused as they are.
  const base = defaults as NotebookWidgetFactory;
  const toolbarFactory =
    toolbarRegistry && settingRegistry
      ? createToolbarFactory(
          toolbarRegistry,
          settingRegistry,
          'Notebook',
          '@jupyterlab/notebook-extension:panel',
          translator
        )
      : undefined;
  const factory = new NotebookWidgetFactory({
    name: options.name,
    label: options.label,
    fileTypes: [options.fileType],
    defaultFor: [options.fileType],
    modelName: 'notebook',
    preferKernel: options.kernel,
    canStartKernel: options.kernel,
    rendermime: base.rendermime,
    contentFactory: base.contentFactory,
    editorConfig: base.editorConfig,
    notebookConfig: base.notebookConfig,
    mimeTypeService: base.mimeTypeService,
    toolbarFactory,
    translator
  });
  app.docRegistry.addWidgetFactory(factory);
  factory.widgetCreated.connect((_sender: DocumentRegistry.IWidgetFactory<NotebookPanel, any>, panel: NotebookPanel) => {
    panel.addClass(options.kernel ? 'pb-RunbookNotebook' : 'pb-RunRecord');
    panel.title.icon = runbookIcon;
    // The notebook tracker saves restore data by the panel's context path and factory name.
    panel.context.pathChanged.connect(() => void (tracker as any).save?.(panel));
    void (tracker as any).add(panel);
  });
  return factory;
}
