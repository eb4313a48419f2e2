"""The event hash chain, independent of the backend.

hash = sha256(prev_hash + canonical JSON of {run_id, seq, at, kind, node_id, attempt, payload}), where `at`
is the stored ISO-8601 text and `payload` the stored canonical JSON text (hashing the text, not a re-parsed
value, keeps the hash stable across backends). The first event of a run has prev_hash "". The runs row keeps
the chain head (event_count, event_head), so deleting the last event is detected too.

Unkeyed, this detects edits made without recomputing the chain: someone able to rewrite every later hash and
the runs row can forge a consistent chain. Keyed (a chain key in `PLAYBOOK_CHAIN_KEY`, or in the file
`PLAYBOOK_CHAIN_KEY_FILE` names), each hash is HMAC-SHA256 under that key, stored as "hmac-sha256:<hex>": a
rewrite by someone without the key cannot produce hashes that verify, and with the key configured an unkeyed
(downgraded) chain is reported too. The chain head (`verify --json`'s "head") can be kept elsewhere (a ticket,
a log) and checked later with `verify --head`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from playbook_nb.domain.errors import PlaybookError

KEY_ENV = "PLAYBOOK_CHAIN_KEY"
KEY_FILE_ENV = "PLAYBOOK_CHAIN_KEY_FILE"
KEYED_PREFIX = "hmac-sha256:"


def chain_key(env: Mapping[str, str] | None = None) -> bytes | None:
    """The chain key: `PLAYBOOK_CHAIN_KEY`, else the contents of the file `PLAYBOOK_CHAIN_KEY_FILE` names
    (surrounding whitespace stripped); None when neither is set."""
    env = os.environ if env is None else env
    value = env.get(KEY_ENV, "")
    if value:
        return value.encode("utf-8")
    path = env.get(KEY_FILE_ENV, "")
    if not path:
        return None
    try:
        key = Path(path).read_bytes().strip()
    except OSError as err:
        raise PlaybookError(
            f"{KEY_FILE_ENV}={path}: cannot read the chain key ({err.strerror or err})"
        ) from None
    if not key:
        raise PlaybookError(f"{KEY_FILE_ENV}={path}: the chain key file is empty")
    return key


# what `json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` builds at each call
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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
    key: bytes | None = None,
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
    canonical = _CANONICAL.encode(fields)
    message = (prev_hash + canonical).encode("utf-8")
    import hashlib  # at use (as hmac below): hashlib loads OpenSSL, a read-only command never hashes
    import hmac

    if key is not None:
        return KEYED_PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()
    return hashlib.sha256(message).hexdigest()


def verify_chain(
    run_id: int,
    rows: Iterable[dict[str, Any]],
    event_count: int,
    event_head: str,
    key: bytes | None = None,
) -> list[str]:
    """Problems found in one run's stored events (dicts with the raw column values), ordered by seq. With
    `key`, every event must carry a hash under it; without, a keyed event cannot be checked (a problem)."""
    problems: list[str] = []
    prev_hash = ""
    expected_seq = 1
    last_seq = 0
    for row in rows:
        seq = row["seq"]
        keyed = str(row["hash"]).startswith(KEYED_PREFIX)
        if keyed and key is None:
            problems.append(
                f"run {run_id}: event seq {seq} is keyed (HMAC); set {KEY_ENV} or {KEY_FILE_ENV} to verify it"
            )
        elif key is not None and not keyed:
            problems.append(
                f"run {run_id}: event seq {seq} is not keyed although a chain key is configured "
                "(recorded without the key, or rewritten by someone without it)"
            )
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
            key=key if keyed else None,
        )
        import hmac

        if (key is not None or not keyed) and not hmac.compare_digest(recomputed, str(row["hash"])):
            problems.append(f"run {run_id}: event seq {seq} ({row['kind']}) was modified (hash mismatch)")
        prev_hash = row["hash"]
        expected_seq = seq + 1
        last_seq = seq
    if last_seq != event_count:
        problems.append(f"run {run_id}: {event_count} events recorded, last event found is seq {last_seq}")
    if prev_hash != event_head:
        problems.append(f"run {run_id}: last event's hash does not match the chain head kept on the run")
    return problems
