"""The run record store on real SQLite files: schema, concurrency, hash chain, status rules, errors."""

from __future__ import annotations

import enum
import hashlib
import multiprocessing
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from playbook_nb.errors import StoreError
from playbook_nb.store import INTERRUPTED_ERROR, SQLiteStore, Store, resolve_db_path
from playbook_nb.store.hashing import event_hash
from playbook_nb.store.migrate import latest_version, load_migrations

T0 = datetime(2025, 1, 20, 12, 0, 0, tzinfo=UTC)
RUNBOOK = '[runbook]\ntitle = "Deploy {{APP}}"\n\n[build]\ntype = "Command"\ncommand_name = "make"\n'


def new_run(
    store: Store, workflow: str = "Deploy {{APP}}", *, started_at=None, nodes=("build", "gate", "ship")
):
    return store.create_run(
        workflow=workflow,
        title=workflow.replace("{{APP}}", "web"),
        runbook_text=RUNBOOK,
        runbook_sha256=hashlib.sha256(RUNBOOK.encode()).hexdigest(),
        runbook_version="1.0.0",
        variables={"APP": "web", "TOKEN": "********"},
        params={"approvals": {"gate": "approve"}},
        trigger="terminal",
        actor="alice",
        host="box1",
        mode="headless",
        node_ids=list(nodes),
        started_at=started_at,
    )


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection, as with the sqlite3 shell, the append-only guard triggers dropped."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER IF EXISTS events_no_update")
    conn.execute("DROP TRIGGER IF EXISTS events_no_delete")
    return conn


@pytest.fixture
def store(state_db):
    with Store.open(state_db) as s:
        yield s


# ---- schema and opening --------------------------------------------------------------------------


def test_migrations_create_schema_and_set_user_version(state_db):
    assert not state_db.parent.exists()
    with Store.open(state_db) as store:
        assert isinstance(store, SQLiteStore)
        assert store.schema_version == latest_version() == len(load_migrations()) >= 1
    conn = sqlite3.connect(state_db)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    assert {"runs", "node_states", "attempts", "decisions", "events"} <= names
    assert {"runs_workflow_started", "runs_status_started", "runs_started"} <= names
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == latest_version()


def test_reopening_is_idempotent_and_keeps_data(state_db):
    with Store.open(state_db) as store:
        run = new_run(store)
    for _ in range(2):
        with Store.open(state_db) as store:
            assert store.schema_version == latest_version()
            assert store.get_run(run.id).workflow == "Deploy {{APP}}"
    conn = sqlite3.connect(state_db)
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


def test_database_from_a_newer_version_is_refused(state_db):
    Store.open(state_db).close()
    conn = sqlite3.connect(state_db)
    conn.execute(f"PRAGMA user_version = {latest_version() + 1}")
    conn.close()
    with pytest.raises(StoreError, match=r"newer than this playbook-nb"):
        Store.open(state_db)


def test_open_accepts_sqlite_url_and_refuses_postgres_for_now(tmp_path):
    with Store.open(f"sqlite:///{tmp_path}/u/runs.db") as store:
        assert store.path == tmp_path / "u" / "runs.db"
    with pytest.raises(StoreError, match="PostgreSQL"):
        Store.open("postgresql://user:secret@db.example/playbook")


def test_unwritable_directory_is_one_clear_store_error(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    target = blocker / "state" / "runs.db"
    with pytest.raises(StoreError) as info:
        Store.open(target)
    message = str(info.value)
    assert str(blocker) in message and "\n" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory_is_a_store_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="not writable"):
            Store.open(locked / "runs.db")
    finally:
        locked.chmod(0o700)


def test_missing_run_names_the_run_and_the_file(store):
    with pytest.raises(StoreError) as info:
        store.get_run(42)
    assert str(info.value) == f"no run 42 in {store.path}"
    for call in (store.node_states, store.events, store.verify_events, store.mark_interrupted):
        with pytest.raises(StoreError, match="no run 42"):
            call(42)


# ---- runs, nodes, attempts, decisions ------------------------------------------------------------


