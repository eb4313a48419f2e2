"""REST endpoints of the Jupyter Server extension, under `<base_url>/playbook-nb/api/`.

Every handler sits behind the server's own authentication (`@web.authenticated`) and authorization
(`@authorized`, resource `playbook-nb`, action read/write from the HTTP method), so a token, a password,
JupyterHub's OAuth or a custom Authorizer decide exactly as they do for the rest of the server.

    GET runs?workflow=&status=&actor=&limit=   -> {"runs": [...]}, newest first
    GET runs/{id}                              -> run, nodes, attempts, decisions, events
    GET runs/{id}/report                       -> the HTML post-mortem (text/html)
    GET runs/{id}/notebook                     -> the run's filed (executed) notebook, nbformat JSON
    GET me                                     -> {"actor": ...}: the name this user's runs are recorded under
    GET inbox                                  -> {"actor": ..., "gates": [...]}: the gates this user may decide
                                                  now across all runs of the index ("Waiting for me")
    POST runs/{id}/gates/{node} {"decision": "approve"|"reject", "comment": "..."}
                                               -> 200 {"state": ...}: the gate's new state, once the run that
                                                  waits at it (--gate-wait) has taken the decision; 409 when the
                                                  run or gate is not waiting, 403 when the user may not decide,
                                                  400 on a malformed body, 404 for no such run or gate
    POST runbooks {"directory": "ops"}         -> 201 {"path": "ops/new_runbook.playbook.toml"}: a starter
    POST runs/{id}/resume {"directory": "ops"} -> 201 {"path": "ops/resume_run_7.ipynb"} (200 when it exists):
                                                  a notebook that resumes the run when it is run; 409 when
                                                  the run is not ABORTED or a live session drives it

A handler reads the index through `self.index.call(fn)` (one worker thread); a new endpoint is one more
`PlaybookHandler` subclass and one more line in `ROUTES`.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import ensure_async, url_path_join
from tornado import web

from playbook_nb.adapters.export.report import render_report
from playbook_nb.adapters.export.scan import count_secrets, secret_env_values
from playbook_nb.adapters.store import RUN_STATUSES, Store
from playbook_nb.app.remote_decisions import (
    DECISIONS,
    GateRefused,
    offer_decision,
    outcome,
    waiting_gates,
)
from playbook_nb.domain.errors import PlaybookError, RunNotFound
from playbook_nb.domain.redact import Redactor
from playbook_nb.faces import run_json
from playbook_nb.faces.server.identity import actor_of
from playbook_nb.faces.server.resume_notebook import notebook_name, resume_notebook, resume_refusal
from playbook_nb.faces.server.run_index import RunIndex
from playbook_nb.faces.starter import starter_runbook

AUTH_RESOURCE = "playbook-nb"
API_PREFIX = "playbook-nb/api"
MAX_LIMIT = 1000


def masked(data: Any) -> Any:
    """`data` with the secrets this server was handed masked (as it is when there are none: no copy)."""
    redactor = known_secrets()
    return redactor.redact_obj(data) if redactor else data


def known_secrets() -> Redactor:
    """Secret values this server was handed (PLAYBOOK_SECRET_*), masked once more in every answer."""
    return Redactor(secret_env_values().values())


class PlaybookHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    @property
    def index(self) -> RunIndex:
        return self.settings["playbook_nb.index"]

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(data, default=str, ensure_ascii=False))

    def run_id_or_404(self, text: str) -> int:
        if not text.isdigit():
            raise web.HTTPError(404, f"no run {text}")
        return int(text)

    async def read(self, work):
        """`work(store)` on the index thread; a missing run is 404, a bad configuration or index 500 with its
        one line (as the CLI prints it)."""
        try:
            return await self.index.call(work)
        except RunNotFound as err:
            raise web.HTTPError(404, str(err), reason=str(err)) from None
        except PlaybookError as err:
            raise web.HTTPError(500, str(err), reason=str(err).replace("\n", " ")[:200]) from None

    def query_text(self, name: str) -> str | None:
        value = self.get_query_argument(name, default="").strip()
        return value or None


class RunsHandler(PlaybookHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        workflow = self.query_text("workflow")
        actor = self.query_text("actor")
        status = (self.query_text("status") or "").upper() or None
        if status is not None and status not in RUN_STATUSES:
            raise web.HTTPError(400, f"status must be one of {', '.join(RUN_STATUSES)}")
        try:
            limit = int(self.query_text("limit") or 50)
        except ValueError:
            raise web.HTTPError(400, "limit must be a whole number") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise web.HTTPError(400, f"limit must be between 1 and {MAX_LIMIT}")

        def work(store: Store) -> list[dict[str, Any]]:
            runs = store.list_runs(workflow=workflow, status=status, actor=actor, limit=limit)
            nodes = store.node_states_of([run.id for run in runs])  # one query, not one a run
            return [run_json.run_summary(run, nodes[run.id]) for run in runs]

        runs = await self.read(work)
        self.write_json({"runs": masked(runs)})


class RunHandler(PlaybookHandler):
    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        rid = self.run_id_or_404(run_id)

        def work(store: Store) -> dict[str, Any]:
            run = store.get_run(rid)
            return run_json.run_detail(
                run,
                store.node_states(rid),
                store.attempts(rid),
                store.decisions(rid),
                store.events(rid),
                mask=known_secrets(),
            )

        self.write_json(await self.read(work))


class ReportHandler(PlaybookHandler):
    html: str | None = None

    def finish(self, *args, **kwargs):
        if self.html is None:  # errors stay JSON, as the rest of the API
            return super().finish(*args, **kwargs)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        # One self-contained file with no script: forbid any anyway, and any request out.
        self.set_header(
            "Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
        )
        return JupyterHandler.finish(self, self.html)

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        rid = self.run_id_or_404(run_id)
        redactor = known_secrets()
        html = await self.read(lambda store: render_report(store, rid, redactor))
        if count_secrets(html, redactor):  # the export's own check: never serve a known secret
            raise web.HTTPError(500, f"run {rid}: the report still holds a known secret value")
        self.html = html
        self.finish()


class NotebookHandler(PlaybookHandler):
    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        rid = self.run_id_or_404(run_id)

        def work(store: Store) -> dict[str, Any]:
            run = store.get_run(rid)
            path = run.notebook_path  # set whenever the summary says filed_notebook (an .ipynb path)
            if path is None or not run_json.run_summary(run, []).get("filed_notebook"):
                raise web.HTTPError(
                    404, f"run {rid} has no filed notebook (it ran from the {run.trigger} face)"
                )
            try:
                with store.open_artifact(path, "rb") as handle:
                    return json.loads(handle.read())
            except (OSError, ValueError, PlaybookError) as err:
                raise web.HTTPError(404, f"run {rid}: cannot read its notebook: {err}") from None

        self.write_json(masked(await self.read(work)))


def directory_of(body: dict[str, Any]) -> str:
    return str(body.get("directory") or "").strip("/")


class NewRunbookHandler(PlaybookHandler):
    """A starter runbook written through the server's contents manager (its root, its rules)."""

    @web.authenticated
    @authorized("write", resource="contents")
    async def post(self) -> None:
        body = self.get_json_body() or {}
        directory = directory_of(body)
        contents = self.contents_manager
        if directory and not await ensure_async(contents.dir_exists(directory)):
            raise web.HTTPError(404, f"no directory {directory}")
        for n in range(1, 1000):
            name = "new_runbook.playbook.toml" if n == 1 else f"new_runbook_{n}.playbook.toml"
            path = f"{directory}/{name}" if directory else name
            if not await ensure_async(contents.file_exists(path)):
                break
        else:
            raise web.HTTPError(409, f"{directory or 'the root'} has too many new_runbook files")
        text = starter_runbook("New runbook", actor_of(self.current_user, self.identity_provider), name)
        model = await ensure_async(contents.new({"type": "file", "format": "text", "content": text}, path))
        self.write_json({"path": model["path"]}, status=201)


