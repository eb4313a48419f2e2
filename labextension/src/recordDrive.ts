// A read-only drive over the filed notebooks of runs: "PlaybookRuns:playbook-run-12.ipynb" is run 12's
// executed notebook, read through the REST API (GET runs/12/notebook) from wherever the index filed it
// (the artifact directory, or a bucket). Nothing is ever written through it.
import { Contents, ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { filedNotebook } from './api';

export const RECORD_DRIVE = 'PlaybookRuns';

export function recordPath(runId: number): string {
  return `${RECORD_DRIVE}:playbook-run-${runId}.ipynb`;
}

function runIdOf(localPath: string): number {
  const match = /^playbook-run-(\d+)\.ipynb$/.exec(localPath.replace(/^\/+/, ''));
  if (!match) {
    throw new Error(`${localPath} is not a run record`);
  }
  return Number(match[1]);
}

function readOnly(what: string): Promise<never> {
  return Promise.reject(new Error(`run records are read-only: cannot ${what}`));
}

export class RunRecordDrive implements Contents.IDrive {
  readonly name = RECORD_DRIVE;
  readonly serverSettings = ServerConnection.makeSettings();
  private _fileChanged = new Signal<this, Contents.IChangedArgs>(this);
  private _isDisposed = false;

  get fileChanged(): ISignal<this, Contents.IChangedArgs> {
    return this._fileChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    this._isDisposed = true;
    Signal.clearData(this);
  }

  async get(localPath: string, options?: Contents.IFetchOptions): Promise<Contents.IModel> {
    const runId = runIdOf(localPath);
    const content = options?.content === false ? null : await filedNotebook(runId);
    const now = new Date().toISOString();
    return {
      name: localPath,
      path: localPath,
      type: 'notebook',
      format: content === null ? null : 'json',
      content,
      writable: false,
      created: now,
      last_modified: now,
      mimetype: 'application/x-ipynb+json'
    };
  }

  async getDownloadUrl(localPath: string): Promise<string> {
    return '';
  }

  newUntitled(): Promise<Contents.IModel> {
    return readOnly('create files');
  }
  delete(): Promise<void> {
    return readOnly('delete');
  }
  rename(): Promise<Contents.IModel> {
    return readOnly('rename');
  }
  save(): Promise<Contents.IModel> {
    return readOnly('save');
  }
  copy(): Promise<Contents.IModel> {
    return readOnly('copy');
  }
  async createCheckpoint(): Promise<Contents.ICheckpointModel> {
    return readOnly('create checkpoints');
  }
  async listCheckpoints(): Promise<Contents.ICheckpointModel[]> {
    return [];
  }
  restoreCheckpoint(): Promise<void> {
    return readOnly('restore checkpoints');
  }
  deleteCheckpoint(): Promise<void> {
    return readOnly('delete checkpoints');
  }
}
