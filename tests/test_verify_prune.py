"""`verify RUN` detects edited, deleted and inserted events; `runs prune` removes old finished runs only.

Tampering is done the way an attacker with a SQLite shell would: drop the append-only triggers, then edit.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from conftest import FIXTURES, run_cli

from playbook_nb.adapters.store import Store
from playbook_nb.adapters.store.hashing import event_hash

DEPLOY = FIXTURES / "deploy_pipeline.playbook.toml"
DEPLOY_ARGS = ["--var", "ENVIRONMENT=staging", "--approve", "approve_deploy"]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A run index holding one finished terminal run of the deploy pipeline."""
    db = tmp_path_factory.mktemp("verify") / "runs.db"
    result = run_cli("run", str(DEPLOY), *DEPLOY_ARGS, "--state-path", str(db))
    assert result.returncode == 0, result.stdout + result.stderr
    return db


@pytest.fixture
def db(recorded, tmp_path):
    """A private copy of the recorded index, free to tamper with."""
    copy = tmp_path / "runs.db"
    shutil.copyfile(recorded, copy)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(f"{recorded}{suffix}"):
            shutil.copyfile(f"{recorded}{suffix}", f"{copy}{suffix}")
    return copy


def tamper(db, *statements, params=()):
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER IF EXISTS events_no_update")
    conn.execute("DROP TRIGGER IF EXISTS events_no_delete")
    for statement in statements:
        conn.execute(statement, params)
    conn.commit()
    conn.close()


def verify(db, run_id="1"):
    return run_cli("verify", run_id, "--state-path", str(db))


