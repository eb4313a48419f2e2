"""The event hash chain, independent of the backend.

hash = sha256(prev_hash + canonical JSON of {run_id, seq, at, kind, node_id, attempt, payload}), where `at`
is the stored ISO-8601 text and `payload` the stored canonical JSON text (hashing the text, not a re-parsed
value, keeps the hash stable across backends). The first event of a run has prev_hash "". The runs row keeps
the chain head (event_count, event_head), so deleting the last event is detected too.

This detects edits made without recomputing the chain. Someone able to rewrite every later hash and the runs
row can forge a consistent chain; a keyed hash (HMAC) would be the next step if that matters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any


def event_hash(
    prev_hash: str,
    *,
    run_id: int,
    seq: int,
    at: str,
    kind: str,
    node_id: str | None,
    attempt: int | None,
    payload: str,
) -> str:
    fields = {
        "run_id": run_id,
        "seq": seq,
        "at": at,
        "kind": kind,
        "node_id": node_id,
        "attempt": attempt,
        "payload": payload,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def verify_chain(run_id: int, rows: Iterable[dict[str, Any]], event_count: int, event_head: str) -> list[str]:
    """Problems found in one run's stored events (dicts with the raw column values), ordered by seq."""
    problems: list[str] = []
    prev_hash = ""
    expected_seq = 1
    last_seq = 0
    for row in rows:
        seq = row["seq"]
        if seq != expected_seq:
            problems.append(f"run {run_id}: event seq {seq} found where seq {expected_seq} was expected")
        if row["prev_hash"] != prev_hash:
            problems.append(f"run {run_id}: event seq {seq} does not follow the event before it (prev_hash)")
        recomputed = event_hash(
            row["prev_hash"],
            run_id=row["run_id"],
            seq=seq,
            at=row["at"],
            kind=row["kind"],
            node_id=row["node_id"],
            attempt=row["attempt"],
            payload=row["payload"],
        )
        if recomputed != row["hash"]:
            problems.append(f"run {run_id}: event seq {seq} ({row['kind']}) was modified (hash mismatch)")
        prev_hash = row["hash"]
        expected_seq = seq + 1
        last_seq = seq
    if last_seq != event_count:
        problems.append(f"run {run_id}: {event_count} events recorded, last event found is seq {last_seq}")
    if prev_hash != event_head:
        problems.append(f"run {run_id}: last event's hash does not match the chain head kept on the run")
    return problems