class ResumeHandler(PlaybookHandler):
    """A notebook that resumes an ABORTED run (see resume_notebook), written through the contents manager
    where the file browser is, or the one written before for that run."""

    @web.authenticated
    @authorized("write", resource="contents")
    async def post(self, run_id: str) -> None:
        rid = self.run_id_or_404(run_id)
        body = self.get_json_body() or {}
        directory = directory_of(body)
        contents = self.contents_manager
        if directory and not await ensure_async(contents.dir_exists(directory)):
            raise web.HTTPError(404, f"no directory {directory}")

        def work(store: Store) -> dict[str, Any]:
            refusal = resume_refusal(store, rid)
            if refusal:
                raise web.HTTPError(409, refusal, reason=refusal[:200])
            return resume_notebook(store, rid)

        notebook = await self.read(work)
        path = f"{directory}/{notebook_name(rid)}" if directory else notebook_name(rid)
        if await ensure_async(contents.file_exists(path)):
            self.write_json({"path": path, "created": False})
            return
        model = {"type": "notebook", "format": "json", "content": notebook}
        saved = await ensure_async(contents.save(model, path))
        self.write_json({"path": saved["path"], "created": True}, status=201)


class MeHandler(PlaybookHandler):
    @web.authenticated
    @authorized
    def get(self) -> None:
        self.write_json({"actor": actor_of(self.current_user, self.identity_provider)})