def test_an_untouched_run_verifies(db):
    result = verify(db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: run 1 event hash chain intact" in result.stdout


def test_an_edited_payload_is_detected(db):
    tamper(db, 'UPDATE events SET payload = \'{"state":"NOK"}\' WHERE run_id = 1 AND seq = 3')
    result = verify(db)
    assert result.returncode == 1, result.stdout
    assert "event seq 3" in result.stdout and "modified (hash mismatch)" in result.stdout


def test_an_edited_actor_is_detected(db):
    tamper(db, "UPDATE events SET payload = replace(payload, 'root', 'mallory') WHERE kind = 'decision'")
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM events WHERE payload LIKE '%mallory%'").fetchone()[0] == 1
    conn.close()
    result = verify(db)
    assert result.returncode == 1
    assert "(decision) was modified" in result.stdout


def test_a_deleted_middle_event_is_detected(db):
    tamper(db, "DELETE FROM events WHERE run_id = 1 AND seq = 5")
    result = verify(db)
    assert result.returncode == 1
    assert "seq 6 found where seq 5 was expected" in result.stdout


def test_a_deleted_last_event_is_detected(db):
    tamper(db, "DELETE FROM events WHERE run_id = 1 AND seq = (SELECT MAX(seq) FROM events WHERE run_id = 1)")
    result = verify(db)
    assert result.returncode == 1
    assert "events recorded" in result.stdout


def test_an_inserted_event_with_a_valid_link_is_detected(db):
    """The forged event even carries a correct hash link; only the chain head kept on the run betrays it."""
    conn = sqlite3.connect(db)
    seq, head = conn.execute(
        "SELECT MAX(seq), (SELECT event_head FROM runs WHERE id = 1) FROM events"
    ).fetchone()
    conn.close()
    at = datetime.now(UTC).isoformat(timespec="microseconds")
    payload = '{"actor":"mallory","decision":"approve"}'
    digest = event_hash(
        head,
        run_id=1,
        seq=seq + 1,
        at=at,
        kind="decision",
        node_id="approve_deploy",
        attempt=None,
        payload=payload,
    )
    tamper(
        db,
        "INSERT INTO events (run_id, seq, at, kind, node_id, attempt, payload, prev_hash, hash)"
        " VALUES (1, ?, ?, 'decision', 'approve_deploy', NULL, ?, ?, ?)",
        params=(seq + 1, at, payload, head, digest),
    )
    result = verify(db)
    assert result.returncode == 1
    assert "chain head" in result.stdout or "events recorded" in result.stdout


def test_an_inserted_middle_event_is_detected(db):
    """Shift the later events up by one and slip a forged event in at seq 4."""
    tamper(
        db,
        "UPDATE events SET seq = seq + 1000 WHERE run_id = 1 AND seq >= 4",
        "UPDATE events SET seq = seq - 999 WHERE run_id = 1 AND seq >= 1004",
    )
    conn = sqlite3.connect(db)
    prev = conn.execute("SELECT hash FROM events WHERE run_id = 1 AND seq = 3").fetchone()[0]
    conn.execute(
        "INSERT INTO events (run_id, seq, at, kind, node_id, attempt, payload, prev_hash, hash)"
        " VALUES (1, 4, '2020-01-01T00:00:00+00:00', 'note', NULL, NULL, '{}', ?, 'forged')",
        (prev,),
    )
    conn.commit()
    conn.close()
    result = verify(db)
    assert result.returncode == 1
    assert "event seq 4 (note) was modified" in result.stdout


def test_the_report_shows_a_broken_chain(db, tmp_path):
    tamper(db, "DELETE FROM events WHERE run_id = 1 AND seq = 5")
    out = tmp_path / "r.html"
    result = run_cli("export", "1", "--html", str(out), "--state-path", str(db))
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert "Hash chain verification FAILED" in html and "seq 6 found where seq 5 was expected" in html


def test_verify_of_a_missing_run(db):
    result = verify(db, "42")
    assert result.returncode == 2
    assert "no run 42" in result.stderr


# ---- prune --------------------------------------------------------------------------------------------------


@pytest.fixture
def prune_db(tmp_path):
    """Run 1 (OK, 40 days old, 10 kB of artifacts), run 2 (OK, recent), run 3 (RUNNING, 40 days old: a
    process that died without closing its run), run 4 (NOK, 40 days old)."""
    db = tmp_path / "state" / "runs.db"
    for _ in range(2):
        result = run_cli("run", str(DEPLOY), *DEPLOY_ARGS, "--state-path", str(db))
        assert result.returncode == 0, result.stdout + result.stderr
    with Store.open(db) as store:
        running = store.create_run(
            workflow="stuck", title="stuck", runbook_text="", runbook_sha256="0" * 64, runbook_version=None,
            variables={}, params={}, trigger="terminal", actor="bob", host="h", mode="interactive",
            node_ids=["a"],
        )  # fmt: skip
        failed = store.create_run(
            workflow="broken", title="broken", runbook_text="", runbook_sha256="0" * 64, runbook_version=None,
            variables={}, params={}, trigger="terminal", actor="bob", host="h", mode="interactive",
            node_ids=["a"],
        )  # fmt: skip
        store.set_run_status(failed.id, "NOK", reason="test")
        dirs = {run_id: store.artifact_dir(run_id) for run_id in (1, 2, running.id, failed.id)}
    (dirs[1] / "big.bin").write_bytes(b"x" * 10_000)
    (dirs[running.id] / "partial.txt").write_text("in flight")
    old = (datetime.now(UTC) - timedelta(days=40)).isoformat(timespec="microseconds")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE runs SET started_at = ? WHERE id IN (1, 3, 4)", (old,))
    conn.commit()
    conn.close()
    return db, dirs


def run_ids(db):
    conn = sqlite3.connect(db)
    ids = [row[0] for row in conn.execute("SELECT id FROM runs ORDER BY id")]
    conn.close()
    return ids


def test_prune_dry_run_removes_nothing(prune_db):
    db, dirs = prune_db
    result = run_cli("runs", "prune", "--older-than", "30d", "--dry-run", "--state-path", str(db))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "would remove 2 run(s)" in result.stdout and "10000 bytes" in result.stdout
    assert run_ids(db) == [1, 2, 3, 4]
    assert all(d.exists() for d in dirs.values())


def test_prune_removes_old_finished_runs_and_keeps_running_ones(prune_db):
    db, dirs = prune_db
    result = run_cli("runs", "prune", "--older-than", "30d", "--state-path", str(db))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "removed 2 run(s), freed" in result.stdout and "(10000 bytes)" in result.stdout
    assert "kept 1 RUNNING run(s) older than that: 3" in result.stdout
    assert run_ids(db) == [2, 3]
    assert not dirs[1].exists() and not dirs[4].exists()
    assert dirs[2].exists() and (dirs[3] / "partial.txt").exists()
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM events WHERE run_id IN (1, 4)").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM attempts WHERE run_id = 1").fetchone()[0] == 0
    conn.close()
    assert verify(db, "2").returncode == 0  # the runs left keep an intact chain


