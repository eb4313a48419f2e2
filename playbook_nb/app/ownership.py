"""The owner's side of run ownership (issues 13 and 24): the lease kept alive while the session lives, the
process groups of its commands reported to the index, and the recovery of an orphaned or taken-over run.

- `LeaseKeeper`: one per driving session. A daemon thread with its own connection to the index renews the
  lease every quarter of it (the writes of the session renew it too); the same connection records each
  command's process group the moment it starts, from whatever thread started it.
- `recover_run`: before a resume of a RUNNING run whose owner is gone (or that is taken over explicitly):
  the new owner claims the run (the old one's writes are refused from then on), kills every recorded process
  group still alive (an event each, with the actor), and records the interrupted attempts INTERRUPTED and
  the run ABORTED (a `status_set_manually` event with the actor and the reason); the resume then goes on as for any ABORTED run.
"""

from __future__ import annotations

import contextlib
import threading

from playbook_nb.adapters.executors.command import kill_process_group, kill_tagged
from playbook_nb.adapters.store import Store
from playbook_nb.adapters.store.owner import Owner, OwnerStatus, lease_seconds, process_start, this_host
from playbook_nb.domain.errors import PlaybookError, RunOwned


class LeaseKeeper:
    """Keeps one owner's lease on one run alive, and records its commands' process groups."""

    def __init__(self, store: Store, run_id: int, owner: Owner):
        self.store = store
        self.run_id = run_id
        self.owner = owner
        self._own: Store | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LeaseKeeper:
        self._thread = threading.Thread(target=self._beat, name=f"playbook-lease-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _store(self) -> Store | None:
        if self._own is None:
            with contextlib.suppress(PlaybookError, NotImplementedError, OSError):
                self._own = self.store.reopen()
        return self._own

    def _beat(self) -> None:
        interval = max(0.5, lease_seconds() / 4)
        try:
            while not self._stop.wait(interval):
                with self._lock:
                    store = self._store()
                    if store is None:
                        continue
                    try:
                        if not store.renew_lease(self.run_id, self.owner.token):
                            return  # finished, taken over or set by hand: nothing left to keep
                    except PlaybookError:
                        continue  # the index is busy or failing: try again at the next beat
        finally:
            with self._lock:
                if self._own is not None:
                    with contextlib.suppress(Exception):
                        self._own.close()
                    self._own = None

    def command_started(self, node_id: str, attempt: int, pgid: int) -> None:
        """A command of the run now runs in group `pgid` (called from the thread that started it)."""
        with self._lock:
            store = self._store()
            if store is None:
                return
            with contextlib.suppress(PlaybookError):
                store.set_attempt_process(
                    self.run_id, node_id, attempt, host=this_host(), pgid=pgid, pgid_start=process_start(pgid)
                )


def recover_run(
    store: Store,
    run_id: int,
    owner: Owner,
    *,
    take_over: bool = False,
    status: str = "ABORTED",
    reason: str | None = None,
    confirmed: bool = False,
) -> OwnerStatus | None:
    """Take a RUNNING run from its recorded owner and record it `status` (ABORTED: resumable): refused
    (RunOwned) while that owner lives unless `take_over`. In this order: `owner` claims the run (from then on
    the old owner's writes are refused), every recorded process group still alive is killed (an event each),
    then the attempts in flight are recorded INTERRUPTED and the run `status` (a `status_set_manually`
    event with the actor and the reason). Returns the owner it replaced (None when the run was not
    RUNNING: nothing to recover)."""
    run = store.get_run(run_id)
    if run.status != "RUNNING":
        return None
    previous = store.owner_status(run_id)
    if previous.live and not take_over:
        raise RunOwned(
            f"run {run_id} is driven by {previous.label}; resume refused (watch it with"
            f" `playbook-nb show {run_id}`, or take it over with --take-over)"
        )
    store.claim_run(run_id, owner, take_over=True)
    kill_recorded_groups(store, run_id, owner.actor, why="taken over" if previous.live else "orphaned")
    if reason is None and previous.live:
        reason = f"taken over by {owner.actor} from {previous.label}"
    elif reason is None:
        reason = f"{previous.describe() or 'orphaned'}; recovered by {owner.actor}"
    store.set_status_manually(
        run_id, status, force=True, actor=owner.actor, reason=reason, confirmed=confirmed
    )
    return previous


def kill_recorded_groups(store: Store, run_id: int, actor: str | None, *, why: str) -> list[int]:
    """Kill what the run's RUNNING attempts left alive on this host: each recorded process group, and every
    process carrying a command attempt's token (recorded with the attempt's start, so a command whose group
    was not recorded yet, or a process that left the group, is found too); a `process_group_killed` event
    each (with the actor, the group and the pids found by token). Returns the groups killed."""
    killed = []
    for node_id, attempt, pgid, pgid_start, host, process_token in store.live_process_groups(run_id):
        if host and host != this_host():
            store.append_event(
                run_id,
                "process_group_unreachable",
                node_id=node_id,
                attempt=attempt,
                payload={"pgid": pgid, "host": host, "actor": actor, "why": why},
            )
            continue
        group_killed = pgid is not None and kill_process_group(pgid, pgid_start)
        tagged = kill_tagged(process_token) if process_token else []
        if group_killed or tagged:
            if group_killed and pgid is not None:
                killed.append(pgid)
            payload: dict[str, object] = {"pgid": pgid, "host": host, "actor": actor, "why": why}
            if tagged:
                payload["pids"] = tagged
            store.append_event(
                run_id, "process_group_killed", node_id=node_id, attempt=attempt, payload=payload
            )
    return killed
