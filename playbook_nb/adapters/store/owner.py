"""Run ownership (issues 13 and 24): who drives a run, whether that owner still lives, and how to say so.

At most one session drives a run. Its owner is recorded in the run's row: host, process id with the process's
start time (a reused pid is not the owner), what it is (a kernel, `playbook-nb run`, papermill), the actor, and
a lease it renews while it lives (on each write, and from a small heartbeat thread while it waits).

An owner is gone when, on this host, its process no longer exists (found at once), or when its lease expired
(the only sign on another host). A RUNNING run whose owner is gone is *orphaned*: `resume` recovers it.
"""

from __future__ import annotations

import os
import sys
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from playbook_nb.adapters.store.models import now
from playbook_nb.domain.records import Values

if TYPE_CHECKING:
    from playbook_nb.adapters.store.models import Run

LEASE_ENV = "PLAYBOOK_NB_LEASE_SECONDS"
DEFAULT_LEASE = 60.0  # seconds an owner on another host counts as alive after its last renewal


def lease_seconds() -> float:
    """The lease an owner takes and renews (PLAYBOOK_NB_LEASE_SECONDS, else 60 s)."""
    try:
        return max(1.0, float(os.environ.get(LEASE_ENV, "") or DEFAULT_LEASE))
    except ValueError:
        return DEFAULT_LEASE


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22); None if it is gone or
    the system has no /proc. Together with the pid it names one process: a reused pid has another start."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as stat:
            data = stat.read()
    except (OSError, ValueError):
        return None
    fields = data[data.rfind(b")") + 2 :].split()  # after "pid (comm) ": state is field 3
    try:
        if fields[0] in (b"Z", b"X"):
            return None  # a zombie has ended
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def process_alive(pid: int | None, start: int | None) -> bool:
    """True while process `pid` runs and is the one that started at `start` (when known)."""
    if not pid or pid <= 0:
        return False
    found = process_start(pid)
    if found is None:
        if os.path.isdir("/proc"):
            return False
        try:  # no /proc (macOS): the pid alone
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return start is None or found == int(start)


def this_host() -> str:
    import socket  # at use: a listing of runs never needs it

    return socket.gethostname()


def process_kind() -> str:
    """What this process is, for "driven by ..." lines: a kernel (with its id), papermill, or the CLI."""
    kernel_id = _kernel_id()
    if kernel_id:
        return f"kernel {kernel_id[:8]}"
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    if program in ("playbook-nb", "__main__.py") or program.startswith("playbook"):
        return "playbook-nb " + (sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-") else "")
    return program


def _kernel_id() -> str | None:
    if "ipykernel" not in sys.modules:
        return None
    try:
        from ipykernel.connect import get_connection_file

        name = os.path.basename(get_connection_file())
    except Exception:
        return None
    if name.startswith("kernel-") and name.endswith(".json"):
        return name[len("kernel-") : -len(".json")]
    return name or None


class Owner(Values):  # named, frozen values at a plain class's cost (domain/records.py)
    """The session that drives a run."""

    token: str  # one per session: a second session in the same process is another owner
    host: str
    pid: int
    pid_start: int | None
    kind: str
    actor: str | None

    @classmethod
    def this_process(cls, actor: str | None, kind: str | None = None) -> Owner:
        pid = os.getpid()
        return cls(
            token=uuid.uuid4().hex,
            host=this_host(),
            pid=pid,
            pid_start=process_start(pid),
            kind=(kind or process_kind()).strip(),
            actor=actor,
        )


class OwnerStatus(Values):
    """What a run's recorded owner is now: `live`, `orphaned` (RUNNING, owner gone) or `none` (not RUNNING,
    or a run recorded before ownership existed)."""

    state: str
    label: str  # "alice (playbook-nb run, pid 4242 on host-a)"
    since: datetime | None = None  # orphaned: the owner's last sign of life
    token: str | None = None

    @property
    def live(self) -> bool:
        return self.state == "live"

    @property
    def orphaned(self) -> bool:
        return self.state == "orphaned"

    def describe(self) -> str:
        """ "driven by ..." / "orphaned (owner gone since ...)" / ""."""
        if self.state == "live":
            return f"driven by {self.label}"
        if self.state == "orphaned":
            when = self.since.astimezone().strftime("%Y-%m-%d %H:%M:%S") if self.since else "an unknown time"
            return f"orphaned (owner gone since {when})"
        return ""


def owner_label(actor: str | None, kind: str | None, pid: int | None, host: str | None) -> str:
    """ "alice (playbook-nb run, pid 4242 on host-a)"."""
    process = " ".join(part for part in (f"pid {pid}" if pid else "", f"on {host}" if host else "") if part)
    where = ", ".join(part for part in ((kind or "").strip(), process) if part)
    who = actor or "someone"
    return f"{who} ({where})" if where else who


def status_of(
    *,
    status: str,
    token: str | None,
    host: str | None,
    pid: int | None,
    pid_start: int | None,
    kind: str | None,
    actor: str | None,
    seen_at: datetime | None,
    lease_expires: datetime | None,
    at: datetime | None = None,
) -> OwnerStatus:
    """The owner of a run with these recorded fields, now (or `at`)."""
    label = owner_label(actor, kind, pid, host)
    if status != "RUNNING":
        return OwnerStatus("none", label, token=token)
    if token is None:
        # recorded before ownership existed (or by a store copy): no lease to respect, nobody known alive
        return OwnerStatus("orphaned", label, since=seen_at)
    moment = at or now()
    expired = lease_expires is not None and lease_expires <= moment
    gone_here = host == this_host() and not process_alive(pid, pid_start)
    if expired or gone_here:
        return OwnerStatus("orphaned", label, since=seen_at, token=token)
    return OwnerStatus("live", label, since=seen_at, token=token)


def run_owner(run: Run, at: datetime | None = None) -> OwnerStatus:
    """The owner of a recorded run, now."""
    return status_of(
        status=run.status,
        token=run.owner_token,
        host=run.owner_host,
        pid=run.owner_pid,
        pid_start=run.owner_pid_start,
        kind=run.owner_kind,
        actor=run.owner_actor,
        seen_at=run.owner_seen_at,
        lease_expires=run.lease_expires,
        at=at,
    )


def lease_until(seconds: float | None = None) -> datetime:
    return now() + timedelta(seconds=lease_seconds() if seconds is None else seconds)