def test_prune_by_status(prune_db):
    db, _dirs = prune_db
    result = run_cli("runs", "prune", "--older-than", "30d", "--status", "nok", "--state-path", str(db))
    assert result.returncode == 0, result.stderr
    assert "removed 1 run(s)" in result.stdout
    assert run_ids(db) == [1, 2, 3]


def test_prune_age_units(prune_db):
    db, _dirs = prune_db
    result = run_cli("runs", "prune", "--older-than", "90m", "--dry-run", "--state-path", str(db))
    assert "would remove 2 run(s)" in result.stdout
    result = run_cli("runs", "prune", "--older-than", "1000h", "--dry-run", "--state-path", str(db))
    assert "would remove 0 run(s)" in result.stdout  # 41 days


@pytest.mark.parametrize(
    "args, message",
    [
        (["--older-than", "30x"], "expected a number and a unit"),
        (["--older-than", "30d", "--status", "RUNNING"], "only finished runs are pruned"),
    ],
)
def test_prune_bad_arguments(prune_db, args, message):
    db, _dirs = prune_db
    result = run_cli("runs", "prune", *args, "--state-path", str(db))
    assert result.returncode == 2
    assert message in result.stderr
    assert run_ids(db) == [1, 2, 3, 4]


def test_prune_uses_the_configured_retention_counted_from_the_end(prune_db, tmp_path):
    """The seed's time to live of finished runs: `[runs] retention`, from a run's end (issue 21)."""
    db, dirs = prune_db
    conn = sqlite3.connect(db)
    old = (datetime.now(UTC) - timedelta(days=40)).isoformat(timespec="microseconds")
    conn.execute("UPDATE runs SET ended_at = ? WHERE id = 1", (old,))
    conn.execute("UPDATE runs SET ended_at = ? WHERE id = 4", (datetime.now(UTC).isoformat(),))
    conn.commit()
    conn.close()
    config = tmp_path / "playbook.toml"
    config.write_text('[runs]\nretention = "30d"\n')
    env = {"PLAYBOOK_CONFIG": str(config)}
    result = run_cli("runs", "prune", "--state-path", str(db), env=env)
    assert result.returncode == 0, result.stderr
    assert "retention 30d (configuration)" in result.stdout and "removed 1 run(s)" in result.stdout
    assert run_ids(db) == [2, 3, 4]  # run 4 started 40 days ago but ended today: kept

    bad = tmp_path / "bad.toml"
    bad.write_text('[runs]\nretention = "a month"\n')
    result = run_cli("runs", "prune", "--state-path", str(db), env={"PLAYBOOK_CONFIG": str(bad)})
    assert result.returncode == 2 and "retention" in result.stderr and "a month" in result.stderr
    (tmp_path / "empty.toml").write_text("")
    result = run_cli(
        "runs", "prune", "--state-path", str(db), env={"PLAYBOOK_CONFIG": str(tmp_path / "empty.toml")}
    )
    assert result.returncode == 2 and "give --older-than AGE, or set a retention" in result.stderr
    assert run_ids(db) == [2, 3, 4]
