"""Fleet steps (issue 21): one node run across many hosts, in rolling batches, with per-host state.

Pure: no I/O. What a node's `targets` name, how a target text reads (`[user@]host[:port]`), which hosts an
attempt runs (only those not yet OK; hosts that joined the inventory are ADDED, hosts that left are REMOVED, as
the seed's notes on per-agent state ask), and how the node's outcome rolls up from its hosts.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from playbook_nb.domain.errors import PlaybookError

DEFAULT_BATCH = 5  # hosts at a time, like Ansible's default forks
HOST_OUTPUT_BYTES = 64 * 1024  # per host and stream, in the record (head and tail kept)


class HostState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    OK = "OK"
    NOK = "NOK"
    SKIPPED = "SKIPPED"  # not run: the node was skipped after its failure, or max_fail stopped new starts
    ADDED = "ADDED"  # joined the inventory after the run started; runs in the next attempt
    REMOVED = "REMOVED"  # left the inventory after the run started; not run again


HOST_STATES = tuple(s.value for s in HostState)
NOT_STARTED = "not started: max_fail reached"


class TargetError(PlaybookError):
    """A target list or a host text is not usable (one line naming where)."""


@dataclass(frozen=True)
class Target:
    """One host: `text` as written (the host's name in the record), parsed into user, address and port."""

    text: str
    address: str
    port: int | None = None
    user: str | None = None


_HOST = re.compile(
    r"^(?:(?P<user>[^@\s:/]+)@)?(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[^@\s:/\[\]]+))(?::(?P<port>\d+))?$"
)


def parse_target(text: str, where: str = "targets") -> Target:
    """`web1`, `deploy@web1`, `web1:2222`, `[::1]:2222` -> Target; TargetError for anything else."""
    value = str(text).strip()
    match = _HOST.match(value)
    if not match:
        raise TargetError(f"{where}: {value!r} is not a host ([user@]host[:port])")
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise TargetError(f"{where}: {value!r} has port {port}, outside 1..65535")
    return Target(
        text=value,
        address=match.group("v6") or match.group("name"),
        port=int(port) if port else None,
        user=match.group("user"),
    )


def split_hosts(text: str) -> list[str]:
    """Host texts from a rendered template or a hosts file: a JSON or Python list literal, or words separated
    by whitespace or commas; `#` starts a comment to the end of the line."""
    stripped = text.strip()
    if stripped.startswith("["):
        for parse in (json.loads, ast.literal_eval):
            try:
                value = parse(stripped)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(value, list):
                return [str(item).strip() for item in value if str(item).strip()]
    hosts: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0]
        hosts.extend(word for word in re.split(r"[\s,]+", line) if word)
    return hosts


def parse_targets(hosts: Iterable[str], where: str = "targets") -> list[Target]:
    """Targets in the order given, each host once (a repeated host is an error: it would run twice)."""
    seen: set[str] = set()
    targets: list[Target] = []
    for text in hosts:
        target = parse_target(text, where)
        if target.text in seen:
            raise TargetError(f"{where}: host {target.text!r} is listed twice")
        seen.add(target.text)
        targets.append(target)
    if not targets:
        raise TargetError(f"{where}: no hosts")
    return targets


@dataclass
class HostResult:
    """What happened on one host in one attempt (the per-host row of the record)."""

    host: str
    state: HostState
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    membership: str | None = None  # "ADDED" for a host that joined after the run started

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "state": str(self.state),
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "error": self.error,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "duration": self.duration,
            "membership": self.membership,
        }


@dataclass(frozen=True)
class HostPlan:
    """Which hosts an attempt runs, given the current inventory and what earlier attempts recorded."""

    run: list[str]  # in inventory order: hosts not yet OK (new ones included)
    done: list[str] = field(default_factory=list)  # OK in an earlier attempt: not run again
    added: list[str] = field(default_factory=list)  # joined the inventory since the first attempt
    removed: list[str] = field(default_factory=list)  # recorded before, no longer in the inventory


def plan_hosts(inventory: list[str], previous: Mapping[str, str]) -> HostPlan:
    """`previous`: each host's latest recorded state for this node (empty on a first attempt)."""
    current = set(inventory)
    run: list[str] = []
    done: list[str] = []
    added: list[str] = []
    for host in inventory:
        state = previous.get(host)
        if state == HostState.OK:
            done.append(host)
            continue
        if previous and (state is None or state == HostState.REMOVED):
            added.append(host)
        run.append(host)
    removed = [h for h, s in previous.items() if h not in current and s != HostState.REMOVED]
    return HostPlan(run=run, done=done, added=added, removed=removed)


@dataclass(frozen=True)
class FleetOutcome:
    ok: bool
    error: str | None
    counts: dict[str, int]  # host state -> number of hosts, over the whole inventory (earlier OK ones too)
    failed: list[str]


def roll_up(
    results: Iterable[HostResult], *, done: Iterable[str] = (), max_fail: int | None = None
) -> FleetOutcome:
    """The node's outcome from its hosts: OK when every host of the inventory is OK (those OK in an earlier
    attempt count as OK); otherwise NOK, naming the failed hosts and those max_fail kept from starting."""
    results = list(results)
    counts: dict[str, int] = {}
    done = list(done)
    if done:
        counts[HostState.OK] = len(done)
    for result in results:
        if result.state == HostState.REMOVED:
            continue
        counts[str(result.state)] = counts.get(str(result.state), 0) + 1
    failed = [r.host for r in results if r.state == HostState.NOK]
    not_started = [
        r.host for r in results if r.state in (HostState.SKIPPED, HostState.PENDING, HostState.ADDED)
    ]
    total = len(done) + sum(1 for r in results if r.state != HostState.REMOVED)
    if not failed and not not_started:
        return FleetOutcome(ok=True, error=None, counts=counts, failed=[])
    parts = []
    if failed:
        parts.append(f"{len(failed)} of {total} hosts failed ({_names(failed)})")
    if not_started:
        stop = f" after {max_fail} failures (max_fail)" if max_fail is not None and failed else ""
        parts.append(f"{len(not_started)} not started{stop}")
    return FleetOutcome(ok=False, error="; ".join(parts), counts=counts, failed=failed)


def _names(hosts: list[str], limit: int = 5) -> str:
    shown = ", ".join(hosts[:limit])
    return shown + (f" and {len(hosts) - limit} more" if len(hosts) > limit else "")


def progress_line(counts: Mapping[str, int], total: int, failing: list[str]) -> str:
    """One line for a terminal or a panel: "7/10 hosts done: 6 OK, 1 NOK (web3)"."""
    finished = sum(counts.get(s, 0) for s in (HostState.OK, HostState.NOK, HostState.SKIPPED))
    parts = [f"{counts[s]} {s}" for s in (HostState.OK, HostState.NOK, HostState.RUNNING) if counts.get(s)]
    text = f"{finished}/{total} hosts done" + (": " + ", ".join(parts) if parts else "")
    if failing:
        text += f"; failing: {_names(failing)}"
    return text


@dataclass
class SshOptions:
    """How to reach the hosts: the node's `ssh = {...}` table, over what the target text says."""

    user: str | None = None
    port: int | None = None
    identity_files: list[str] = field(default_factory=list)
    known_hosts: str | None = None  # None: ~/.ssh/known_hosts
    connect_timeout: float = 10.0
    agent: bool = True
