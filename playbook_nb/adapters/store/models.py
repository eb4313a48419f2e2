"""Rows of the run record as plain dataclasses, the status vocabularies, and value conversions.

Backend-neutral: a SQLite or PostgreSQL store returns these same objects. Timestamps are timezone-aware UTC
`datetime` objects (stored as ISO-8601 text); JSON columns come back as Python values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from playbook_nb.domain.records import Row

RUN_STATUSES = ("RUNNING", "OK", "NOK", "ABORTED")
FINAL_RUN_STATUSES = ("OK", "NOK", "ABORTED")
NODE_STATES = ("PENDING", "RUNNING", "WAITING", "OK", "NOK", "SKIPPED")
ATTEMPT_STATUSES = ("RUNNING", "OK", "NOK", "INTERRUPTED")
HOST_STATES = ("PENDING", "RUNNING", "OK", "NOK", "SKIPPED", "ADDED", "REMOVED")
TRIGGERS = ("terminal", "notebook", "papermill", "widget", "resume")
MODES = ("interactive", "headless")

INTERRUPTED_ERROR = "interrupted: process ended before the attempt finished"


@dataclass(eq=False, repr=False, init=False)  # __init__, frozen, eq, hash, repr: Row's
class Run(Row):
    """One run: its runbook text, status, variables, owner and lease (a row of `runs`)."""

    id: int
    workflow: str
    number: int
    title: str
    status: str
    status_reason: str | None
    started_at: datetime
    ended_at: datetime | None
    trigger: str
    actor: str | None
    host: str | None
    mode: str
    variables: dict[str, Any]
    params: dict[str, Any]
    runbook_text: str
    runbook_sha256: str
    runbook_version: str | None
    notebook_path: str | None
    artifact_dir: str | None
    counts: dict[str, int]
    snapshot: dict[str, Any] | None = field(repr=False, default=None)
    event_count: int = 0
    event_head: str = ""
    # ownership (issue 13): the session that drives the run, its lease, and the compare-and-set version
    version: int = 0
    owner_token: str | None = field(repr=False, default=None)
    owner_host: str | None = None
    owner_pid: int | None = None
    owner_pid_start: int | None = field(repr=False, default=None)
    owner_kind: str | None = None
    owner_actor: str | None = None
    owner_seen_at: datetime | None = None
    lease_expires: datetime | None = None
    revision: int = 1  # the runbook revision in force (issue 14.10; RevisionRow)

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; None while the run has no end."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(eq=False, repr=False, init=False)  # __init__, frozen, eq, hash, repr: Row's
class NodeStateRow(Row):
    """A node's state in one run (a row of `node_states`)."""

    run_id: int
    node_id: str
    position: int
    state: str
    reason: str | None
    attempts: int
    failed: bool
    updated_at: datetime


@dataclass(eq=False, repr=False, init=False)  # __init__, frozen, eq, hash, repr: Row's
class AttemptRow(Row):
    """One attempt of a node: its command's exit code, output, result (a row of `attempts`)."""

    run_id: int
    node_id: str
    attempt: int
    status: str
    started_at: datetime
    ended_at: datetime | None
    duration: float | None
    exit_code: int | None
    stdout: str | None
    stderr: str | None
    result: Any
    error: str | None
    host: str | None = None  # where its command ran, and its process group (issue 24)
    pgid: int | None = None
    pgid_start: int | None = None
    process_token: str | None = None  # a command's watchdog token, recorded with its start (issue 18.2)
    revision: int = 1  # the runbook revision of the run it ran under (issue 14.10)


@dataclass(eq=False, repr=False, init=False)  # __init__, frozen, eq, hash, repr: Row's
class RevisionRow(Row):
    """One runbook text a run ran under: 1 is the text it started with; `resume --allow-changed` adds one."""

    run_id: int
    revision: int
    runbook_sha256: str
    runbook_text: str
    recorded_at: datetime | None
    actor: str | None


@dataclass(eq=False, repr=False, init=False)  # __init__, frozen, eq, hash, repr: Row's
class HostRow(Row):
    """One host of a fleet node in one attempt (issue 21)."""

    run_id: int
    node_id: str
    attempt: int
    host: str
    position: int
    state: str
    membership: str | None
    exit_code: int | None
    stdout: str | None
    stderr: str | None
    error: str | None
    started_at: datetime | None
    ended_at: datetime | None
    duration: float | None


@dataclass(eq=False, repr=False, init=False)  # __init__, frozen, eq, hash, repr: Row's
class DecisionRow(Row):
    """A gate decision, with who took it and from where (a row of `decisions`)."""

    id: int
    run_id: int
    node_id: str
    decision: str
    actor: str | None
    comment: str | None
    decided_at: datetime
    source: str | None = None  # server, cli, notebook, parameter, policy, replay (None: recorded before 0003)


@dataclass(eq=False, repr=False, init=False)  # __init__, frozen, eq, hash, repr: Row's
class GateWaitRow(Row):
    """A run waiting at a gate for a decision from anywhere (issue 16): 'waiting' until someone decides
    ('decided', with the decision, its actor, source and comment), then 'applied' by the run; 'expired' when
    the deadline passed (or the run stopped waiting) first."""

    id: int
    run_id: int
    node_id: str
    status: str
    started_at: datetime
    deadline: datetime
    decision: str | None
    actor: str | None
    source: str | None
    comment: str | None
    decided_at: datetime | None


@dataclass(eq=False, repr=False, init=False)  # __init__, frozen, eq, hash, repr: Row's
class EventRow(Row):
    """One event of a run's hash chain (a row of `events`)."""

    id: int
    run_id: int
    seq: int
    at: datetime
    kind: str
    node_id: str | None
    attempt: int | None
    payload: Any
    prev_hash: str
    hash: str


# ---- conversions shared by every backend -------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(UTC)


When = datetime | str | float | None
"""A moment as the store accepts it: datetime (naive = UTC), ISO-8601 text, epoch seconds, or None (now)."""


def to_timestamp(value: When) -> str:
    """ISO-8601 UTC text for storage."""
    if value is None:  # now, already in UTC: the usual case, about ten a node (issue 18.2)
        return now().isoformat(timespec="microseconds")
    if isinstance(value, bool):
        raise TypeError(f"a time is a datetime, seconds since the epoch or ISO-8601 text, not {value!r}")
    if isinstance(value, int | float):
        stamp = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        stamp = datetime.fromisoformat(value)
    else:
        stamp = value
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.astimezone(UTC).isoformat(timespec="microseconds")


def from_timestamp(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def name_of(value: Any) -> str:
    """A status or decision given as a string or an Enum (engine types) -> its name as text."""
    if isinstance(value, Enum):
        return value.value if isinstance(value.value, str) else value.name
    return str(value)


# `json.dumps` with options builds an encoder at every call; a transition writes about seven (issue 18.2)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def to_json(value: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces, non-JSON values rendered with str()."""
    return _CANONICAL.encode(value)


def from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)
