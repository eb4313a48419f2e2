"""Ansible nodes: an existing playbook through ansible-runner, with a result per host (issue 21).

- The inventory is the node's file, or one written from its `targets` (host keys stay checked: Ansible's
  `host_key_checking` is left on; a `known_hosts` file of the node is handed to ssh).
- Extra vars go to `env/extravars` in a private data directory (mode 0700), so the command line holds only
  `-e @file`. Secrets never go there: they reach ansible-playbook as environment variables (ansible-runner's
  `envvars`), for the playbook to read with `lookup('env', 'NAME')`. The directory is removed afterwards.
- Hosts OK in an earlier attempt are left out with `--limit` (`PATTERN:!host...`), so a retry or a resume runs
  only the hosts not yet OK.
- Per-host results come from ansible-runner's events (each task's ok / failed / unreachable per host).
- ansible-runner runs in a thread of its own (`relay.relay`); its events reach the callbacks on the calling
  thread. A KeyboardInterrupt there cancels the run (ansible-runner stops ansible-playbook) and is raised
  again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from playbook_nb.adapters.executors.capture import BoundedCapture
from playbook_nb.adapters.executors.fleet import HostCallback, HostOutputCallback
from playbook_nb.adapters.executors.relay import Put, relay
from playbook_nb.app.ports import FleetAttemptResult
from playbook_nb.domain.fleet import HOST_OUTPUT_BYTES, HostResult, HostState, SshOptions, Target, roll_up


def _host_outcome(result: HostResult, kind: str, data: dict[str, Any]) -> None:
    """What one task's event says about its host (a failure ignored by the playbook is no failure)."""
    res = data.get("res") or {}
    if kind == "runner_on_unreachable":
        result.state, result.error = HostState.NOK, f"unreachable: {str(res.get('msg', '')).strip()}"
    elif kind == "runner_on_failed" and not data.get("ignore_errors"):
        result.state = HostState.NOK
        result.exit_code = res.get("rc") if isinstance(res.get("rc"), int) else result.exit_code
        result.error = f"task '{data.get('task', '')}' failed" + (
            f" (exit code {res['rc']})" if isinstance(res.get("rc"), int) else ""
        )


def _alias(target: Target) -> str:
    """An inventory name for a target (Ansible would read "host:port" in a name as a port)."""
    return target.text.replace("@", "_at_").replace(":", "_").replace("[", "").replace("]", "")


def write_inventory(path: Path, targets: Sequence[Target], options: SshOptions) -> dict[str, str]:
    """A YAML (JSON) inventory of `targets`; returns inventory name -> target text."""
    hosts: dict[str, dict[str, Any]] = {}
    names: dict[str, str] = {}
    for target in targets:
        entry: dict[str, Any] = {"ansible_host": target.address}
        port = target.port or options.port
        if port:
            entry["ansible_port"] = port
        user = target.user or options.user
        if user:
            entry["ansible_user"] = user
        hosts[_alias(target)] = entry
        names[_alias(target)] = target.text
    group_vars: dict[str, Any] = {}
    if options.identity_files:
        group_vars["ansible_ssh_private_key_file"] = options.identity_files[0]
    ssh_args = []
    if options.known_hosts:
        ssh_args += [f"-o UserKnownHostsFile={options.known_hosts}", "-o StrictHostKeyChecking=yes"]
    if options.identity_files:
        ssh_args.append("-o IdentitiesOnly=yes")
    if ssh_args:
        group_vars["ansible_ssh_common_args"] = " ".join(ssh_args)
    group_vars["ansible_ssh_timeout"] = int(options.connect_timeout)
    path.write_text(json.dumps({"all": {"hosts": hosts, "vars": group_vars}}, indent=1))
    return names


def search_path(env: Mapping[str, str] | None) -> str:
    """PATH with this Python's bin/ first: ansible-playbook installed beside it (a venv not activated)."""
    base = (env or {}).get("PATH") or os.environ.get("PATH", "")
    here = str(Path(sys.executable).parent)
    return here if not base else f"{here}{os.pathsep}{base}"


def limit_pattern(limit: str | None, done: Sequence[str]) -> str | None:
    """`--limit` that keeps the node's own limit and leaves out the hosts already OK."""
    if not done:
        return limit
    return (limit or "all") + "".join(f":!{host}" for host in done)


def _task_line(event: dict[str, Any]) -> str:
    data = event.get("event_data", {})
    res = data.get("res") or {}
    status = {
        "runner_on_ok": "changed" if res.get("changed") else "ok",
        "runner_on_failed": "failed",
        "runner_on_unreachable": "unreachable",
        "runner_on_skipped": "skipping",
    }[event["event"]]
    line = f"TASK [{data.get('task', '')}] {status}"
    detail = [str(res[key]).rstrip() for key in ("stdout", "stderr", "msg") if res.get(key)]
    if detail:
        line += ": " + "\n".join(detail)
    return line + "\n"