class InboxHandler(PlaybookHandler):
    """The gates the current user may decide now, across all RUNNING runs of the index."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        actor = actor_of(self.current_user, self.identity_provider)

        def work(store: Store) -> list[dict[str, Any]]:
            return [
                {
                    "run": gate.run_id,
                    "workflow": gate.workflow,
                    "node": gate.node_id,
                    "prompt": gate.prompt,
                    "next": [{"node": node, "command": command} for node, command in gate.next_steps],
                    "deadline": gate.deadline,
                }
                for gate in waiting_gates(store, actor, self.index.groups)
            ]

        gates = await self.read(work)
        self.write_json({"actor": actor, "gates": masked(gates)})


REFUSAL_STATUS = {"not_found": 404, "conflict": 409, "forbidden": 403, "invalid": 400}
TAKE_WAIT = 15.0  # seconds a decision request waits for the run to take the decision
TAKE_POLL = 0.02  # seconds between two looks (each a few indexed reads on the index thread)


class GateHandler(PlaybookHandler):
    """A decision on a gate a run waits at (`--gate-wait`), by the server's authenticated user."""

    def decision_body(self) -> tuple[str, str | None]:
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            raise web.HTTPError(400, 'the body must be JSON: {"decision": "approve"}') from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, 'the body must be a JSON object: {"decision": "approve"}')
        decision, comment = body.get("decision"), body.get("comment")
        if decision not in DECISIONS:
            raise web.HTTPError(400, f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
        if comment is not None and not isinstance(comment, str):
            raise web.HTTPError(400, "comment must be a string")
        unknown = sorted(set(body) - {"decision", "comment"})
        if unknown:
            raise web.HTTPError(400, f"unknown field {unknown[0]!r} (expected decision, comment)")
        return decision, (comment or None)

    async def decide(self, work):
        try:
            return await self.index.call(work)
        except GateRefused as err:
            raise web.HTTPError(REFUSAL_STATUS[err.kind], str(err), reason=str(err)[:200]) from None
        except RunNotFound as err:
            raise web.HTTPError(404, str(err), reason=str(err)) from None
        except PlaybookError as err:
            raise web.HTTPError(500, str(err), reason=str(err).replace("\n", " ")[:200]) from None

    @web.authenticated
    @authorized
    async def post(self, run_id: str, node_id: str) -> None:
        rid = self.run_id_or_404(run_id)
        decision, comment = self.decision_body()
        actor = actor_of(self.current_user, self.identity_provider)
        offered = await self.decide(
            lambda store: offer_decision(
                store,
                rid,
                node_id,
                decision,
                actor=actor,
                source="server",
                comment=comment,
                groups=self.index.groups,
            )
        )
        deadline = time.monotonic() + TAKE_WAIT
        while True:
            now = await self.decide(lambda store: outcome(store, offered))
            if now.applied or now.expired or time.monotonic() >= deadline:
                break
            await asyncio.sleep(TAKE_POLL)
        if now.expired:
            raise web.HTTPError(409, f"run {rid} stopped waiting at '{node_id}' before it took the decision")
        answer = {
            "run": rid,
            "node": node_id,
            "decision": decision,
            "actor": actor,
            "source": "server",
            "applied": now.applied,  # False: accepted, the run has not taken it yet (202)
            "state": now.state,
            "run_status": now.run_status,
        }
        self.write_json(answer, status=200 if now.applied else 202)


ROUTES: list[tuple[str, type[PlaybookHandler]]] = [
    (r"runs", RunsHandler),
    (r"runs/(?P<run_id>[^/]+)", RunHandler),
    (r"runs/(?P<run_id>[^/]+)/report", ReportHandler),
    (r"runs/(?P<run_id>[^/]+)/notebook", NotebookHandler),
    (r"runs/(?P<run_id>[^/]+)/resume", ResumeHandler),
    (r"runs/(?P<run_id>[^/]+)/gates/(?P<node_id>[^/]+)", GateHandler),
    (r"runbooks", NewRunbookHandler),
    (r"me", MeHandler),
    (r"inbox", InboxHandler),
]


def setup_handlers(web_app, index: RunIndex) -> None:
    web_app.settings["playbook_nb.index"] = index
    base = url_path_join(web_app.settings["base_url"], API_PREFIX)
    web_app.add_handlers(".*$", [(url_path_join(base, pattern), handler) for pattern, handler in ROUTES])
