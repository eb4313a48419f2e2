"""Storage faults under a run (issue 24 point 5), real ones: the index on a small tmpfs that fills up or is
remounted read-only, and a second connection holding the write lock past the busy timeout. The run stops,
the exit code is its own (4), the one error line names the file and the cause, no earlier record is lost or
corrupt (PRAGMA integrity_check, the event chains), and the run is recorded ABORTED as soon as the index is
writable again (here: when the next command opens it), then resumes to OK."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess

import pytest
from abort_helpers import rows, start_cli, wait_for
from conftest import run_cli, write_runbook
from test_reliability import _broken_chains, _integrity, _tmpfs, mountable  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow


def _runbook(tmp_path, flag):
    body = (
        '\n[first]\ntype = "Command"\ncommand_name = "echo first"\n'
        f'\n[big]\ntype = "Command"\ncommand_name = "while [ ! -e {flag} ]; do sleep 0.05; done; '
        "head -c 1500000 /dev/zero | tr '\\\\000' x\"\n"
        '\n[last]\ntype = "Command"\ncommand_name = "echo last"\n'
    )
    return write_runbook(tmp_path, "faults", "storage faults", body)


def _fill(directory) -> None:
    with contextlib.suppress(OSError), (directory / "filler").open("wb") as fh:
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()


def _start_and_wait(runbook, db):
    proc = start_cli("run", str(runbook), "--state-path", str(db), env={"PLAYBOOK_DB_BUSY_TIMEOUT": "1"})
    big = lambda: rows(db, "SELECT run_id FROM attempts WHERE node_id = 'big' AND status = 'RUNNING'")  # noqa: E731
    found = wait_for(lambda: db.exists() and big(), what="the big node", proc=proc)
    return proc, found[0]["run_id"]


def _check_fault_then_recovery(tmp_path, runbook, flag, db, proc, run_id, cause: str, repair) -> None:
    flag.write_text("")
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 4, (stdout[-2000:], stderr)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    assert str(db) in errors[0] and cause in errors[0], errors[0]
    assert "ABORTED" in errors[0], errors[0]
    repair()
    assert _integrity(db) == "ok"
    listed = run_cli("runs", "list", "--state-path", str(db))  # the next command to open the index
    assert listed.returncode == 0, listed.stderr
    (run,) = rows(db, "SELECT * FROM runs WHERE id = ?", (run_id,))
    assert run["status"] == "ABORTED" and "storage fault" in run["status_reason"], dict(run)
    states = dict(
        (r["node_id"], r["state"]) for r in rows(db, "SELECT * FROM node_states WHERE run_id = ?", (run_id,))
    )
    assert states["first"] == "OK" and states["big"] == "PENDING", states
    assert (
        rows(db, "SELECT status FROM attempts WHERE run_id = ? AND node_id = 'big'", (run_id,))[0][0]
        == "INTERRUPTED"
    )
    (earlier,) = rows(db, "SELECT * FROM runs WHERE id = ?", (run_id - 1,))
    assert earlier["status"] == "OK"  # the run before is intact ...
    assert _broken_chains(db, run_id - 1) == [] and _broken_chains(db, run_id) == []  # ... and both chains
    done = run_cli("resume", str(runbook), str(run_id), "--state-path", str(db))
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr)
    assert rows(db, "SELECT status FROM runs WHERE id = ?", (run_id,))[0][0] == "OK"


def test_disk_full_stops_the_run_exit_4_then_aborted_once_writable(tmp_path, mountable):  # noqa: F811
    flag = tmp_path / "go"
    runbook = _runbook(tmp_path, flag)
    with _tmpfs(tmp_path / "idx", "size=6m") as idx:
        db = idx / "runs.db"
        flag.write_text("")
        assert run_cli("run", str(runbook), "--state-path", str(db)).returncode == 0  # an earlier record
        flag.unlink()
        proc, run_id = _start_and_wait(runbook, db)
        _fill(idx)
        _check_fault_then_recovery(
            tmp_path, runbook, flag, db, proc, run_id, "database or disk is full", (idx / "filler").unlink
        )


def test_read_only_index_refuses_a_run_with_exit_4_and_loses_nothing(tmp_path, mountable):  # noqa: F811
    """Linux refuses to remount a filesystem read-only while a process writes to it, so the index is made
    read-only between two runs: the run cannot start, exit 4, one line naming the file and the cause; the
    earlier records are intact, and once writable again a run goes through."""
    flag = tmp_path / "go"
    flag.write_text("")
    runbook = _runbook(tmp_path, flag)
    with _tmpfs(tmp_path / "idx", "size=16m") as idx:
        db = idx / "runs.db"
        assert run_cli("run", str(runbook), "--state-path", str(db)).returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(idx)], check=True)
        try:
            done = run_cli("run", str(runbook), "--state-path", str(db))
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(idx)], check=True)
        assert done.returncode == 4, (done.stdout, done.stderr)
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
        assert str(db) in errors[0] and ("readonly" in errors[0] or "read-only" in errors[0]), errors[0]
        assert _integrity(db) == "ok"
        assert [r["status"] for r in rows(db, "SELECT status FROM runs")] == ["OK"]
        assert _broken_chains(db, 1) == []
        assert run_cli("run", str(runbook), "--state-path", str(db)).returncode == 0


def test_lock_held_past_the_busy_timeout_stops_the_run_exit_4(tmp_path):
    flag = tmp_path / "go"
    runbook = _runbook(tmp_path, flag)
    db = tmp_path / "runs.db"
    flag.write_text("")
    assert run_cli("run", str(runbook), "--state-path", str(db)).returncode == 0
    flag.unlink()
    proc, run_id = _start_and_wait(runbook, db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a second writer that does not let go
    try:
        _check_fault_then_recovery(
            tmp_path,
            runbook,
            flag,
            db,
            proc,
            run_id,
            "database is locked",
            lambda: holder.execute("ROLLBACK"),
        )
    finally:
        holder.close()


def test_an_object_store_refusing_the_notebook_exits_4_and_keeps_the_record_honest(tmp_path):
    """The artifact store (moto's real S3 server) refuses the upload of the executed notebook: exit 4, one
    line naming the URL and the cause; the index is intact and points at no temporary file."""
    from s3_server import S3_ENV, s3_server

    runbook = write_runbook(
        tmp_path, "s3", "s3 refuses", '\n[hello]\ntype = "Command"\ncommand_name = "echo hello"\n'
    )
    db = tmp_path / "runs.db"
    with s3_server() as endpoint:  # no bucket was made: every upload is refused (NoSuchBucket)
        env = {**S3_ENV, "PLAYBOOK_S3_ENDPOINT_URL": endpoint, "PLAYBOOK_ARTIFACTS_URL": "s3://missing/runs"}
        done = run_cli("run", str(runbook), "--headless", "--state-path", str(db), env=env, timeout=300)
    assert done.returncode == 4, (done.stdout[-2000:], done.stderr)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "s3://missing/runs/1/notebook.ipynb" in errors[0] and "could not be filed" in errors[0], errors[0]
    assert _integrity(db) == "ok"
    (run,) = rows(db, "SELECT * FROM runs")
    assert run["status"] == "OK"  # the run itself went through; its notebook could not be filed
    assert not run["notebook_path"], run["notebook_path"]
    assert _broken_chains(db, run["id"]) == []


def test_postgres_lock_past_the_timeout_rolls_the_transition_back_whole(pg_url):
    """PostgreSQL: a second session holds a lock on the events table past our lock_timeout while a node
    starts. The transition (node state, run counts, event) is rolled back whole, the error is a storage
    fault naming the index, and once the lock is gone the run is recorded ABORTED, its chain intact."""
    import psycopg

    from playbook_nb.adapters.executors.local import LocalExecutor
    from playbook_nb.adapters.store import Store
    from playbook_nb.app.session import RunOptions, RunSession
    from playbook_nb.domain.errors import StorageFault
    from playbook_nb.domain.validation import parse_runbook

    runbook = parse_runbook(
        '[runbook]\ntitle = "pg fault"\n\n[first]\ntype = "Command"\ncommand_name = "echo one"\n'
        '\n[second]\ntype = "Command"\ncommand_name = "echo two"\n'
    )
    with Store.open(pg_url, timeout=1.0) as store:
        session = RunSession.start(runbook, {}, store, RunOptions(headless=True), executor=LocalExecutor())
        assert session.run_node("first").state.value == "OK"
        before = store.get_run(session.run_id)
        holder = psycopg.connect(pg_url, autocommit=False)
        try:
            holder.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(StorageFault) as caught:
                session.run_node("second")
            assert "cannot write the run index" in str(caught.value) and "lock" in str(caught.value)
        finally:
            holder.rollback()
            holder.close()
        after = store.get_run(session.run_id)
        assert (after.event_count, after.event_head, after.counts) == (
            before.event_count,
            before.event_head,
            before.counts,
        )
        assert {n.node_id: n.state for n in store.node_states(session.run_id)}["second"] == "PENDING"
        assert session.storage_fault(caught.value) is True
        run = store.get_run(session.run_id)
        assert run.status == "ABORTED" and run.status_reason.startswith("storage fault: ")
        assert store.verify_events(session.run_id) == []