def test_create_run_records_everything_and_starts_the_chain(store):
    run = new_run(store, started_at=T0)
    assert (run.id, run.number, run.status, run.title) == (1, 1, "RUNNING", "Deploy web")
    assert run.started_at == T0 and run.ended_at is None
    assert run.variables == {"APP": "web", "TOKEN": "********"}
    assert run.params == {"approvals": {"gate": "approve"}}
    assert run.runbook_text == RUNBOOK and run.runbook_version == "1.0.0"
    assert run.counts == {"PENDING": 3}
    assert [(n.node_id, n.state, n.attempts, n.failed) for n in store.node_states(run.id)] == [
        ("build", "PENDING", 0, False),
        ("gate", "PENDING", 0, False),
        ("ship", "PENDING", 0, False),
    ]
    [event] = store.events(run.id)
    assert (event.seq, event.kind, event.prev_hash) == (1, "run_started", "")
    assert event.payload["trigger"] == "terminal" and event.payload["number"] == 1
    assert store.verify_events(run.id) == []
    assert new_run(store).number == 2
    assert new_run(store, "Other").number == 1


def test_bad_trigger_or_mode_is_refused(store):
    with pytest.raises(StoreError, match="valid: terminal, notebook, papermill, widget, resume"):
        store.create_run(
            workflow="W", title="W", runbook_text="", runbook_sha256="", runbook_version=None, variables={},
            params={}, trigger="cron", actor=None, host=None, mode="headless", node_ids=["a"],
        )  # fmt: skip


def test_a_failing_write_leaves_no_half_written_run(store, state_db):
    conn = sqlite3.connect(state_db)
    conn.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON node_states WHEN NEW.node_id = 'ship'"
        " BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
    )
    conn.commit()
    with pytest.raises(StoreError, match="disk trouble") as info:
        new_run(store)
    assert str(state_db) in str(info.value)
    counts = [
        conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("runs", "node_states", "events")
    ]
    assert counts == [0, 0, 0]


def test_node_states_attempts_and_decisions(store):
    run = new_run(store)
    store.set_node_state(run.id, "build", "RUNNING", attempts=1)
    store.start_attempt(run.id, "build", 1, T0)
    store.finish_attempt(
        run.id, "build", 1, status="NOK", ended_at=T0 + timedelta(seconds=2.5), exit_code=2,
        stdout="out", stderr="err", result=None, error="exit code 2",
    )  # fmt: skip
    store.start_attempt(run.id, "build", 2, T0 + timedelta(seconds=10))
    store.finish_attempt(
        run.id, "build", 2, status="OK", ended_at=T0 + timedelta(seconds=11), exit_code=0,
        stdout="ok", stderr="", result={"rows": [1, 2]}, error=None, duration=0.75,
    )  # fmt: skip
    store.set_node_state(run.id, "build", "OK", attempts=2, failed=False)
    store.set_node_state(run.id, "gate", "WAITING", reason="awaits approval")
    store.record_decision(run.id, "gate", "approve", "bob", "looks fine", T0 + timedelta(seconds=20))

    attempts = store.attempts(run.id, "build")
    assert [(a.attempt, a.status, a.exit_code, a.duration) for a in attempts] == [
        (1, "NOK", 2, 2.5),
        (2, "OK", 0, 0.75),
    ]
    assert attempts[1].result == {"rows": [1, 2]} and attempts[0].error == "exit code 2"
    states = {n.node_id: n for n in store.node_states(run.id)}
    assert (states["build"].state, states["build"].attempts, states["build"].reason) == ("OK", 2, None)
    assert (states["gate"].state, states["gate"].reason) == ("WAITING", "awaits approval")
    assert store.get_run(run.id).counts == {"OK": 1, "WAITING": 1, "PENDING": 1}
    [decision] = store.decisions(run.id)
    assert (decision.node_id, decision.decision, decision.actor, decision.comment) == (
        "gate", "approve", "bob", "looks fine",
    )  # fmt: skip

    with pytest.raises(StoreError, match="no node 'nope'"):
        store.set_node_state(run.id, "nope", "OK")
    with pytest.raises(StoreError, match="valid: PENDING, RUNNING, WAITING, OK, NOK, SKIPPED"):
        store.set_node_state(run.id, "ship", "DONE")
    with pytest.raises(StoreError, match="already exists"):
        store.start_attempt(run.id, "build", 2, T0)
    with pytest.raises(StoreError, match="no attempt 9"):
        store.finish_attempt(run.id, "build", 9, status="OK", ended_at=T0)


