"""Fleet steps (issue 21) against a real OpenSSH server: hosts are loopback addresses served by one sshd that
the tests start with generated host and user keys (tests/sshd_server.py). No mock of ssh anywhere.

Hosts: three up, one spare (joins the inventory between a run and its resume), and a "down" address where
nothing listens. The host at 127.0.0.3 fails on purpose: the commands test `$SSH_CONNECTION` (set by sshd).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import run_cli
from sshd_server import sshd_available, sshd_fleet

from playbook_nb.adapters.executors.fleet import run_fleet
from playbook_nb.adapters.executors.local import LocalExecutor
from playbook_nb.adapters.executors.ssh import SshOptions
from playbook_nb.domain.fleet import (
    HostResult,
    HostState,
    TargetError,
    parse_target,
    parse_targets,
    plan_hosts,
    roll_up,
    split_hosts,
)

needs_sshd = pytest.mark.skipif(
    not sshd_available() and not os.environ.get("CI"), reason="openssh-server not installed"
)
FAIL_ON_3 = 'case "$SSH_CONNECTION" in *" 127.0.0.3 "*) echo "disk full on $PLAYBOOK_HOST" >&2; exit 3;; esac'


@pytest.fixture(scope="module")
def fleet():
    with sshd_fleet(3, spare=1) as running:
        yield running


def options(fleet) -> SshOptions:
    return SshOptions(
        identity_files=[str(fleet.user_key)],
        known_hosts=str(fleet.known_hosts),
        agent=False,
        connect_timeout=3,
    )


def address(host: str) -> str:
    """The loopback address of a fleet host ("127.0.0.4:40022" -> "127.0.0.4"), as $SSH_CONNECTION names it."""
    return parse_target(host).address


def remote_alive(marker: str) -> bool:
    return subprocess.run(["pgrep", "-f", marker], capture_output=True).returncode == 0


def wait_gone(marker: str, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not remote_alive(marker):
            return True
        time.sleep(0.05)
    return False


# ---- the pure rules -------------------------------------------------------------------------------


def test_targets_parse_users_ports_and_lists():
    assert parse_target("deploy@web1:2222") == parse_target("deploy@web1:2222")
    target = parse_target("deploy@web1:2222")
    assert (target.user, target.address, target.port) == ("deploy", "web1", 2222)
    assert parse_target("[::1]:22").address == "::1"
    assert split_hosts('["a", "b"]') == ["a", "b"]
    assert split_hosts("['a', 'b']") == ["a", "b"]  # a step output rendered as a Python list
    assert split_hosts("web1\n# old: web9\nweb2, web3\n") == ["web1", "web2", "web3"]
    with pytest.raises(TargetError, match="listed twice"):
        parse_targets(["a", "a"])
    with pytest.raises(TargetError, match=r"'web 1' is not a host"):
        parse_target("web 1")
    with pytest.raises(TargetError, match="outside 1..65535"):
        parse_target("web1:70000")


def test_plan_runs_only_hosts_not_ok_and_marks_membership():
    assert plan_hosts(["a", "b"], {}).run == ["a", "b"]
    plan = plan_hosts(["a", "b", "d"], {"a": "OK", "b": "NOK", "c": "SKIPPED"})
    assert (plan.run, plan.done, plan.added, plan.removed) == (["b", "d"], ["a"], ["d"], ["c"])


def test_roll_up_is_ok_only_when_every_host_is():
    ok = roll_up([HostResult("a", HostState.OK)], done=["b"])
    assert ok.ok and ok.counts == {"OK": 2}
    bad = roll_up(
        [HostResult("a", HostState.NOK), HostResult("b", HostState.SKIPPED), HostResult("c", HostState.OK)],
        max_fail=1,
    )
    assert not bad.ok
    assert bad.error == "1 of 3 hosts failed (a); 1 not started after 1 failures (max_fail)"


# ---- the SSH executor -----------------------------------------------------------------------------


@needs_sshd
def test_each_host_reports_its_own_outcome(fleet):
    down = fleet.down_host()
    seen: list[tuple[str, str]] = []
    result = run_fleet(
        f'echo "up on $PLAYBOOK_HOST"; {FAIL_ON_3}',
        parse_targets([*fleet.hosts, down]),
        batch=4,
        options=options(fleet),
        on_host=lambda h: seen.append((h.host, str(h.state))),
    )
    states = {h.host: (str(h.state), h.exit_code) for h in result.hosts}
    h1, h2, h3 = fleet.hosts
    assert states == {h1: ("OK", 0), h2: ("NOK", 3), h3: ("OK", 0), down: ("NOK", None)}
    by_host = {h.host: h for h in result.hosts}
    assert by_host[h1].stdout == f"up on {h1}\n"
    assert "disk full" in by_host[h2].stdout  # a pty merges the streams
    assert by_host[down].error.startswith("unreachable:") and "refused" in by_host[down].error
    assert not result.ok and result.error == f"2 of 4 hosts failed ({h2}, {down})"
    assert {(h, s) for h, s in seen if s == "RUNNING"} == {(h, "RUNNING") for h in states}


@needs_sshd
def test_batch_bounds_hosts_at_a_time_and_max_fail_stops_new_starts(fleet):
    result = run_fleet("sleep 0.3", parse_targets(fleet.hosts), batch=1, options=options(fleet))
    spans = sorted((h.started_at, h.ended_at) for h in result.hosts)
    assert result.ok and all(spans[i][1] <= spans[i + 1][0] + 0.01 for i in range(len(spans) - 1))

    h1, h2, h3 = fleet.hosts
    stopped = run_fleet(FAIL_ON_3, parse_targets([h2, h1, h3]), batch=1, max_fail=1, options=options(fleet))
    assert [(h.host, str(h.state)) for h in stopped.hosts] == [(h2, "NOK"), (h1, "SKIPPED"), (h3, "SKIPPED")]
    assert stopped.error == f"1 of 3 hosts failed ({h2}); 2 not started after 1 failures (max_fail)"


@needs_sshd
def test_unknown_host_key_is_refused_not_accepted(fleet, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    opts = options(fleet)
    opts.known_hosts = str(empty)
    result = run_fleet("true", parse_targets(fleet.hosts[:1]), batch=1, options=opts)
    host = result.hosts[0]
    assert host.state is HostState.NOK and "not trusted" in host.error and str(empty) in host.error


@needs_sshd
def test_per_host_timeout_hangs_up_the_remote_command(fleet):
    marker = "sleep 137.25"
    result = run_fleet(marker, parse_targets(fleet.hosts[:1]), batch=1, timeout=1, options=options(fleet))
    assert result.hosts[0].state is HostState.NOK and result.hosts[0].error.startswith(
        "timed out after 1 seconds"
    )
    assert wait_gone(marker), "the remote command outlived its closed connection"


@needs_sshd
def test_remote_command_dies_with_a_killed_driver(fleet, tmp_path):
    marker = "sleep 138.5"
    script = tmp_path / "driver.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from playbook_nb.adapters.executors.fleet import run_fleet
            from playbook_nb.adapters.executors.ssh import SshOptions
            from playbook_nb.domain.fleet import parse_targets
            opts = SshOptions(identity_files=[{str(fleet.user_key)!r}], known_hosts={str(fleet.known_hosts)!r},
                              agent=False)
            run_fleet({marker!r}, parse_targets({fleet.hosts[:2]!r}), batch=2, options=opts)
            """
        )
    )
    driver = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 15
        while not remote_alive(marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert remote_alive(marker), "the remote command never started"
        time.sleep(0.3)
        driver.send_signal(signal.SIGKILL)  # no chance to clean up: the kernel closes its sockets
        driver.wait(10)
        assert wait_gone(marker), "the remote command outlived its killed driver"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()


@needs_sshd
def test_secrets_reach_the_host_environment_never_an_argument_list(fleet):
    secret = "tok-5d1e8b2f-never-in-argv"
    found_in_argv: list[str] = []

    def scan(_host: HostResult) -> None:
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if secret.encode() in cmdline:
                    found_in_argv.append(cmdline.decode(errors="replace"))

    result = run_fleet(
        'sleep 0.5; echo "token has ${#API_TOKEN} chars"',
        parse_targets(fleet.hosts[:1]),
        batch=1,
        options=options(fleet),
        env={"API_TOKEN": secret},
        on_host=scan,  # called when the host starts (its command is running) and when it ends
    )
    assert result.ok and result.hosts[0].stdout == f"token has {len(secret)} chars\n"
    time.sleep(0.2)
    scan(result.hosts[0])
    assert found_in_argv == []


# ---- runs: the terminal face, the record, resume ---------------------------------------------------


def write_runbook(tmp_path: Path, fleet, *, body: str) -> Path:
    path = tmp_path / "fleet.playbook.toml"
    ssh = (
        f'ssh = {{ identity_file = "{fleet.user_key}", known_hosts = "{fleet.known_hosts}", agent = false }}'
    )
    path.write_text(
        textwrap.dedent(
            """
            [runbook]
            title = "Restart the fleet"

            [variables]
            API_TOKEN = { secret = true, required = true }
            """
        )
        + textwrap.dedent(body).replace("@SSH_OPTIONS@", ssh)
    )
    return path


@needs_sshd
def test_terminal_run_records_a_row_per_host_and_faces_show_them(fleet, tmp_path, state_db):
    hosts, broken = tmp_path / "hosts.txt", tmp_path / "broken"
    down = fleet.down_host()
    hosts.write_text("\n".join([*fleet.hosts, down]) + "\n")
    broken.write_text("")
    runbook = write_runbook(
        tmp_path,
        fleet,
        body=f"""
        [restart]
        type = "Command"
        command_name = 'echo "restarted with $API_TOKEN"; case "$SSH_CONNECTION" in *" 127.0.0.3 "*) test ! -e {broken} || exit 3;; esac'
        targets = {{ file = "hosts.txt" }}
        batch = 2
        @SSH_OPTIONS@

        [after]
        type = "Command"
        command_name = "echo after"
        """,
    )
    secret_env = {"PB_API_TOKEN": "s3cret-fleet-token"}  # a secret's non-argv way in: the environment
    result = run_cli("run", str(runbook), "--vars-env", "PB_", "--state-path", str(state_db), env=secret_env)
    h1, h2, h3 = fleet.hosts
    assert result.returncode == 0, result.stderr  # non-critical: skipped by policy, the run goes on
    assert f"✘ {h2} NOK" in result.stdout and f"✔ {h1} OK" in result.stdout, result.stdout
    assert "4/4 hosts done: 2 OK, 2 NOK; failing: " in result.stdout
    assert "s3cret-fleet-token" not in result.stdout

    from playbook_nb.adapters.store import Store

    with Store.open(state_db) as store:
        run = store.list_runs()[0]
        states = {n.node_id: n.state for n in store.node_states(run.id)}
        assert states == {"restart": "SKIPPED", "after": "OK"}
        rows = store.host_results(run.id, "restart")
        assert [(r.host, r.state, r.exit_code) for r in rows] == [
            (h1, "OK", 0),
            (h2, "NOK", 3),
            (h3, "OK", 0),
            (down, "NOK", None),
        ]
        assert rows[0].stdout == "restarted with ********\n"  # masked in the record
        assert rows[0].duration is not None and rows[0].duration > 0
        (attempt,) = store.attempts(run.id, "restart")
        assert attempt.error == f"2 of 4 hosts failed ({h2}, {down})"

    broken.unlink()
    hosts.write_text("\n".join(fleet.hosts) + "\n")
    again = run_cli("run", str(runbook), "--vars-env", "PB_", "--state-path", str(state_db), env=secret_env)
    assert again.returncode == 0 and "3/3 hosts done: 3 OK" in again.stdout, again.stdout
    diff = run_cli("runs", "diff", "1", "2", "--state-path", str(state_db))
    assert diff.returncode == 0, diff.stderr
    assert "hosts of restart that changed" in diff.stdout
    lines = {line.split()[1]: line for line in diff.stdout.splitlines() if line.startswith("│ 127.0.0.")}
    assert set(lines) == {h2, down} and "NOK (exit 3)" in lines[h2] and "OK (exit 0)" in lines[h2]
    assert "absent" in lines[down]

    html = tmp_path / "report.html"
    export = run_cli("export", "1", "--html", str(html), "--state-path", str(state_db))
    assert export.returncode == 0, export.stderr
    text = html.read_text()
    assert text.count('class="host-row"') == 4
    assert f'data-host="{h2}" data-state="NOK"' in text and "hosts: 2 NOK, 2 OK" in text
    assert "s3cret-fleet-token" not in text


@needs_sshd
def test_retry_runs_only_failed_hosts_and_resume_sees_added_and_removed(fleet, tmp_path, state_db):
    """A failure, an abort, a changed inventory, a resume and a Retry: hosts OK are never run twice."""
    from playbook_nb.adapters.store import Store
    from playbook_nb.app.inputs import load_runbook
    from playbook_nb.app.session import RunOptions, RunSession

    h1, h2, h3 = fleet.hosts
    (spare,) = fleet.spare
    hosts, log = tmp_path / "hosts.txt", tmp_path / "log"
    log.mkdir()
    hosts.write_text(f"{h1}\n{h2}\n{h3}\n")
    broken = tmp_path / "broken"
    broken.write_text("")
    runbook_path = write_runbook(
        tmp_path,
        fleet,
        body=f"""
        [restart]
        type = "Command"
        command_name = 'echo run >> {log}/"$PLAYBOOK_HOST"; case "$SSH_CONNECTION" in *" 127.0.0.3 "*) test ! -e {broken};; esac'
        targets = {{ file = "hosts.txt" }}
        @SSH_OPTIONS@
        """,
    )
    runbook = load_runbook(runbook_path)
    options = RunOptions(headless=False, trigger="terminal", actor="alice")
    with Store.open(state_db) as store:
        session = RunSession.start(
            runbook, {"API_TOKEN": "s3cret-fleet-token"}, store, options, executor=LocalExecutor()
        )
        report = session.run_node("restart")
        assert str(report.state) == "NOK" and session.awaiting() == [("restart", "failure")]
        session.abort("alice", "stop: investigate the disk")
        run_id = session.run_id

        broken.unlink()  # fixed on the host
        hosts.write_text(f"{h1}\n{h2}\n{spare}\n")  # h3 left the fleet, the spare joined
        resumed = RunSession.resume(
            runbook, {"API_TOKEN": "s3cret-fleet-token"}, store, run_id, options, executor=LocalExecutor()
        )
        resumed.decide("restart", "retry", "alice")
        report = resumed.run_node("restart")
        assert str(report.state) == "OK", report.message
        resumed.close()

        second = [
            (r.host, r.state, r.membership) for r in store.host_results(run_id, "restart") if r.attempt == 2
        ]
        assert second == [(h2, "OK", None), (spare, "OK", "ADDED"), (h3, "REMOVED", "REMOVED")]
        latest = {h: r.state for h, r in store.latest_hosts(run_id, "restart").items()}
        assert latest == {h1: "OK", h2: "OK", h3: "REMOVED", spare: "OK"}
        assert store.get_run(run_id).status == "OK"
    runs = {p.name: p.read_text().count("run") for p in log.iterdir()}
    assert runs == {h1: 1, h2: 2, h3: 1, spare: 1}


@needs_sshd
def test_a_runner_killed_mid_batch_resumes_only_the_hosts_not_yet_ok(fleet, tmp_path, state_db):
    """SIGKILL of a terminal run while the second batch runs: the first batch's hosts are OK in the record;
    a plain resume recovers the orphaned run and runs only the hosts not yet OK; no host ends twice."""
    from playbook_nb.adapters.store import Store

    h1, h2, h3 = fleet.hosts
    (spare,) = fleet.spare
    log, slow = tmp_path / "log", tmp_path / "slow"
    log.mkdir()
    slow.write_text("")
    runbook = write_runbook(
        tmp_path,
        fleet,
        body=f"""
        [restart]
        type = "Command"
        command_name = 'echo start >> {log}/"$PLAYBOOK_HOST"; echo $$ > {log}/"$PLAYBOOK_HOST".pid; case "$SSH_CONNECTION" in *" {address(h3)} "*|*" {address(spare)} "*) while test -e {slow}; do sleep 0.1; done;; esac; echo end >> {log}/"$PLAYBOOK_HOST"'
        targets = {json.dumps([h1, h2, h3, spare])}
        batch = 2
        @SSH_OPTIONS@

        [after]
        type = "Command"
        command_name = "echo after"
        """,
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "PB_API_TOKEN": "s3cret-fleet-token"}
    args = ["run", str(runbook), "--vars-env", "PB_", "--state-path", str(state_db)]
    runner = subprocess.Popen(
        [sys.executable, "-m", "playbook_nb", *args], env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def ok_rows() -> list[str]:
        if not state_db.exists():
            return []
        with Store.open(state_db) as store:
            runs = store.list_runs()
            rows = store.host_results(runs[0].id, "restart") if runs else []
        return sorted(r.host for r in rows if r.state == "OK")

    def started(host: str) -> int:
        path = log / host
        return path.read_text().count("start") if path.exists() else 0

    try:
        deadline = time.monotonic() + 60
        while not (ok_rows() == [h1, h2] and started(h3) and started(spare)):
            assert time.monotonic() < deadline, f"the second batch never started: {ok_rows()}"
            assert runner.poll() is None, "the runner ended before it was killed"
            time.sleep(0.1)
        runner.send_signal(signal.SIGKILL)  # mid-batch: h3 and the spare are running
        runner.wait(10)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    for host in (h3, spare):  # their remote shells hung up with the killed runner's connections
        pid = int((log / f"{host}.pid").read_text())
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists():
            assert time.monotonic() < deadline, f"the command on {host} outlived the killed runner"
            time.sleep(0.05)
    slow.unlink()
    with Store.open(state_db) as store:
        assert store.list_runs()[0].status == "RUNNING"  # orphaned: nobody could record an end

    resumed = run_cli(
        "resume", str(runbook), "1", "--vars-env", "PB_", "--state-path", str(state_db), env=env
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    with Store.open(state_db) as store:
        run = store.get_run(1)
        assert run.status == "OK"
        assert {n.node_id: n.state for n in store.node_states(1)} == {"restart": "OK", "after": "OK"}
        attempts = [(a.attempt, a.status) for a in store.attempts(1, "restart")]
        assert attempts == [(1, "INTERRUPTED"), (2, "OK")]
        second = sorted(r.host for r in store.host_results(1, "restart") if r.attempt == 2)
        assert second == [h3, spare]  # only the hosts not yet OK
        latest = {h: r.state for h, r in store.latest_hosts(1, "restart").items()}
        assert latest == {h1: "OK", h2: "OK", h3: "OK", spare: "OK"}
    ran = {host: (started(host), (log / host).read_text().count("end")) for host in (h1, h2, h3, spare)}
    assert ran == {h1: (1, 1), h2: (1, 1), h3: (2, 1), spare: (2, 1)}  # killed once, ended once


@needs_sshd
def test_skip_after_failure_marks_the_failed_hosts_skipped(fleet, tmp_path, state_db):
    from playbook_nb.adapters.store import Store
    from playbook_nb.app.inputs import load_runbook
    from playbook_nb.app.session import RunOptions, RunSession

    runbook_path = write_runbook(
        tmp_path,
        fleet,
        body=f"""
        [restart]
        type = "Command"
        command_name = '{FAIL_ON_3}'
        targets = {json.dumps(fleet.hosts)}
        @SSH_OPTIONS@
        """,
    )
    options = RunOptions(headless=False, trigger="terminal", actor="alice")
    with Store.open(state_db) as store:
        session = RunSession.start(
            load_runbook(runbook_path),
            {"API_TOKEN": "s3cret-fleet-token"},
            store,
            options,
            executor=LocalExecutor(),
        )
        session.run_node("restart")
        session.decide("restart", "skip", "bob")
        session.close()
        rows = {r.host: (r.state, r.error) for r in store.host_results(session.run_id, "restart")}
        assert rows[fleet.hosts[1]] == ("SKIPPED", "exit code 3; skipped by bob")
        assert rows[fleet.hosts[0]] == ("OK", None)


def test_bad_fleet_fields_are_one_line_naming_the_node(tmp_path):
    path = tmp_path / "bad.playbook.toml"
    cases = {
        'targets = ["a"]\nbatch = 0': "node 'a', field 'batch': expected a positive integer, got 0",
        "batch = 2": "node 'a', field 'batch': 'batch' needs 'targets' (the hosts to run on)",
        'targets = ["a"]\ntransport = "telnet"': "unknown transport 'telnet' (expected ssh)",
        'targets = ["a"]\nssh = { password = "x" }': "unknown ssh option 'password'",
        'targets = { path = "h" }': 'expected {file = "hosts.txt"}',
    }
    from playbook_nb.app.inputs import load_runbook
    from playbook_nb.domain.errors import RunbookError

    for fields, message in cases.items():  # what `validate` prints: the load's one line (checked in process)
        path.write_text(f'[runbook]\ntitle = "t"\n\n[a]\ntype = "Command"\ncommand_name = "true"\n{fields}\n')
        with pytest.raises(RunbookError) as raised:
            load_runbook(path)
        assert str(raised.value).startswith(f"{path}: node 'a', field '") and message in str(raised.value)
        assert "\n" not in str(raised.value)
    result = run_cli("validate", str(path))  # the command itself: that line, exit 2, no traceback
    assert result.returncode == 2 and result.stderr.strip() == f"error: {raised.value}", result.stderr


# ---- Ansible nodes through ansible-runner, against the same sshd ------------------------------------

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: restart
      ansible.builtin.shell: |
        echo "restart {{ service }} with a token of $(printf %s "$TOKEN" | wc -c) chars"
        case "$SSH_CONNECTION" in *" 127.0.0.3 "*) exit 4;; esac
      environment:
        TOKEN: "{{ lookup('env', 'API_TOKEN') }}"
"""


@needs_sshd
def test_ansible_node_records_hosts_and_keeps_secrets_off_argv(fleet, tmp_path, state_db, monkeypatch):
    pytest.importorskip("ansible_runner")
    from playbook_nb.adapters.store import Store
    from playbook_nb.app.inputs import load_runbook
    from playbook_nb.app.session import RunOptions, RunSession

    monkeypatch.setenv("ANSIBLE_SSH_ARGS", "-o ControlMaster=no")  # no control master left behind
    monkeypatch.setenv("ANSIBLE_HOME", str(tmp_path / "ansible-home"))
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    runbook_path = write_runbook(
        tmp_path,
        fleet,
        body=f"""
        [restart]
        type = "Ansible"
        playbook = "site.yml"
        targets = {json.dumps([*fleet.hosts, fleet.down_host()])}
        extra_vars = {{ service = "nginx", ansible_python_interpreter = "/usr/bin/python3" }}
        batch = 4
        @SSH_OPTIONS@
        """,
    )
    secret = "s3cret-fleet-token"
    in_argv: list[str] = []

    def scan(_node: str, _host: HostResult) -> None:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if secret.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    in_argv.append(pid)
            except OSError:
                pass

    options = RunOptions(headless=False, trigger="terminal", actor="alice")
    with Store.open(state_db) as store:
        session = RunSession.start(
            load_runbook(runbook_path), {"API_TOKEN": secret}, store, options, executor=LocalExecutor()
        )
        session.host_listeners.append(scan)
        report = session.run_node("restart")
        assert str(report.state) == "NOK", report.result.to_dict()
        rows = {r.host: r for r in store.host_results(session.run_id, "restart")}
        h1, h2, h3 = fleet.hosts
        assert {h: r.state for h, r in rows.items() if h in fleet.hosts} == {h1: "OK", h2: "NOK", h3: "OK"}
        (down,) = set(rows) - set(fleet.hosts)
        assert rows[down].state == "NOK" and rows[down].error.startswith("unreachable:")
        assert rows[h2].exit_code == 4 and rows[h2].error == "task 'restart' failed (exit code 4)"
        assert f"restart nginx with a token of {len(secret)} chars" in rows[h1].stdout
        assert in_argv == []

        # Retry: ansible runs again only on the hosts not yet OK (--limit leaves the others out)
        session.decide("restart", "retry", "alice")
        session.run_node("restart")
        second = {r.host for r in store.host_results(session.run_id, "restart") if r.attempt == 2}
        assert second == {h2, down}
        session.abort("alice", "done testing")


def test_a_secret_is_refused_as_an_ansible_extra_var(tmp_path):
    path = tmp_path / "bad.playbook.toml"
    path.write_text(
        '[runbook]\ntitle = "t"\n[variables]\nTOKEN = { secret = true }\n'
        '[a]\ntype = "Ansible"\nplaybook = "site.yml"\ninventory = "hosts"\nextra_vars = { t = "{{ TOKEN }}" }\n'
    )
    result = run_cli("validate", str(path))
    assert result.returncode == 2
    assert "field 'extra_vars.t': secret 'TOKEN' cannot be an extra var" in result.stderr


# ---- the cockpit's node panel ------------------------------------------------------------------------


@needs_sshd
def test_cockpit_node_panel_shows_a_filterable_host_table(fleet, tmp_path, state_db):
    pytest.importorskip("ipycytoscape")
    from playbook_nb.adapters.store import Store
    from playbook_nb.app.inputs import load_runbook
    from playbook_nb.app.session import RunOptions, RunSession
    from playbook_nb.kernel_ext.notebook_run import NotebookRun
    from playbook_nb.kernel_ext.widget import RunbookWidget

    down = fleet.down_host()
    runbook_path = write_runbook(
        tmp_path,
        fleet,
        body=f"""
        [restart]
        type = "Command"
        command_name = 'echo "restarted $PLAYBOOK_HOST"; {FAIL_ON_3}'
        targets = {json.dumps([*fleet.hosts, down])}
        @SSH_OPTIONS@
        """,
    )
    with Store.open(state_db) as store:
        options = RunOptions(headless=False, trigger="notebook", actor="alice")
        session = RunSession.start(
            load_runbook(runbook_path),
            {"API_TOKEN": "s3cret-fleet-token"},
            store,
            options,
            executor=LocalExecutor(),
        )
        notebook_run = NotebookRun(session, headless=False)
        widget = RunbookWidget(notebook_run)
        notebook_run.widget = widget
        widget.select("restart")
        assert widget.host_box.layout.display == ""
        widget.on_run()
        table = widget.hosts.value
        assert table.count('class="pb-host"') == 4 and "2 NOK, 2 OK; showing 4" in table
        h1, h2, _h3 = fleet.hosts
        assert f'data-host="{h1}" data-state="OK"' in table and f"restarted {h1}" in table
        widget.host_filter.value = "NOK"
        failed = widget.hosts.value
        assert (
            failed.count('class="pb-host"') == 2 and f'data-host="{h2}"' in failed and "disk full" in failed
        )
        assert f'data-host="{h1}"' not in failed
        assert {"retry", "skip"} <= {n for n, b in widget.buttons.items() if not b.disabled}
        widget.close()