def run_ansible(  # noqa: C901
    playbook: str,
    *,
    inventory: str | None = None,
    targets: Sequence[Target] | None = None,
    limit: str | None = None,
    extra_vars: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    batch: int = 5,
    timeout: float | None = None,
    options: SshOptions | None = None,
    done: Sequence[str] = (),
    on_host: HostCallback | None = None,
    on_output: HostOutputCallback | None = None,
    max_output_bytes: int = HOST_OUTPUT_BYTES,
) -> FleetAttemptResult:
    """Run `playbook` with ansible-runner; hosts in `done` (OK earlier) are left out and count as OK."""
    import ansible_runner

    options = options or SshOptions()
    started = time.time()
    private = Path(tempfile.mkdtemp(prefix="playbook-nb-ansible-"))
    os.chmod(private, 0o700)
    (private / "env").mkdir(mode=0o700)
    names: dict[str, str] = {}
    order: list[str] = []
    inventory_arg: str | None
    if targets is not None:
        names = write_inventory(private / "inventory.json", targets, options)
        inventory_arg = str(private / "inventory.json")
        order = [t.text for t in targets]
    else:
        inventory_arg = inventory
    if extra_vars:
        extravars_file = private / "env" / "extravars"
        extravars_file.write_text(json.dumps(dict(extra_vars)))
        os.chmod(extravars_file, 0o600)
    by_name = {text: alias for alias, text in names.items()}
    done_names = [by_name.get(h, h) for h in done]

    cancel = threading.Event()
    outcome: dict[str, Any] = {}

    def work(put: Put) -> None:
        def handle(event: dict[str, Any]) -> bool:  # every event is relayed and kept
            put(event)
            return True

        try:
            runner = ansible_runner.run(
                private_data_dir=str(private),
                playbook=str(Path(playbook).resolve()),
                inventory=inventory_arg,
                limit=limit_pattern(limit, done_names),
                envvars={
                    **{str(k): str(v) for k, v in (env or {}).items()},
                    "PATH": search_path(env),
                    "ANSIBLE_HOST_KEY_CHECKING": "True",
                    "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_RETRY_FILES_ENABLED": "False",
                },
                forks=max(1, int(batch)),
                timeout=int(timeout) if timeout else None,
                quiet=True,
                event_handler=handle,
                cancel_callback=cancel.is_set,
                settings={"suppress_ansible_output": True},
            )
            outcome["status"], outcome["rc"] = runner.status, runner.rc
            outcome["stdout"] = runner.stdout.read() if runner.stdout else ""
        except Exception as err:  # reported as the attempt's error
            outcome["exception"] = err

    captures: dict[str, BoundedCapture] = {}
    hosts: dict[str, HostResult] = {}

    def handle(event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        host_name = (event.get("event_data") or {}).get("host")
        if not host_name:
            return
        host = names.get(host_name, host_name)
        if host not in hosts:
            if host not in order:
                order.append(host)
            hosts[host] = HostResult(host=host, state=HostState.RUNNING, started_at=time.time())
            captures[host] = BoundedCapture(max_output_bytes)
            if on_host is not None:
                with contextlib.suppress(Exception):
                    on_host(hosts[host])
        if kind not in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped"):
            return
        line = _task_line(event)
        captures[host].add(line.encode("utf-8", "replace"))
        if on_output is not None:
            with contextlib.suppress(Exception):
                on_output(host, line)
        _host_outcome(hosts[host], kind, event.get("event_data") or {})

    try:
        relay(work, handle, cancel=cancel.set, name="playbook-ansible", cancel_wait=30)
    finally:
        shutil.rmtree(private, ignore_errors=True)

    ended = time.time()
    for host, result in hosts.items():
        result.stdout = captures[host].text()
        result.ended_at = ended
        if result.state is HostState.RUNNING:
            result.state = HostState.OK
            result.exit_code = 0 if result.exit_code is None else result.exit_code
        if on_host is not None:
            with contextlib.suppress(Exception):
                on_host(result)
    ordered = [hosts.get(h) or HostResult(host=h, state=HostState.SKIPPED, error="not run") for h in order]
    ordered = [r for r in ordered if r.host not in done]
    rolled = roll_up(ordered, done=done)
    error = rolled.error
    status, rc = outcome.get("status"), outcome.get("rc")
    if "exception" in outcome:
        error = f"ansible-runner failed: {outcome['exception']}"
    elif status == "timeout":
        error = f"ansible-playbook timed out after {timeout:g} seconds" + (f"; {error}" if error else "")
    elif status == "canceled":
        error = "ansible-playbook was cancelled"
    elif rc not in (0, None) and (rolled.ok or not hosts):
        # e.g. a syntax error, or no ansible-playbook: no host ran; its last line says why
        last = next((ln for ln in reversed(outcome.get("stdout", "").splitlines()) if ln.strip()), "")
        error = f"ansible-playbook exit code {rc}" + (f": {last.strip()}" if last else "")
    elif not ordered and not done:
        error = "the playbook ran on no host (check the inventory and the limit)"
    ok = error is None
    return FleetAttemptResult(
        ok=ok,
        exit_code=rc,
        stdout=outcome.get("stdout", ""),
        error=error,
        started_at=started,
        ended_at=ended,
        hosts=ordered,
        counts=rolled.counts,
    )