def test_enum_values_and_epoch_timestamps_are_accepted(store):
    class State(enum.Enum):
        SKIPPED = "SKIPPED"

    run = new_run(store)
    store.set_node_state(run.id, "ship", State.SKIPPED, reason="condition false")
    store.start_attempt(run.id, "build", 1, T0.timestamp())
    assert store.node_states(run.id)[2].state == "SKIPPED"
    assert store.attempts(run.id)[0].started_at == T0


def test_run_status_snapshot_notebook_and_artifacts(store, state_db):
    run = new_run(store)
    assert store.load_snapshot(run.id) is None
    store.save_snapshot(run.id, {"states": {"build": "OK"}, "attempts": {"build": 1}})
    assert store.load_snapshot(run.id) == {"states": {"build": "OK"}, "attempts": {"build": 1}}
    store.set_notebook_path(run.id, "/tmp/x.ipynb")
    store.set_run_status(run.id, "ABORTED", reason="gate not approved", ended_at=T0)
    directory = store.artifact_dir(run.id)
    assert directory == state_db.parent / "artifacts" / str(run.id) and directory.is_dir()
    got = store.get_run(run.id)
    assert (got.status, got.status_reason, got.ended_at) == ("ABORTED", "gate not approved", T0)
    assert (got.notebook_path, got.artifact_dir) == ("/tmp/x.ipynb", str(directory))


def test_artifacts_root_can_be_given(tmp_path):
    with Store.open(tmp_path / "db" / "runs.db", artifacts_root=tmp_path / "blobs") as store:
        run = new_run(store)
        assert store.artifact_dir(run.id) == tmp_path / "blobs" / str(run.id)


# ---- concurrency ---------------------------------------------------------------------------------


def _create_runs(path: str, worker: int, count: int) -> list[tuple[int, str, int]]:
    created = []
    with Store.open(path) as store:
        for i in range(count):
            workflow = "shared" if i % 2 == 0 else f"mine-{worker % 2}"
            run = new_run(store, workflow, nodes=("a", "b"))
            store.append_event(run.id, "note", payload={"worker": worker, "i": i})
            store.set_node_state(run.id, "a", "OK", attempts=1)
            created.append((run.id, run.workflow, run.number))
    return created


@pytest.mark.slow
def test_four_processes_creating_runs_get_unique_numbers(state_db):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_create_runs, [(str(state_db), w, 50) for w in range(4)])
    created = [row for rows in results for row in rows]
    assert len(created) == 200
    assert len({run_id for run_id, _, _ in created}) == 200
    with Store.open(state_db) as store:
        runs = store.list_runs(limit=1000)
        assert len(runs) == 200
        by_workflow: dict[str, list[int]] = {}
        for run in runs:
            by_workflow.setdefault(run.workflow, []).append(run.number)
        assert sorted(by_workflow["shared"]) == list(range(1, 101))
        assert sorted(by_workflow["mine-0"]) == list(range(1, 51))
        assert sorted(by_workflow["mine-1"]) == list(range(1, 51))
        assert all(store.verify_events(run.id) == [] for run in runs)
        assert all(run.event_count == 2 and run.counts == {"OK": 1, "PENDING": 1} for run in runs)


# ---- event hash chain ----------------------------------------------------------------------------


@pytest.fixture
def chained(store):
    run = new_run(store)
    for i in range(2, 6):
        assert store.append_event(run.id, "node_state", node_id="build", attempt=1, payload={"i": i}) == i
    assert store.verify_events(run.id) == []
    return store, run


def test_events_are_append_only_through_sql(chained, state_db):
    _, run = chained
    conn = sqlite3.connect(state_db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE events SET payload = '{}' WHERE run_id = ?", (run.id,))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM events WHERE run_id = ?", (run.id,))


def test_chain_detects_an_edited_payload(chained, state_db):
    store, run = chained
    conn = raw(state_db)
    conn.execute("UPDATE events SET payload = '{\"i\":99}' WHERE run_id = ? AND seq = 3", (run.id,))
    problems = store.verify_events(run.id)
    assert problems and any("seq 3" in p and "modified" in p for p in problems)


