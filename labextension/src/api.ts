// The playbook-nb REST API of the server extension (playbook_nb/faces/server/handlers.py).
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export const API_PATH = 'playbook-nb/api';

export interface IColour {
  fill: string;
  stroke: string;
}

export interface IRun {
  id: number;
  workflow: string;
  number: number;
  title: string;
  status: string;
  status_label: string;
  reason: string | null;
  started_at: string | null;
  ended_at: string | null;
  duration: number | null;
  trigger: string;
  actor: string | null;
  mode: string;
  notebook_path: string | null;
  filed_notebook: boolean;
  handled_failures: string[];
  colour: IColour;
  orphaned: boolean;
  owner_note: string;
}

export interface IRunFilter {
  workflow?: string;
  status?: string;
  actor?: string;
  limit?: number;
}

async function request(
  path: string,
  init: RequestInit = {},
  settings = ServerConnection.makeSettings()
): Promise<Response> {
  const url = URLExt.join(settings.baseUrl, API_PATH, path);
  const response = await ServerConnection.makeRequest(url, init, settings);
  if (!response.ok) {
    let message = response.statusText;
    try {
      message = (await response.json()).message || message;
    } catch {
      // not JSON: keep the status text
    }
    throw new Error(`${response.status}: ${message}`);
  }
  return response;
}

export async function listRuns(filter: IRunFilter): Promise<IRun[]> {
  const query = Object.entries(filter)
    .filter(([, value]) => value !== undefined && value !== '')
    .map(([key, value]) => `${key}=${encodeURIComponent(String(value))}`)
    .join('&');
  const response = await request(`runs${query ? '?' + query : ''}`);
  return (await response.json()).runs as IRun[];
}

export async function reportHtml(runId: number): Promise<string> {
  return (await request(`runs/${runId}/report`)).text();
}

export async function filedNotebook(runId: number): Promise<any> {
  return (await request(`runs/${runId}/notebook`)).json();
}

/** The notebook that resumes an ABORTED run when it is run (written where the file browser is, or the one
 * written before); refused (409) when the run is not ABORTED or a live session drives it. */
export async function resumeNotebook(runId: number, directory: string): Promise<string> {
  const response = await request(`runs/${runId}/resume`, {
    method: 'POST',
    body: JSON.stringify({ directory })
  });
  return (await response.json()).path as string;
}

export async function me(): Promise<string> {
  return (await (await request('me')).json()).actor as string;
}

export async function newRunbook(directory: string): Promise<string> {
  const response = await request('runbooks', {
    method: 'POST',
    body: JSON.stringify({ directory })
  });
  return (await response.json()).path as string;
}

export interface IInboxGate {
  run: number;
  workflow: string;
  node: string;
  prompt: string;
  next: { node: string; command: string }[];
  deadline: string;
}

export async function inbox(): Promise<{ actor: string; gates: IInboxGate[] }> {
  return (await request('inbox')).json();
}

export interface IGateAnswer {
  run: number;
  node: string;
  decision: string;
  actor: string;
  applied: boolean;
  state: string;
  run_status: string;
}

export async function decideGate(
  runId: number,
  node: string,
  decision: 'approve' | 'reject',
  comment: string
): Promise<IGateAnswer> {
  const body: { decision: string; comment?: string } = { decision };
  if (comment.trim()) {
    body.comment = comment.trim();
  }
  const response = await request(`runs/${runId}/gates/${encodeURIComponent(node)}`, {
    method: 'POST',
    body: JSON.stringify(body)
  });
  return response.json();
}
