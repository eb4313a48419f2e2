"""The keyed event hash chain (issue 19.7): with a chain key (PLAYBOOK_CHAIN_KEY or a file named by
PLAYBOOK_CHAIN_KEY_FILE) every event is HMAC-chained, so `verify` catches a rewrite by someone without the
key, even one who recomputed every hash and the run's head; the head can be exported and checked later."""

from __future__ import annotations

import json
import sqlite3

from conftest import run_cli, write_runbook

from playbook_nb.adapters.store import hashing

KEY = "k3y-kept-in-a-vault-0042"


def rewrite_chain(db, key: bytes | None) -> None:
    """What a forger with write access to the index does: change an event, then recompute every hash and the
    run's chain head (unkeyed, or under a key that is not the real one)."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    conn.execute("DROP TRIGGER IF EXISTS events_no_update")  # append-only guards a forger removes first
    conn.execute("DROP TRIGGER IF EXISTS events_no_delete")
    conn.execute(
        "UPDATE events SET payload = replace(payload, 'OK', 'NOK') WHERE run_id = 1 AND kind = 'run_state'"
    )
    prev = ""
    for row in conn.execute("SELECT * FROM events WHERE run_id = 1 ORDER BY seq").fetchall():
        digest = hashing.event_hash(
            prev, run_id=1, seq=row["seq"], at=row["at"], kind=row["kind"], node_id=row["node_id"],
            attempt=row["attempt"], payload=row["payload"], key=key,
        )  # fmt: skip
        conn.execute("UPDATE events SET prev_hash = ?, hash = ? WHERE id = ?", (prev, digest, row["id"]))
        prev = digest
    conn.execute("UPDATE runs SET event_head = ? WHERE id = 1", (prev,))
    conn.commit()
    conn.close()


def verify(db, *args, env=None):
    return run_cli("verify", "1", "--state-path", str(db), "--json", *args, env=env or {})


def test_a_keyed_chain_catches_a_rewrite_by_someone_without_the_key(tmp_path):
    book = write_runbook(tmp_path, "hello", "Hello", '[hello]\ntype = "Command"\ncommand_name = "echo hi"\n')
    key_file = tmp_path / "chain.key"
    key_file.write_text(KEY + "\n")
    keyed = {"PLAYBOOK_CHAIN_KEY_FILE": str(key_file)}
    db = tmp_path / "runs.db"
    ran = run_cli("run", str(book), "--state-path", str(db), env=keyed)
    assert ran.returncode == 0, ran.stderr

    ok = verify(db, env=keyed)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["intact"] and doc["keyed"] and doc["head"].startswith("hmac-sha256:")
    head = doc["head"]
    assert verify(db, env={"PLAYBOOK_CHAIN_KEY": KEY}).returncode == 0  # the key from the environment too
    assert verify(db, "--head", head, env=keyed).returncode == 0  # the exported head, checked later

    no_key = verify(db)
    assert no_key.returncode == 1
    assert "is keyed (HMAC); set PLAYBOOK_CHAIN_KEY" in json.loads(no_key.stdout)["problems"][0]

    # A forger without the key rewrites the outcome and recomputes an unkeyed chain and head: the plain
    # check is fooled, the keyed one is not.
    rewrite_chain(db, key=None)
    assert verify(db).returncode == 0  # what an unkeyed chain could never tell
    forged = verify(db, env=keyed)
    assert forged.returncode == 1
    assert "not keyed although a chain key is configured" in forged.stdout
    assert verify(db, "--head", head).returncode == 1  # nor does it end in the exported head

    # ... or under a key of their own.
    rewrite_chain(db, key=b"a guessed key")
    forged = verify(db, env=keyed)
    assert forged.returncode == 1 and "was modified (hash mismatch)" in forged.stdout

    bad_file = run_cli(
        "verify", "1", "--state-path", str(db), env={"PLAYBOOK_CHAIN_KEY_FILE": str(tmp_path / "nope")}
    )
    assert bad_file.returncode == 2 and "cannot read the chain key" in bad_file.stderr
    assert "Traceback" not in bad_file.stderr