def test_chain_detects_an_inserted_event(chained, state_db):
    store, run = chained
    conn = raw(state_db)
    (head,) = conn.execute("SELECT hash FROM events WHERE run_id = ? AND seq = 5", (run.id,)).fetchone()
    at = "2025-01-20T12:00:00.000000+00:00"
    forged = event_hash(
        head, run_id=run.id, seq=6, at=at, kind="note", node_id=None, attempt=None, payload="{}"
    )
    conn.execute(
        "INSERT INTO events (run_id, seq, at, kind, payload, prev_hash, hash)"
        " VALUES (?, 6, ?, 'note', '{}', ?, ?)",
        (run.id, at, head, forged),
    )
    assert any("5 events recorded" in p for p in store.verify_events(run.id))


def test_chain_detects_a_deleted_middle_event(chained, state_db):
    store, run = chained
    raw(state_db).execute("DELETE FROM events WHERE run_id = ? AND seq = 3", (run.id,))
    problems = store.verify_events(run.id)
    assert any("seq 4 found where seq 3 was expected" in p for p in problems)


def test_chain_detects_a_deleted_last_event(chained, state_db):
    store, run = chained
    raw(state_db).execute("DELETE FROM events WHERE run_id = ? AND seq = 5", (run.id,))
    problems = store.verify_events(run.id)
    assert any("last event found is seq 4" in p for p in problems)
    assert any("chain head" in p for p in problems)


# ---- interrupted attempts, manual status ---------------------------------------------------------


def test_mark_interrupted(store):
    run = new_run(store)
    store.start_attempt(run.id, "build", 1, T0)
    store.finish_attempt(run.id, "build", 1, status="NOK", ended_at=T0, error="boom")
    store.start_attempt(run.id, "build", 2, T0)
    assert store.mark_interrupted(run.id) == 1
    assert store.mark_interrupted(run.id) == 0
    first, second = store.attempts(run.id)
    assert (first.status, first.error) == ("NOK", "boom")
    assert (second.status, second.error) == ("INTERRUPTED", INTERRUPTED_ERROR)
    assert second.ended_at is not None
    assert [e.kind for e in store.events(run.id)] == ["run_started", "attempt_interrupted"]
    assert store.verify_events(run.id) == []


def test_orphaned_running_run_can_be_set_aborted(store):
    run = new_run(store)
    store.start_attempt(run.id, "build", 1, T0)
    changed = store.set_status_manually(run.id, "ABORTED", force=False)
    assert changed.status == "ABORTED" and changed.ended_at is not None
    assert changed.status_reason == "set manually from RUNNING to ABORTED"
    assert store.attempts(run.id)[0].status == "INTERRUPTED"
    last = store.events(run.id)[-1]
    assert (last.kind, last.payload["from"], last.payload["to"]) == (
        "status_set_manually",
        "RUNNING",
        "ABORTED",
    )
    assert store.verify_events(run.id) == []


def test_finished_runs_need_force_and_nothing_goes_back_to_running(store):
    run = new_run(store)
    store.set_run_status(run.id, "OK", ended_at=T0)
    with pytest.raises(StoreError, match="finished OK; changing it to NOK needs --force"):
        store.set_status_manually(run.id, "NOK", force=False)
    assert store.get_run(run.id).status == "OK"
    changed = store.set_status_manually(run.id, "NOK", force=True)
    assert (changed.status, changed.ended_at) == ("NOK", T0)
    with pytest.raises(StoreError, match="cannot be set to RUNNING"):
        store.set_status_manually(run.id, "RUNNING", force=True)
    assert store.set_status_manually(run.id, "nok", force=False).status == "NOK"  # unchanged: no-op

    aborted = new_run(store)
    store.set_run_status(aborted.id, "ABORTED")
    assert store.set_status_manually(aborted.id, "NOK", force=False).status == "NOK"


def test_invalid_status_name_lists_the_valid_ones(store):
    run = new_run(store)
    with pytest.raises(StoreError, match="invalid run status 'DONE'; valid: RUNNING, OK, NOK, ABORTED"):
        store.set_status_manually(run.id, "DONE", force=True)
    with pytest.raises(StoreError, match="no run 99"):
        store.set_status_manually(99, "ABORTED", force=True)


# ---- listing, statistics, deletion ---------------------------------------------------------------


