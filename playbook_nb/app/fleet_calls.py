"""Fleet steps in a run (issue 21): build the call of a node that runs on many hosts, and record its hosts.

The session asks `prepare_fleet_call(...)` for a node with `targets` (or an Ansible node) and gets back the
planned attempt (`ports.FleetCall`); the executor runs it (adapters.executors: SSH or ansible-runner) and returns
a `FleetAttemptResult` (the roll-up plus a result per host).
`HostRecorder` writes the per-host rows: the plan when the attempt starts (hosts to run PENDING or ADDED,
hosts that left REMOVED), each host as it starts and ends when the caller is the driving thread, and every
host again when the attempt is finished (from whichever thread ran it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playbook_nb.app.ports import FleetAttemptResult, FleetCall
from playbook_nb.domain import templating
from playbook_nb.domain.errors import PlaybookError
from playbook_nb.domain.fleet import (
    DEFAULT_BATCH,
    HostPlan,
    HostResult,
    HostState,
    SshOptions,
    Target,
    TargetError,
    parse_targets,
    plan_hosts,
    split_hosts,
)
from playbook_nb.domain.model import Node, NodeType, Runbook

HostListener = Callable[[str, HostResult], None]  # (node_id, host result): a host started or ended


class FleetError(PlaybookError):
    """A fleet node cannot run as written (targets, files, options); the attempt fails with this line."""


def _base_dir(runbook: Runbook) -> Path:
    return Path(runbook.path).resolve().parent if runbook.path else Path.cwd()


def _path(text: str, runbook: Runbook) -> Path:
    path = Path(os.path.expanduser(text))
    return path if path.is_absolute() else _base_dir(runbook) / path


def resolve_targets(node: Node, runbook: Runbook, context: Mapping[str, Any]) -> list[Target]:
    """The node's hosts now: its list (each item a template; an item rendering to a list counts as many), a
    template naming a list (a step output), or the lines of a hosts file."""
    where = f"node '{node.id}', field 'targets'"
    value = node.targets
    try:
        if isinstance(value, dict):
            path = _path(templating.render(value["file"], context, where), runbook)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as err:
                raise FleetError(
                    f"{where}: cannot read the hosts file {path}: {err.strerror or err}"
                ) from None
            hosts = split_hosts(text)
        elif isinstance(value, list):
            hosts = []
            for i, item in enumerate(value):
                hosts.extend(split_hosts(templating.render(item, context, f"{where}[{i}]")))
        else:
            hosts = split_hosts(templating.render(str(value), context, where))
        return parse_targets(hosts, where)
    except TargetError as err:
        raise FleetError(str(err)) from None


def ssh_options(node: Node, runbook: Runbook, context: Mapping[str, Any]) -> SshOptions:
    where = f"node '{node.id}', field 'ssh'"
    raw = templating.render_params(node.ssh, context, where) if node.ssh else {}
    files = raw.get("identity_file") or []
    files = [files] if isinstance(files, str) else list(files)
    known = raw.get("known_hosts")
    return SshOptions(
        user=raw.get("user"),
        port=raw.get("port"),
        identity_files=[str(_path(f, runbook)) for f in files],
        known_hosts=str(_path(known, runbook)) if known else None,
        connect_timeout=float(raw.get("connect_timeout", 10)),
        agent=bool(raw.get("agent", True)),
    )


def secret_env(runbook: Runbook, values: Mapping[str, Any]) -> dict[str, str]:
    """Secret variables as environment variables of the remote command or of ansible-playbook (by name)."""
    return {name: str(values[name]) for name in sorted(runbook.secret_names) if values.get(name) is not None}


@dataclass
class HostRecorder:
    """Per-host rows of one attempt. `rows_for(result)` is what the session writes when the attempt ends."""

    store: Any
    run_id: int
    node_id: str
    attempt: int
    redact: Callable[[str], str]
    positions: dict[str, int] = field(default_factory=dict)
    added: set[str] = field(default_factory=set)
    driver: int = field(default_factory=threading.get_ident)

    def start(self, inventory: list[str], plan: HostPlan) -> None:
        self.positions = {host: i for i, host in enumerate(inventory)}
        self.added = set(plan.added)
        rows = [
            {
                "host": host,
                "position": self.positions[host],
                "state": "ADDED" if host in self.added else "PENDING",
                "membership": "ADDED" if host in self.added else None,
            }
            for host in plan.run
        ]
        rows += [
            {"host": host, "position": len(inventory) + i, "state": "REMOVED", "membership": "REMOVED"}
            for i, host in enumerate(plan.removed)
        ]
        self.store.record_hosts(self.run_id, self.node_id, self.attempt, rows)

    def row(self, result: HostResult) -> dict[str, Any]:
        return {
            "host": result.host,
            "position": self.positions.get(result.host, len(self.positions)),
            "state": str(result.state),
            "membership": "ADDED" if result.host in self.added else None,
            "exit_code": result.exit_code,
            "stdout": self.redact(result.stdout),
            "stderr": self.redact(result.stderr),
            "error": self.redact(result.error) if result.error else None,
            "started_at": result.started_at,
            "ended_at": result.ended_at,
        }

    def live(self, result: HostResult) -> None:
        """A host started or ended: written now when this is the driving thread (a worker thread's hosts are
        written by `finish`, on the driving thread)."""
        if threading.get_ident() == self.driver:
            self.store.record_hosts(self.run_id, self.node_id, self.attempt, [self.row(result)])

    def finish(self, result: FleetAttemptResult) -> None:
        self.store.record_hosts(self.run_id, self.node_id, self.attempt, [self.row(h) for h in result.hosts])


def _redact_host(result: HostResult, redact: Callable[[str], str]) -> HostResult:
    result.stdout = redact(result.stdout)
    result.stderr = redact(result.stderr)
    result.error = redact(result.error) if result.error else result.error
    return result


def prepare_fleet_call(
    node: Node,
    runbook: Runbook,
    *,
    values: Mapping[str, Any],
    context: Mapping[str, Any],
    timeout: float | None,
    store: Any,
    run_id: int,
    attempt: int,
    redact: Callable[[str], str],
    env: Mapping[str, str],
    on_output: Callable[[str, str], None] | None = None,
    host_listeners: list[HostListener] | None = None,
) -> tuple[FleetCall, HostRecorder]:
    """Render the node's fleet fields now, plan the hosts (only those not yet OK run), write the plan, and
    return the planned attempt (the executor runs it) plus the recorder whose `finish` writes its hosts."""
    where = f"node '{node.id}'"
    options = ssh_options(node, runbook, context)
    targets: list[Target] | None = None
    if node.targets is not None:
        targets = resolve_targets(node, runbook, context)
    previous = {h: r.state for h, r in store.latest_hosts(run_id, node.id).items()}
    recorder = HostRecorder(store, run_id, node.id, attempt, redact)
    listeners = list(host_listeners or [])

    def on_host(result: HostResult) -> None:
        recorder.live(result)
        shown = _redact_host(
            HostResult(**{k: getattr(result, k) for k in result.__dataclass_fields__}), redact
        )
        for listener in listeners:
            listener(node.id, shown)

    pending: dict[str, str] = {}

    def on_host_output(host: str, text: str) -> None:
        """Host output as whole lines, each prefixed with its host (chunks from many hosts interleave)."""
        if on_output is None:
            return
        *lines, pending[host] = (pending.get(host, "") + text).split("\n")
        for line in lines:
            on_output("stdout", f"[{host}] {redact(line)}\n")

    specific: dict[str, Any]  # the fields only an Ansible or only an SSH attempt has, rendered now
    if node.type is NodeType.ANSIBLE:
        playbook = _path(
            templating.render(node.playbook or "", context, f"{where}, field 'playbook'"), runbook
        )
        if not playbook.is_file():
            raise FleetError(f"{where}, field 'playbook': no such file {playbook}")
        inventory = None
        if node.inventory is not None:
            inventory = str(
                _path(templating.render(node.inventory, context, f"{where}, field 'inventory'"), runbook)
            )
        limit = templating.render(node.limit, context, f"{where}, field 'limit'") if node.limit else None
        extra = templating.render_params(node.extra_vars, context, f"{where}, field 'extra_vars'")
        specific = {
            "playbook": str(playbook),
            "inventory": inventory,
            "limit": limit,
            "extra_vars": dict(extra),
        }
        inventory_hosts = [t.text for t in targets] if targets is not None else list(previous)
        plan = plan_hosts(inventory_hosts, previous) if targets is not None else _plan_from_record(previous)
    else:
        assert targets is not None
        command = templating.render_command(
            node.command_name or "", context, f"{where}, field 'command_name'"
        )
        specific = {"command": command, "max_fail": node.max_fail}
        inventory_hosts = [t.text for t in targets]
        plan = plan_hosts(inventory_hosts, previous)
    recorder.start(inventory_hosts, plan)
    _announce(plan, listeners, node.id)
    run_set = set(plan.run)
    call = FleetCall(
        targets=[t for t in targets if t.text in run_set] if targets is not None else None,
        batch=node.batch or DEFAULT_BATCH,
        options=options,
        env={**env, **secret_env(runbook, values)},
        done=list(plan.done),
        on_host=on_host,
        on_output=on_host_output,
        timeout=timeout,
        **specific,
    )
    return call, recorder


def skip_failed_hosts(store: Any, run_id: int, node_id: str, actor: str) -> None:
    """Skip after a fleet node failed: its hosts not OK are recorded SKIPPED (the decision says who)."""
    rows = [r for r in store.latest_hosts(run_id, node_id).values() if r.state in ("NOK", "PENDING", "ADDED")]
    for row in rows:
        store.record_hosts(
            run_id, node_id, row.attempt,
            [{"host": row.host, "position": row.position, "state": "SKIPPED", "membership": row.membership,
              "exit_code": row.exit_code, "stdout": row.stdout, "stderr": row.stderr,
              "error": f"{row.error + '; ' if row.error else ''}skipped by {actor}",
              "started_at": row.started_at, "ended_at": row.ended_at}],
        )  # fmt: skip


def _announce(plan: HostPlan, listeners: list[HostListener], node_id: str) -> None:
    """Tell the faces the attempt's hosts before any runs: OK earlier (no start or end time), to run (PENDING
    or ADDED) and REMOVED."""
    shown = [HostResult(host=h, state=HostState.OK) for h in plan.done]
    shown += [
        HostResult(host=h, state=HostState.ADDED if h in plan.added else HostState.PENDING) for h in plan.run
    ]
    shown += [HostResult(host=h, state=HostState.REMOVED) for h in plan.removed]
    for result in shown:
        for listener in listeners:
            listener(node_id, result)


def _plan_from_record(previous: Mapping[str, str]) -> HostPlan:
    """An inventory file we do not read ourselves: run every host but those already OK."""
    done = [h for h, s in previous.items() if s == HostState.OK]
    return HostPlan(run=[h for h in previous if h not in done], done=done)
