"""POST /playbook-nb/api/runs/{id}/gates/{node} (issue 16.4), through pytest-jupyter's real in-process server.

The server's own authentication decides who may call it; an identity provider that names people (as
JupyterHub's does) says who the caller is, and that name is recorded with the decision. A headless run
started as a separate process with --gate-wait takes the API's decision and finishes OK.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from jupyter_server.auth.identity import IdentityProvider, User
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

from playbook_nb.adapters.store import Store

GATED = """
[runbook]
title = "Gated deploy"

[variables]
TOKEN = { secret = true }
ENV = { default = "prod" }

[prepare]
type = "Command"
command_name = "echo prepared"

[gate]
type = "Manual"
prompt_after = "Ship it to {{ ENV }}?"
depends_on = ["prepare"]
approvers = ["group:sre"]
four_eyes = true

[ship]
type = "Command"
command_name = "echo shipped to {{ ENV }} {{ TOKEN }}"
depends_on = ["gate"]
"""
SECRET = "tok-5ecr3t-99"


class TeamIdentity(IdentityProvider):
    """Per-person tokens, as a team's identity provider (or JupyterHub's) gives them."""

    people = {"alice-token": "alice", "bob-token": "bob"}

    async def get_user(self, handler):
        header = handler.request.headers.get("Authorization", "")
        name = self.people.get(header.removeprefix("token ").strip())
        if name:
            handler._token_authenticated = True  # a token, not a cookie: no XSRF check (as jupyter_server's)
            return User(username=name, name=name, display_name=name)
        return await super().get_user(handler)


@pytest.fixture
def jp_server_config():
    return Config(
        {
            "ServerApp": {
                "jpserver_extensions": {"playbook_nb.faces.server": True},
                "identity_provider_class": TeamIdentity,
            }
        }
    )


ALICE = {"Authorization": "token alice-token"}


async def post_gate(jp_fetch, run_id, node, body, headers=ALICE):
    return await jp_fetch(
        "playbook-nb", "api", "runs", str(run_id), "gates", node,
        method="POST", body=body if isinstance(body, str) else json.dumps(body), headers=dict(headers),
        request_timeout=60,
    )  # fmt: skip


async def refused(jp_fetch, run_id, node, body, headers=ALICE) -> tuple[int, str]:
    with pytest.raises(HTTPClientError) as err:
        await post_gate(jp_fetch, run_id, node, body, headers)
    return err.value.code, json.loads(err.value.response.body)["message"]


async def wait_for_gate(db, runner, timeout=120.0) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        assert runner.poll() is None, runner.communicate()
        if db.exists():
            try:
                with Store.open(db) as store:
                    runs = store.list_runs(status="RUNNING")
                    if runs and store.open_wait_at(runs[0].id, "gate") is not None:
                        return runs[0].id
            except Exception:  # the runner is still creating the index
                pass
        await asyncio.sleep(0.3)
    raise AssertionError("the run never waited at its gate")


async def test_an_api_decision_lets_a_waiting_headless_run_finish_ok_with_the_api_user_recorded(
    jp_fetch, http_server_client, jp_base_url, tmp_path, monkeypatch
):
    db = tmp_path / "runs.db"
    monkeypatch.setenv("PLAYBOOK_DB_PATH", str(db))
    team = tmp_path / "team.toml"
    team.write_text('[groups]\nsre = ["alice"]\n')
    monkeypatch.setenv("PLAYBOOK_CONFIG", str(team))  # the server and the waiting run read the same groups
    book = tmp_path / "gated.playbook.toml"
    book.write_text(GATED)
    env = {**os.environ, "NO_COLOR": "1", "PLAYBOOK_SECRET_TOKEN": SECRET}
    runner = subprocess.Popen(
        [sys.executable, "-m", "playbook_nb", "run", str(book), "--headless", "--gate-wait", "5m",
         "--state-path", str(db)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        run_id = await wait_for_gate(db, runner)

        # the server's own authentication: no token, a wrong token -> 403, nothing decided
        url = f"{jp_base_url}playbook-nb/api/runs/{run_id}/gates/gate"
        for headers in ({}, {"Authorization": "token wrong"}):
            with pytest.raises(HTTPClientError) as err:
                await http_server_client.fetch(
                    url, method="POST", body='{"decision": "approve"}', headers=headers
                )
            assert err.value.code == 403
        # malformed bodies -> 400; a node that is not a gate -> 400; no such node or run -> 404
        assert (await refused(jp_fetch, run_id, "gate", "not json"))[0] == 400
        assert (await refused(jp_fetch, run_id, "gate", {"decision": "maybe"})) == (
            400,
            "decision must be one of approve, reject, not 'maybe'",
        )
        assert (await refused(jp_fetch, run_id, "gate", {"decision": "approve", "comment": 5}))[0] == 400
        assert (await refused(jp_fetch, run_id, "prepare", {"decision": "approve"}))[0] == 400
        assert (await refused(jp_fetch, run_id, "nope", {"decision": "approve"}))[0] == 404
        assert (await refused(jp_fetch, 999, "gate", {"decision": "approve"}))[0] == 404
        assert (await refused(jp_fetch, run_id, "ship", {"decision": "approve"}))[0] == 400

        # "Waiting for me": the gate, its prompt, what follows it, the run and its workflow
        inbox = json.loads((await jp_fetch("playbook-nb", "api", "inbox", headers=ALICE)).body)
        assert inbox["actor"] == "alice"
        (waiting,) = inbox["gates"]
        # rendered with the run's variables, as it will run; the secret as its environment reference only
        assert (waiting["run"], waiting["node"], waiting["prompt"]) == (run_id, "gate", "Ship it to prod?")
        assert waiting["next"] == [{"node": "ship", "command": 'echo shipped to prod "$TOKEN"'}]
        assert waiting["workflow"]
        # bob is not in group sre: 403, and the gate still waits
        code, message = await refused(
            jp_fetch, run_id, "gate", {"decision": "approve"}, {"Authorization": "token bob-token"}
        )
        assert (code, message) == (403, "bob may not decide gate 'gate' (approvers: group:sre)")

        response = await post_gate(jp_fetch, run_id, "gate", {"decision": "approve", "comment": "LGTM"})
        assert response.code == 200
        answer = json.loads(response.body)
        assert (answer["state"], answer["actor"], answer["source"], answer["applied"]) == (
            "OK",
            "alice",
            "server",
            True,
        )
        # decided once: a second decision, by anyone, is a conflict
        code, message = await refused(
            jp_fetch, run_id, "gate", {"decision": "reject"}, {"Authorization": "token bob-token"}
        )
        assert code == 409  # the gate no longer waits, or the run has already ended OK
        assert "does not wait for a decision" in message or "no longer waits for a decision" in message

        loop = asyncio.get_running_loop()
        out, err = await loop.run_in_executor(None, lambda: runner.communicate(timeout=120))
        assert runner.returncode == 0, out + err
    finally:
        if runner.poll() is None:
            runner.kill()
    with Store.open(db) as store:
        run = store.get_run(run_id)
        assert run.status == "OK"
        (decision,) = store.decisions(run_id)
        assert (decision.decision, decision.actor, decision.source, decision.comment) == (
            "approve",
            "alice",
            "server",
            "LGTM",
        )
    # the finished run: 409, and the run detail shows the decision with who and where, no secret
    inbox = json.loads((await jp_fetch("playbook-nb", "api", "inbox", headers=ALICE)).body)
    assert inbox["gates"] == []  # decided and finished: nothing waits for anyone
    code, message = await refused(jp_fetch, run_id, "gate", {"decision": "reject"})
    assert code == 409 and message == f"run {run_id} is OK: it no longer waits for a decision"
    detail = (await jp_fetch("playbook-nb", "api", "runs", str(run_id), headers=ALICE)).body.decode()
    assert SECRET not in detail
    (shown,) = json.loads(detail)["decisions"]
    assert shown["actor"] == "alice" and shown["source"] == "server"
