"""Notifications (issue 16.5): a real run tells a JSON webhook and a Slack-compatible webhook, both local HTTP
servers this test starts; a failing target is retried a bounded number of times and never fails or blocks
the run; no secret value appears in any message or log line."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import db_rows, run_cli, write_runbook

from playbook_nb.app.notify import Notifications, NotifySettings, RunFacts
from playbook_nb.domain.engine import EngineEvent
from playbook_nb.domain.redact import Redactor

SECRET = "hunter2-secret-77"

BOOK = """
[probe]
type = "Command"
command_name = "echo probing with $TOKEN; exit 3"

[gate]
type = "Manual"
prompt_after = "Deploy with token {{ TOKEN }}?"
depends_on = ["probe"]

[ship]
type = "Command"
command_name = "echo shipped"
depends_on = ["gate"]
"""
VARIABLES = "TOKEN = { secret = true }\n"


class Hooks:
    """A local HTTP server recording every POST; `fail_first` answers 500 to the first N requests of a path."""

    def __init__(self, fail_first: dict[str, int] | None = None):
        self.bodies: dict[str, list] = {}
        self.fail_first = dict(fail_first or {})
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hooks.bodies.setdefault(self.path, []).append(json.loads(body))
                if hooks.fail_first.get(self.path, 0) > 0:
                    hooks.fail_first[self.path] -= 1
                    self.send_response(500)
                else:
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks():
    server = Hooks(fail_first={"/flaky/T000/secret-path": 2})
    yield server
    server.close()


def test_a_run_tells_a_webhook_and_a_slack_channel_with_retries_and_no_secret(tmp_path, hooks):
    config = tmp_path / "team.toml"
    config.write_text(
        "[notify]\n"
        'link = "https://hub.example.com/user/oncall"\n'
        "retries = 2\n"
        f'webhook = "{hooks.url}/flaky/T000/secret-path"\n'
        f'slack = {{ url = "{hooks.url}/slack/T000/B000", channel = "#ops" }}\n'
    )
    book = write_runbook(tmp_path, "notified", "Notified deploy", BOOK, VARIABLES)
    db = tmp_path / "runs.db"
    result = run_cli(
        "run", str(book), "--approve", "gate", "--var", f"TOKEN={SECRET}", "--state-path", str(db),
        env={"PLAYBOOK_CONFIG": str(config), "PLAYBOOK_LOG_LEVEL": "DEBUG"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr  # a handled failure: OK
    (run,) = db_rows(db, "SELECT id FROM runs")

    webhook = hooks.bodies["/flaky/T000/secret-path"]
    # the first message failed twice (HTTP 500) and was delivered at the third attempt
    assert [m["event"] for m in webhook] == ["node_failed"] * 3 + ["gate_waiting", "run_finished"]
    failed, waiting, finished = webhook[2], webhook[3], webhook[4]
    assert (failed["node"], failed["state"], failed["run_id"]) == ("probe", "SKIPPED", run["id"])
    assert failed["summary"].endswith(
        "'probe' failed (exit code 3); skipped by policy (non-critical failure)"
    )
    assert waiting["node"] == "gate" and waiting["state"] == "WAITING"
    assert waiting["waiting_for"] == "approval of gate 'gate': Deploy with token ********?"
    assert waiting["approve"] == f"playbook-nb approve {run['id']} gate"
    assert waiting["link"] == f"https://hub.example.com/user/oncall/playbook-nb/api/runs/{run['id']}/report"
    assert finished["state"] == "OK" and finished["title"] == "Notified deploy"

    slack = hooks.bodies["/slack/T000/B000"]
    assert len(slack) == 3 and all(m["channel"] == "#ops" for m in slack)
    assert slack[1]["text"].startswith(f"*Run {run['id']} 'Notified deploy' waits for approval at 'gate'*")

    everything = json.dumps(hooks.bodies) + result.stdout + result.stderr
    assert SECRET not in everything
    assert "secret-path" not in result.stderr  # the log shows the target's host, not its secret path
    assert "not delivered (attempt 1 of 3)" in result.stderr


def test_a_dead_target_never_fails_or_blocks_the_run(caplog):
    class Dead:
        def __init__(self):
            self.calls = 0

        def send(self, message):
            self.calls += 1
            raise OSError(f"connection refused while sending {message['summary']}")

    dead = Dead()
    notes = Notifications(
        NotifySettings(retries=3, flush=2.0, targets={"dead": {}}),
        RunFacts(7, 1, "Deploy", "Deploy web", "alice", {"gate": f"token {SECRET}"}),
        Redactor([SECRET]),
        notifiers={"dead": dead},
        sleep=lambda s: None,
    )
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="playbook_nb.notify"):
        notes.on_event(EngineEvent("node_state", "gate", None, "WAITING", None, {"pending": "gate"}))
        notes.on_event(EngineEvent("run_state", None, None, "ABORTED", "no decision"))
        assert time.monotonic() - started < 0.5  # handing over a message never waits for its delivery
        notes.close()
    assert dead.calls == 8  # two messages, 1 + 3 retries each, then given up
    assert "giving up" in caplog.text and SECRET not in caplog.text
    assert notes.sent == []


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the socket is closed


CRITICAL_BOOK = """
[probe]
type = "Command"
command_name = "echo probing with $TOKEN; exit 3"
critical = true
"""


def test_a_headless_run_says_on_stderr_and_in_its_record_what_it_could_not_deliver(tmp_path, hooks):
    """Headless, the notifications go from the kernel, whose log reaches at most a file: what could not be
    delivered is on record (an event) and the CLI says it on stderr; the run's outcome is its own."""
    config, port = tmp_path / "team.toml", closed_port()
    config.write_text(
        "[notify]\nretries = 1\n"
        f'webhook = "{hooks.url}/hooks/good"\n'
        f'slack = "http://127.0.0.1:{port}/services/T000/secret-path"\n'
    )
    book = write_runbook(tmp_path, "critical", "Critical probe", CRITICAL_BOOK, VARIABLES)
    db = tmp_path / "runs.db"
    result = run_cli(
        "run", str(book), "--headless", "--vars-env", "PB_", "--state-path", str(db),
        env={"PLAYBOOK_CONFIG": str(config), "PB_TOKEN": SECRET},
    )  # fmt: skip
    assert result.returncode == 1, (
        result.stdout + result.stderr
    )  # NOK at its critical node, not at a notifier
    (run,) = db_rows(db, "SELECT id FROM runs")
    assert [m["event"] for m in hooks.bodies["/hooks/good"]] == ["node_failed", "run_finished"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: notifier slack")]
    assert warnings == [
        f"warning: notifier slack: {event} of run {run['id']} not delivered after 2 attempts: "
        f"http://127.0.0.1:{port}/… unreachable: [Errno 111] Connection refused"
        for event in ("node_failed", "run_finished")
    ]
    recorded = db_rows(
        db, "SELECT payload FROM events WHERE run_id = ? AND kind = 'notify_failed'", (run["id"],)
    )
    assert [json.loads(r["payload"])["event"] for r in recorded] == ["node_failed", "run_finished"]
    everything = json.dumps(hooks.bodies) + result.stdout + result.stderr + str([dict(r) for r in recorded])
    assert SECRET not in everything and "secret-path" not in everything
    assert run_cli("verify", str(run["id"]), "--state-path", str(db)).returncode == 0  # the chain holds


def test_a_hanging_target_holds_the_end_of_a_run_only_for_the_flush_and_is_on_record():
    release = threading.Event()

    class Hanging:
        def send(self, message):
            release.wait(10)

    notes = Notifications(
        NotifySettings(retries=0, flush=0.3, targets={"hanging": {}}),
        RunFacts(7, 1, "Deploy", "Deploy web", "alice", {}),
        Redactor([SECRET]),
        notifiers={"hanging": Hanging()},
    )
    notes.on_event(EngineEvent("run_state", None, None, "NOK", "failed"))
    notes.on_event(EngineEvent("run_state", None, None, "ABORTED", "again"))
    started = time.monotonic()
    notes.close()
    assert time.monotonic() - started < 1.0
    release.set()
    assert notes.problems() == [
        {"target": "hanging", "messages": 2, "error": "still being sent when the run ended (0.3 s waited)"}
    ]


def test_an_unknown_notifier_is_one_line_naming_the_notify_entry_and_nothing_runs(tmp_path):
    config = tmp_path / "team.toml"
    config.write_text('[notify]\nteams = "https://example.com/hook"\n')
    book = write_runbook(tmp_path, "critical", "Critical probe", CRITICAL_BOOK, VARIABLES)
    db = tmp_path / "runs.db"
    result = run_cli(
        "run", str(book), "--headless", "--vars-env", "PB_", "--state-path", str(db),
        env={"PLAYBOOK_CONFIG": str(config), "PB_TOKEN": SECRET},
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "[notify] teams: unknown notifier 'teams' (known: slack, webhook)" in result.stderr.strip()
    assert "Traceback" not in result.stderr and not db_rows(db, "SELECT id FROM runs WHERE status = 'OK'")