def test_list_runs_filters_and_orders_newest_first(store):
    ids = {}
    for minute, (workflow, status) in enumerate(
        [("A", "OK"), ("A", "NOK"), ("B", "OK"), ("A", "ABORTED"), ("B", "RUNNING"), ("A", "OK")]
    ):
        run = new_run(store, workflow, started_at=T0 + timedelta(minutes=minute))
        if status != "RUNNING":
            store.set_run_status(run.id, status)
        ids[minute] = run.id
    assert [r.id for r in store.list_runs()] == [ids[m] for m in (5, 4, 3, 2, 1, 0)]
    assert [r.id for r in store.list_runs(workflow="A")] == [ids[m] for m in (5, 3, 1, 0)]
    assert [r.id for r in store.list_runs(status="OK")] == [ids[m] for m in (5, 2, 0)]
    assert [r.id for r in store.list_runs(workflow="A", status="OK")] == [ids[5], ids[0]]
    assert [r.id for r in store.list_runs(limit=2, offset=1)] == [ids[4], ids[3]]
    assert store.latest_run("A").id == ids[5]
    assert store.latest_run("A", status="ABORTED").id == ids[3]
    assert store.latest_run("C") is None
    with pytest.raises(StoreError, match="invalid run status"):
        store.list_runs(status="GOOD")


def test_stats(store):
    for i, status in enumerate(["OK", "OK", "NOK", "ABORTED"]):
        start = T0 + timedelta(hours=i)
        run = new_run(store, "A", started_at=start)
        store.start_attempt(run.id, "build", 1, start)
        store.finish_attempt(
            run.id,
            "build",
            1,
            status="OK" if status == "OK" else "NOK",
            ended_at=start + timedelta(seconds=i + 1),
        )
        store.set_run_status(run.id, status, ended_at=start + timedelta(seconds=10))
    new_run(store, "B")  # still RUNNING

    stats = store.stats()
    assert stats["runs"] == 5
    assert stats["by_status"] == {"RUNNING": 1, "OK": 2, "NOK": 1, "ABORTED": 1}
    assert stats["success_rate"] == pytest.approx(0.5)
    assert stats["mean_run_seconds"] == pytest.approx(10.0, abs=0.01)
    assert stats["nodes"]["build"]["attempts"] == 4
    assert stats["nodes"]["build"]["failed_attempts"] == 2
    assert stats["nodes"]["build"]["mean_seconds"] == pytest.approx(2.5)
    assert {w: v["runs"] for w, v in stats["runs_per_workflow"].items()} == {"A": 4, "B": 1}

    only_b = store.stats("B")
    assert only_b["runs"] == 1 and only_b["success_rate"] is None and only_b["nodes"] == {}


def test_delete_run_refuses_running_and_frees_artifacts(store):
    running = new_run(store)
    with pytest.raises(StoreError, match="is RUNNING"):
        store.delete_run(running.id)
    done = new_run(store)
    store.start_attempt(done.id, "build", 1, T0)
    store.record_decision(done.id, "gate", "approve", "bob")
    (store.artifact_dir(done.id) / "notebook.ipynb").write_bytes(b"x" * 1234)
    store.set_run_status(done.id, "OK")
    assert store.delete_run(done.id) == 1234
    assert not (store.artifacts_root / str(done.id)).exists()
    with pytest.raises(StoreError, match=f"no run {done.id}"):
        store.get_run(done.id)
    conn = sqlite3.connect(store.path)
    for table in ("node_states", "attempts", "decisions", "events"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (done.id,)).fetchone()[0] == 0
    assert store.verify_events(running.id) == []


# ---- location ------------------------------------------------------------------------------------


def test_resolve_db_path_precedence(tmp_path, monkeypatch):
    from playbook_nb.config import load_config

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    (tmp_path / "playbook.toml").write_text('[database]\npath = "cfg/runs.db"\n')
    config = load_config(cwd=tmp_path, env={}, user_dir=tmp_path / "u", system_dir=tmp_path / "s")
    env = {"PLAYBOOK_DB_PATH": str(tmp_path / "env.db")}
    assert resolve_db_path("cli.db", config, env=env) == Path("cli.db")
    assert resolve_db_path(None, config, env=env) == tmp_path / "env.db"
    assert resolve_db_path(None, config, env={}) == tmp_path / "cfg" / "runs.db"
    empty = load_config(cwd=tmp_path / "u", env={}, user_dir=tmp_path / "u", system_dir=tmp_path / "s")
    assert resolve_db_path(None, empty, env={}) == tmp_path / "data" / "playbook-nb" / "runs.db"
