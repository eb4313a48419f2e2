"""The run record's behaviour on both backends: SQLite files and a real PostgreSQL server started here.

Every test taking `store` runs twice (`[sqlite]`, `[postgresql]`). The PostgreSQL server is private to the
test session (tests/pg_server.py: initdb + pg_ctl on a free loopback port, one database per test), or the
server `PLAYBOOK_TEST_PG_URL` names. Without PostgreSQL binaries those cases are skipped, except under CI,
where that is a failure. S3 artifacts go to moto's S3-compatible server (tests/s3_server.py) through s3fs.
"""

from __future__ import annotations

import enum
import multiprocessing
import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import RUNBOOK, T0, new_run, run_cli
from s3_server import S3_ENV, make_bucket, s3_server

from playbook_nb.adapters.store import INTERRUPTED_ERROR, SQLiteStore, Store, resolve_db_path
from playbook_nb.adapters.store.copy import copy_runs
from playbook_nb.adapters.store.hashing import event_hash
from playbook_nb.adapters.store.migrate import latest_version
from playbook_nb.domain.errors import StoreError
from playbook_nb.domain.kpis import kpi_attainment
from playbook_nb.domain.model import Kpis

psycopg = pytest.importorskip("psycopg") if not os.environ.get("CI") else __import__("psycopg")

BACKENDS = ["sqlite", "postgresql"]


# ---- fixtures: servers, databases, stores ---------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path) -> str:
    """A fresh, empty run index of each backend: a SQLite file path or a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "state" / "runs.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url, tmp_path):
    with Store.open(db_url, artifacts_root=tmp_path / "artifacts") as s:
        yield s


class Raw:
    """Plain SQL on the store's database, as an admin with a shell would (append-only guards off)."""

    def __init__(self, store: Store):
        self.backend = store.backend
        if self.backend == "sqlite":
            self.conn = sqlite3.connect(store.path, isolation_level=None)
        else:
            self.conn = psycopg.connect(str(store.path), autocommit=True)

    def guards_off(self) -> Raw:
        if self.backend == "sqlite":
            self.conn.execute("DROP TRIGGER IF EXISTS events_no_update")
            self.conn.execute("DROP TRIGGER IF EXISTS events_no_delete")
        else:
            self.conn.execute("SET session_replication_role = replica")  # no triggers for this session
        return self

    def execute(self, sql: str, params: tuple = ()):
        if self.backend == "postgresql":
            sql = sql.replace("?", "%s")
        return self.conn.execute(sql, params)

    def scalar(self, sql: str, params: tuple = ()):
        return self.execute(sql, params).fetchone()[0]


@pytest.fixture
def raw(store):
    r = Raw(store)
    yield r
    r.conn.close()


# ---- schema and opening --------------------------------------------------------------------------


def test_open_picks_the_backend_by_url_and_migrates(db_url, tmp_path):
    with Store.open(db_url, artifacts_root=tmp_path / "a") as store:
        assert store.backend == ("sqlite" if "://" not in db_url else "postgresql")
        assert store.schema_version == latest_version()
        run = new_run(store)
    for _ in range(2):  # reopening applies nothing and keeps the data
        with Store.open(db_url, artifacts_root=tmp_path / "a") as store:
            assert store.schema_version == latest_version()
            assert store.get_run(run.id).workflow == "Deploy {{APP}}"
            assert len(store.list_runs()) == 1
            raw = Raw(store)
            try:
                assert raw.scalar("SELECT COUNT(*) FROM runs") == 1
            finally:
                raw.conn.close()


def test_a_newer_schema_is_refused(store, raw, db_url):
    if store.backend == "sqlite":
        raw.execute(f"PRAGMA user_version = {latest_version() + 1}")
    else:
        raw.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (%s, 'future.sql')", (latest_version() + 1,)
        )
    store.close()
    with pytest.raises(StoreError, match="newer than this playbook-nb"):
        Store.open(db_url)


def test_postgres_migrations_are_numbered_like_sqlite_and_recorded(pg_url):
    from playbook_nb.adapters.store.postgres import load_pg_migrations

    assert [v for v, _, _ in load_pg_migrations()] == list(range(1, latest_version() + 1))
    with Store.open(pg_url):
        pass
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert [v for v, _ in rows] == list(range(1, latest_version() + 1))
    assert {"runs", "node_states", "attempts", "decisions", "events", "workflow_counters"} <= tables


def test_unreachable_postgres_is_one_line_without_the_password():
    with pytest.raises(StoreError) as info:
        Store.open("postgresql://bob:s3cret@127.0.0.1:1/playbook", timeout=2)
    message = str(info.value)
    assert "PostgreSQL" in message and "bob@127.0.0.1:1/playbook" in message
    assert "s3cret" not in message and "\n" not in message


def test_password_stays_out_of_path_and_comes_back_from_the_environment(pg, monkeypatch):
    with pg.admin() as conn:
        conn.execute("CREATE ROLE pbuser LOGIN PASSWORD 'hunter2' SUPERUSER")
    try:
        url = pg.url("postgres").replace("postgres@", "pbuser:hunter2@", 1)
        with Store.open(url) as store:
            assert "hunter2" not in str(store.path) and "hunter2" not in store.url
            shown = str(store.path)
        monkeypatch.setenv("PLAYBOOK_DB_URL", url)
        with Store.open(shown) as store:  # what a notebook kernel is handed: no password in it
            assert store.schema_version == latest_version()
    finally:
        with pg.admin() as conn:
            conn.execute("DROP OWNED BY pbuser")
            conn.execute("DROP ROLE pbuser")


def test_missing_run_names_the_run_and_the_index(store):
    with pytest.raises(StoreError) as info:
        store.get_run(42)
    assert str(info.value) == f"no run 42 in {store.path}"
    for call in (
        store.node_states,
        store.events,
        store.verify_events,
        store.mark_interrupted,
        store.decisions,
    ):
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


def test_a_failing_write_leaves_no_half_written_run_and_no_used_number(store, raw):
    if store.backend == "sqlite":
        raw.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON node_states WHEN NEW.node_id = 'ship'"
            " BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
        )
    else:
        raw.execute(
            "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.node_id = 'ship' THEN RAISE EXCEPTION 'disk trouble'; END IF; RETURN NEW; END $$"
        )
        raw.execute("CREATE TRIGGER boom BEFORE INSERT ON node_states FOR EACH ROW EXECUTE FUNCTION boom()")
    with pytest.raises(StoreError, match="disk trouble") as info:
        new_run(store)
    assert str(store.path) in str(info.value) and "\n" not in str(info.value)
    assert [raw.scalar(f"SELECT COUNT(*) FROM {t}") for t in ("runs", "node_states", "events")] == [0, 0, 0]
    raw.execute("DROP TRIGGER boom" + ("" if store.backend == "sqlite" else " ON node_states"))
    assert new_run(store).number == 1


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
    decision_id = store.record_decision(
        run.id, "gate", "approve", "bob", "looks fine", T0 + timedelta(seconds=20)
    )

    attempts = store.attempts(run.id, "build")
    assert [(a.attempt, a.status, a.exit_code, a.duration) for a in attempts] == [
        (1, "NOK", 2, 2.5),
        (2, "OK", 0, 0.75),
    ]
    assert attempts[1].result == {"rows": [1, 2]} and attempts[0].error == "exit code 2"
    assert attempts[0].started_at == T0 and attempts[0].ended_at == T0 + timedelta(seconds=2.5)
    states = {n.node_id: n for n in store.node_states(run.id)}
    assert (states["build"].state, states["build"].attempts, states["build"].reason) == ("OK", 2, None)
    assert (states["gate"].state, states["gate"].reason) == ("WAITING", "awaits approval")
    assert store.get_run(run.id).counts == {"OK": 1, "WAITING": 1, "PENDING": 1}
    [decision] = store.decisions(run.id)
    assert (decision.id, decision.node_id, decision.decision, decision.actor, decision.comment) == (
        decision_id, "gate", "approve", "bob", "looks fine",
    )  # fmt: skip
    assert decision.decided_at == T0 + timedelta(seconds=20)

    with pytest.raises(StoreError, match="no node 'nope'"):
        store.set_node_state(run.id, "nope", "OK")
    with pytest.raises(StoreError, match="no node 'nope'"):
        store.record_decision(run.id, "nope", "approve", "bob")
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


def test_run_status_snapshot_notebook_and_local_artifacts(store, tmp_path):
    run = new_run(store)
    assert store.load_snapshot(run.id) is None
    store.save_snapshot(run.id, {"states": {"build": "OK"}, "attempts": {"build": 1}})
    assert store.load_snapshot(run.id) == {"states": {"build": "OK"}, "attempts": {"build": 1}}
    store.set_run_status(run.id, "ABORTED", reason="gate not approved", ended_at=T0)
    directory = store.artifact_dir(run.id)
    assert directory == tmp_path / "artifacts" / str(run.id) and directory.is_dir()
    source = tmp_path / "executed.ipynb"
    source.write_text('{"cells": []}')
    path = store.put_artifact(run.id, "notebook.ipynb", source)
    assert path == str(directory / "notebook.ipynb")
    store.set_notebook_path(run.id, path)
    with store.open_artifact(path) as f:
        assert f.read() == b'{"cells": []}'
    got = store.get_run(run.id)
    assert (got.status, got.status_reason, got.ended_at) == ("ABORTED", "gate not approved", T0)
    assert (got.notebook_path, got.artifact_dir) == (path, str(directory))


def test_a_batch_writes_the_run_row_once_and_reads_inside_it_see_its_writes(store):
    """Inside `batch()` the run row's lease, counts, event head and snapshot wait for one UPDATE (issue 18.2):
    a read, a statement naming the runs table, and the commit each see them all; a failed batch writes
    none of them."""
    run = new_run(store)
    version = store.get_run(run.id).version
    with store.batch():
        version = store.advance(run.id, token=None, version=version)
        store.set_node_state(run.id, "build", "RUNNING", attempts=1)
        store.append_event(run.id, "node_state", node_id="build", payload={"state": "RUNNING"})
        store.save_snapshot(run.id, {"run_state": "RUNNING", "nodes": {"build": {"state": "RUNNING"}}})
        inside = store.get_run(run.id)  # a read in the batch
        assert inside.version == version and inside.counts == {"PENDING": 2, "RUNNING": 1}
        assert inside.snapshot == {"run_state": "RUNNING", "nodes": {"build": {"state": "RUNNING"}}}
        store.start_attempt(run.id, "build", 1, T0)  # reads the row's revision in SQL
        store.set_node_state(run.id, "build", "OK")
        store.append_event(run.id, "node_state", node_id="build", payload={"state": "OK"})
    after = store.get_run(run.id)
    assert after.version == version and after.counts == {"OK": 1, "PENDING": 2}
    assert store.verify_events(run.id) == [] and [e.kind for e in store.events(run.id)][-2:] == [
        "node_state",
        "node_state",
    ]
    with pytest.raises(RuntimeError), store.batch():
        store.advance(run.id, token=None, version=version)
        store.set_node_state(run.id, "ship", "RUNNING")
        raise RuntimeError("the transition fails")
    again = store.get_run(run.id)
    assert (again.version, again.counts) == (version, {"OK": 1, "PENDING": 2})
    assert store.verify_events(run.id) == []
    # the next batch reads the row again: it was not left holding the failed batch's writes
    with store.batch():
        assert store.advance(run.id, token=None, version=version) == version + 1
    assert store.get_run(run.id).version == version + 1


# ---- concurrency ---------------------------------------------------------------------------------


def _create_runs(location: str, worker: int, count: int) -> list[tuple[int, str, int]]:
    created = []
    with Store.open(location, artifacts_root=os.devnull + "-unused") as store:
        for i in range(count):
            workflow = "shared" if i % 2 == 0 else f"mine-{worker % 2}"
            run = new_run(store, workflow, nodes=("a", "b"))
            store.append_event(run.id, "note", payload={"worker": worker, "i": i})
            store.set_node_state(run.id, "a", "OK", attempts=1)
            created.append((run.id, run.workflow, run.number))
    return created


@pytest.mark.slow
def test_four_processes_creating_runs_get_unique_numbers(db_url):
    ctx = multiprocessing.get_context("spawn")
    Store.open(db_url, artifacts_root=os.devnull + "-unused").close()  # schema first: the test is about runs
    with ctx.Pool(4) as pool:
        results = pool.starmap(_create_runs, [(db_url, w, 50) for w in range(4)])
    created = [row for rows in results for row in rows]
    assert len(created) == 200
    assert len({run_id for run_id, _, _ in created}) == 200
    with Store.open(db_url, artifacts_root=os.devnull + "-unused") as store:
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


def _append_events(location: str, run_id: int, worker: int, count: int) -> None:
    with Store.open(location, artifacts_root=os.devnull + "-unused") as store:
        for i in range(count):
            store.append_event(run_id, "note", payload={"worker": worker, "i": i})
            store.set_node_state(run_id, f"n{worker}", "OK" if i % 2 else "RUNNING", attempts=i)


@pytest.mark.slow
def test_concurrent_appends_to_one_run_keep_one_chain(db_url):
    with Store.open(db_url, artifacts_root=os.devnull + "-unused") as store:
        run = new_run(store, nodes=[f"n{w}" for w in range(4)])
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        pool.starmap(_append_events, [(db_url, run.id, w, 30) for w in range(4)])
    with Store.open(db_url, artifacts_root=os.devnull + "-unused") as store:
        events = store.events(run.id)
        assert [e.seq for e in events] == list(range(1, 122))
        assert store.verify_events(run.id) == []
        assert store.get_run(run.id).counts == {"OK": 4}  # counts saw every committed node change


# ---- event hash chain ----------------------------------------------------------------------------


@pytest.fixture
def chained(store):
    run = new_run(store)
    for i in range(2, 6):
        assert store.append_event(run.id, "node_state", node_id="build", attempt=1, payload={"i": i}) == i
    assert store.verify_events(run.id) == []
    return store, run


def test_events_are_append_only_through_sql(chained, raw):
    _, run = chained
    errors = (sqlite3.DatabaseError, psycopg.Error)
    with pytest.raises(errors, match="append-only"):
        raw.execute("UPDATE events SET payload = '{}' WHERE run_id = ?", (run.id,))
    with pytest.raises(errors, match="append-only"):
        raw.execute("DELETE FROM events WHERE run_id = ?", (run.id,))


def test_chain_detects_an_edited_payload(chained, raw):
    store, run = chained
    raw.guards_off().execute(
        "UPDATE events SET payload = '{\"i\":99}' WHERE run_id = ? AND seq = 3", (run.id,)
    )
    problems = store.verify_events(run.id)
    assert problems and any("seq 3" in p and "modified" in p for p in problems)


def test_chain_detects_an_inserted_event(chained, raw):
    store, run = chained
    head = raw.scalar("SELECT hash FROM events WHERE run_id = ? AND seq = 5", (run.id,))
    at = "2025-01-20T12:00:00.000000+00:00"
    forged = event_hash(
        head, run_id=run.id, seq=6, at=at, kind="note", node_id=None, attempt=None, payload="{}"
    )
    raw.execute(
        "INSERT INTO events (run_id, seq, at, kind, payload, prev_hash, hash) VALUES (?, 6, ?, 'note', '{}', ?, ?)",
        (run.id, at, head, forged),
    )
    assert any("5 events recorded" in p for p in store.verify_events(run.id))


def test_chain_detects_deleted_events(chained, raw):
    store, run = chained
    raw.guards_off().execute("DELETE FROM events WHERE run_id = ? AND seq = 5", (run.id,))
    problems = store.verify_events(run.id)
    assert any("last event found is seq 4" in p for p in problems)
    assert any("chain head" in p for p in problems)
    raw.execute("DELETE FROM events WHERE run_id = ? AND seq = 3", (run.id,))
    assert any("seq 4 found where seq 3 was expected" in p for p in store.verify_events(run.id))


def test_the_same_run_hashes_the_same_on_both_backends(pg_url, tmp_path):
    heads = {}
    for location in (str(tmp_path / "runs.db"), pg_url):
        with Store.open(location, artifacts_root=tmp_path / "a") as store:
            run = new_run(store, started_at=T0)
            store.append_event(
                run.id, "node_state", node_id="build", attempt=1, payload={"ü": [1, 2.5]}, at=T0
            )
            store.start_attempt(run.id, "build", 1, T0)
            store.set_status_manually(run.id, "ABORTED")  # interrupts the attempt: two events, now-stamped
            events = store.events(run.id)
            heads[store.backend] = [(e.seq, e.kind, e.hash) for e in events[:2]]
            assert store.verify_events(run.id) == []
    assert heads["sqlite"] == heads["postgresql"]


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


def test_finished_runs_need_force_and_only_force_sets_running(store):
    run = new_run(store)
    store.set_run_status(run.id, "OK", ended_at=T0)
    with pytest.raises(StoreError, match="finished OK; changing it to NOK needs --force"):
        store.set_status_manually(run.id, "NOK", force=False)
    assert store.get_run(run.id).status == "OK"
    changed = store.set_status_manually(run.id, "NOK", force=True)
    assert (changed.status, changed.ended_at) == ("NOK", T0)
    with pytest.raises(StoreError, match="setting it to RUNNING by hand needs --force"):
        store.set_status_manually(run.id, "RUNNING", force=False)
    assert store.set_status_manually(run.id, "nok", force=False).status == "NOK"
    with pytest.raises(StoreError, match="invalid run status 'DONE'; valid: RUNNING, OK, NOK, ABORTED"):
        store.set_status_manually(run.id, "DONE", force=True)
    with pytest.raises(StoreError, match="no run 99"):
        store.set_status_manually(99, "ABORTED", force=True)

    aborted = new_run(store)
    store.set_run_status(aborted.id, "ABORTED")
    assert store.set_status_manually(aborted.id, "NOK", force=False).status == "NOK"


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
    # while A holds every run of the index, its per-node figures come from the attempts alone (issue 18.4)
    assert store.stats("A")["nodes"] == {"build": {"attempts": 4, "failed_attempts": 2, "mean_seconds": 2.5}}
    new_run(store, "B")

    stats = store.stats()
    assert stats["runs"] == 5
    assert stats["by_status"] == {"RUNNING": 1, "OK": 2, "NOK": 1, "ABORTED": 1}
    assert stats["success_rate"] == pytest.approx(0.5)
    assert stats["mean_run_seconds"] == pytest.approx(10.0, abs=0.01)
    assert stats["nodes"]["build"] == {
        "attempts": 4,
        "failed_attempts": 2,
        "mean_seconds": pytest.approx(2.5),
    }
    assert {w: (v["runs"], v["ok"]) for w, v in stats["runs_per_workflow"].items()} == {
        "A": (4, 2),
        "B": (1, 0),
    }
    assert stats["runs_per_workflow"]["A"]["last_started_at"] == (T0 + timedelta(hours=3)).isoformat(
        timespec="microseconds"
    )
    only_b = store.stats("B")
    assert only_b["runs"] == 1 and only_b["success_rate"] is None and only_b["nodes"] == {}
    only_a = store.stats("A")  # the per-node figures of one workflow
    assert only_a["nodes"]["build"]["attempts"] == 4 and only_a["nodes"]["build"]["failed_attempts"] == 2
    # what KPI attainment counts, by SQL (issue 18.4)
    assert store.kpi_figures("A", 10, 10.0) == {
        "runs": 4, "finished": 4, "ok": 2, "timed_runs": 3, "within_max_duration": 3,
        "p50_duration": 10.0, "p95_duration": 10.0,
    }  # fmt: skip
    assert store.kpi_figures("B", 10, None) == {
        "runs": 1, "finished": 0, "ok": 0, "timed_runs": 0, "within_max_duration": None,
        "p50_duration": None, "p95_duration": None,
    }  # fmt: skip


def test_kpi_figures_by_hand(store):
    """KPI attainment's figures, computed by SQL (issue 18.4), over runs whose answers are known by hand: the
    newest `limit` runs, rehearsals left out, ABORTED finished but not timed, RUNNING neither, durations to
    the millisecond (60.0004 s rounds to 60.0, within 60 s; 60.0006 s to 60.001, not within), nearest-rank
    percentiles."""
    runs = [(500, "OK"), (10, "OK"), (30, "NOK"), (60.0004, "OK"), (60.0006, "OK"), (90, "OK"), (45, "NOK"),
            (5, "ABORTED"), (None, "RUNNING")]  # fmt: skip
    for i, (seconds, status) in enumerate(runs):
        start = T0 + timedelta(hours=i)
        run = new_run(store, "K", started_at=start)
        if status != "RUNNING":
            store.set_run_status(run.id, status, ended_at=start + timedelta(seconds=seconds))
    rehearsal = store.create_run(
        workflow="K", title="K", runbook_text=RUNBOOK, runbook_sha256="0" * 64, runbook_version=None,
        variables={}, params={"rehearsal": "r"}, trigger="terminal", actor="rehearsal", host="h",
        mode="headless", node_ids=["build"], started_at=T0 + timedelta(hours=20),
    )  # fmt: skip
    store.set_run_status(rehearsal.id, "OK", ended_at=T0 + timedelta(hours=20, seconds=1))
    # the newest 8 leave out the 500 s run: durations 10, 30, 45, 60.0, 60.001, 90
    assert store.kpi_figures("K", 8, 60.0) == {
        "runs": 8, "finished": 7, "ok": 4, "timed_runs": 6, "within_max_duration": 4,
        "p50_duration": 45.0, "p95_duration": 90.0,
    }  # fmt: skip
    # all 9: 10, 30, 45, 60.0, 60.001, 90, 500; the p50 is the 4th, the p95 the 7th
    assert store.kpi_figures("K", 100, 60.0) == {
        "runs": 9, "finished": 8, "ok": 5, "timed_runs": 7, "within_max_duration": 4,
        "p50_duration": 60.0, "p95_duration": 500.0,
    }  # fmt: skip
    assert store.kpi_figures("K", 100, 60.001)["within_max_duration"] == 5
    assert store.kpi_figures("K", 100, 9.5)["within_max_duration"] == 0
    assert store.kpi_figures("K", 100, None)["within_max_duration"] is None
    att = kpi_attainment(store, "K", Kpis(max_duration=60.0, target_success_rate=0.6))
    assert (att["success_rate"], att["success_rate_met"]) == (5 / 8, True)
    assert (att["share_within_max_duration"], att["max_duration_met"]) == (4 / 7, False)
    assert store.kpi_figures("none", 100, 60.0) == {
        "runs": 0, "finished": 0, "ok": 0, "timed_runs": 0, "within_max_duration": 0,
        "p50_duration": None, "p95_duration": None,
    }  # fmt: skip


def test_delete_run_refuses_running_and_frees_artifacts(store, raw):
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
    for table in ("node_states", "attempts", "decisions", "events"):
        assert raw.scalar(f"SELECT COUNT(*) FROM {table} WHERE run_id = ?", (done.id,)) == 0
    assert store.verify_events(running.id) == []


# ---- S3 artifacts (moto's S3 server, through s3fs) -----------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint():
    pytest.importorskip("s3fs")
    with s3_server() as endpoint:
        make_bucket(endpoint, "team-runs")
        yield endpoint


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch):
    for key, value in {**S3_ENV, "PLAYBOOK_S3_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(key, value)
    return s3_endpoint


def test_artifacts_go_to_s3_and_the_index_keeps_their_urls(db_url, s3_env, tmp_path):
    import s3fs

    prefix = f"s3://team-runs/{tmp_path.name}"
    with Store.open(db_url, artifacts_root=prefix) as store:
        run = new_run(store)
        local = tmp_path / "executed.ipynb"
        local.write_bytes(b'{"cells": ["done"]}')
        url = store.put_artifact(run.id, "notebook.ipynb", local)
        assert url == f"{prefix}/{run.id}/notebook.ipynb"
        store.set_notebook_path(run.id, url)
        got = store.get_run(run.id)
        assert (got.notebook_path, got.artifact_dir) == (url, f"{prefix}/{run.id}")
        with store.open_artifact(got.notebook_path) as f:
            assert f.read() == b'{"cells": ["done"]}'
        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_env}, skip_instance_cache=True)
        assert fs.cat(url) == b'{"cells": ["done"]}'  # really in the bucket
        with pytest.raises(StoreError, match="no artifact at"):
            store.open_artifact(f"{prefix}/{run.id}/missing.ipynb")
        store.set_run_status(run.id, "OK")
        assert store.delete_run(run.id) == len(b'{"cells": ["done"]}')
        assert not fs.exists(url)


def test_artifacts_url_from_the_environment(s3_env, tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYBOOK_ARTIFACTS_URL", "s3://team-runs/from-env")
    with Store.open(tmp_path / "runs.db") as store:
        run = new_run(store)
        local = tmp_path / "f.txt"
        local.write_text("hi")
        assert store.put_artifact(run.id, "f.txt", local) == f"s3://team-runs/from-env/{run.id}/f.txt"


def test_missing_bucket_is_one_clear_store_error(s3_env, tmp_path):
    with Store.open(tmp_path / "runs.db", artifacts_root="s3://no-such-bucket/x") as store:
        run = new_run(store)
        (tmp_path / "f").write_text("x")
        with pytest.raises(StoreError, match=r"cannot upload the artifact s3://no-such-bucket/x/1/f") as info:
            store.put_artifact(run.id, "f", tmp_path / "f")
        assert "\n" not in str(info.value)


# ---- per-host rows of fleet nodes (issue 21) -----------------------------------------------------


def test_host_rows_are_kept_per_attempt_and_the_latest_wins(store):
    run = new_run(store)
    store.start_attempt(run.id, "build", 1, T0)
    rows = [
        {"host": "web1", "position": 0, "state": "RUNNING", "started_at": 1_800_000_000.0},
        {"host": "web2", "position": 1, "state": "PENDING"},
    ]
    store.record_hosts(run.id, "build", 1, rows)
    store.record_hosts(
        run.id, "build", 1,
        [{"host": "web1", "position": 0, "state": "OK", "exit_code": 0, "stdout": "done\n",
          "ended_at": 1_800_000_002.0},
         {"host": "web2", "position": 1, "state": "NOK", "error": "unreachable: refused"}],
    )  # fmt: skip
    store.finish_attempt(run.id, "build", 1, status="NOK")  # a node has one live attempt at a time
    store.start_attempt(run.id, "build", 2, T0)
    store.record_hosts(
        run.id, "build", 2,
        [{"host": "web2", "position": 1, "state": "OK", "exit_code": 0},
         {"host": "web3", "position": 2, "state": "OK", "membership": "ADDED", "exit_code": 0}],
    )  # fmt: skip
    first = store.host_results(run.id, "build")[0]
    assert (first.host, first.attempt, first.state, first.exit_code, first.stdout) == (
        "web1",
        1,
        "OK",
        0,
        "done\n",
    )
    assert first.started_at is not None and first.duration == pytest.approx(2.0)
    latest = store.latest_hosts(run.id, "build")
    assert {h: (r.attempt, r.state, r.membership) for h, r in latest.items()} == {
        "web1": (1, "OK", None),
        "web2": (2, "OK", None),
        "web3": (2, "OK", "ADDED"),
    }
    with pytest.raises(StoreError, match="invalid host state 'GONE'"):
        store.record_hosts(run.id, "build", 2, [{"host": "web9", "position": 9, "state": "GONE"}])


def test_interrupted_attempt_fails_its_running_hosts(store):
    run = new_run(store)
    store.start_attempt(run.id, "build", 1, T0)
    store.record_hosts(
        run.id, "build", 1,
        [{"host": "a", "position": 0, "state": "OK"}, {"host": "b", "position": 1, "state": "RUNNING"}],
    )  # fmt: skip
    assert store.mark_interrupted(run.id) == 1
    assert {r.host: (r.state, r.error) for r in store.host_results(run.id)} == {
        "a": ("OK", None),
        "b": ("NOK", INTERRUPTED_ERROR),
    }


# ---- copying between backends (`store migrate`) --------------------------------------------------


def _fill(store: Store) -> list[int]:
    ids = []
    for i, workflow in enumerate(["Deploy {{APP}}", "Deploy {{APP}}", "Rollback"]):
        run = new_run(store, workflow, started_at=T0 + timedelta(minutes=i))
        store.set_node_state(run.id, "build", "RUNNING", attempts=1)
        store.start_attempt(run.id, "build", 1, T0 + timedelta(minutes=i))
        store.finish_attempt(run.id, "build", 1, status="OK", exit_code=0, stdout="built", result={"n": i})
        store.record_hosts(
            run.id, "build", 1, [{"host": "web1", "position": 0, "state": "OK", "exit_code": 0, "stdout": "up",
                                  "started_at": 1_800_000_000.0, "ended_at": 1_800_000_001.5}],
        )  # fmt: skip
        store.set_node_state(run.id, "build", "OK", attempts=1, failed=False)
        store.record_decision(run.id, "gate", "approve", "bob", "ok")
        store.save_snapshot(run.id, {"i": i})
        store.append_event(run.id, "note", payload={"i": i, "text": "ünïcode"})
        if i < 2:
            store.set_run_status(run.id, "OK")
        ids.append(run.id)
    store.set_notebook_path(ids[0], "s3://team-runs/1/notebook.ipynb")
    return ids


def test_migrate_sqlite_to_postgres_and_back_keeps_every_row(pg_url, tmp_path):
    first, back = tmp_path / "first.db", tmp_path / "back.db"
    with Store.open(first) as store:
        ids = _fill(store)
        original = [store.dump_run(i) for i in ids]

    result = run_cli("store", "migrate", "--from", str(first), "--to", pg_url)
    assert result.returncode == 0, result.stderr
    assert "copied 3 run(s)" in result.stdout and "hash chains intact" in result.stdout
    with Store.open(pg_url) as store:
        assert [store.dump_run(i) for i in ids] == original
        assert all(store.verify_events(i) == [] for i in ids)
        assert new_run(store, "Rollback").number == 2  # numbering continues after the copied runs
        assert new_run(store).id == ids[-1] + 2

    again = run_cli("store", "migrate", "--from", str(first), "--to", pg_url)
    assert again.returncode == 0, again.stderr
    assert "copied 0 run(s)" in again.stdout and "3 already there" in again.stdout

    result = run_cli("store", "migrate", "--from", pg_url, "--to", str(back))
    assert result.returncode == 0, result.stderr
    with Store.open(back) as store:
        assert [store.dump_run(i) for i in ids] == original
        assert len(store.list_runs()) == 5 and all(store.verify_events(r.id) == [] for r in store.list_runs())
    a, b = sqlite3.connect(first), sqlite3.connect(back)
    for table in ("runs", "node_states", "attempts", "host_results", "decisions", "events"):
        query = f"SELECT * FROM {table} WHERE {'id' if table == 'runs' else 'run_id'} <= 3 ORDER BY 1, 2"
        assert a.execute(query).fetchall() == b.execute(query).fetchall(), table


def test_migrate_refuses_a_target_holding_other_runs(pg_url, tmp_path):
    with Store.open(tmp_path / "a.db") as store:
        _fill(store)
    with Store.open(pg_url) as store:
        new_run(store, "Rollback")  # run 1 on the target is another run
    result = run_cli("store", "migrate", "--from", str(tmp_path / "a.db"), "--to", pg_url)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "already holds a different run 1" in lines[0], result.stderr
    with Store.open(pg_url) as store:
        assert len(store.list_runs()) == 1  # nothing written


def test_copy_verifies_the_target(tmp_path):
    with Store.open(tmp_path / "a.db") as src, Store.open(tmp_path / "b.db") as dst:
        _fill(src)
        report = copy_runs(src, dst)
        assert (len(report.copied), report.rows["events"]) == (3, sum(len(src.events(i)) for i in (1, 2, 3)))
        with pytest.raises(StoreError, match="same run index"):
            copy_runs(src, src)


# ---- location ------------------------------------------------------------------------------------


def test_resolve_db_path_takes_urls_from_cli_env_and_config(tmp_path, monkeypatch):
    from playbook_nb.app.config import load_config

    (tmp_path / "playbook.toml").write_text(
        '[database]\nurl = "postgresql://cfg@db/runs"\n[artifacts]\nurl = "s3://b/p"\n'
    )
    config = load_config(cwd=tmp_path, env={}, user_dir=tmp_path / "u", system_dir=tmp_path / "s")
    assert config.artifacts.url == "s3://b/p"
    assert resolve_db_path("postgresql://cli@db/runs", config, env={}) == "postgresql://cli@db/runs"
    assert (
        resolve_db_path(None, config, env={"PLAYBOOK_DB_URL": "postgresql://env@db/r"})
        == "postgresql://env@db/r"
    )
    assert resolve_db_path(None, config, env={}) == "postgresql://cfg@db/runs"
    assert resolve_db_path("x.db", config, env={}) == Path("x.db")
    from playbook_nb.adapters.store.location import resolve_artifacts_url

    assert resolve_artifacts_url(None, config, env={}) == "s3://b/p"
    assert resolve_artifacts_url(None, config, env={"PLAYBOOK_ARTIFACTS_URL": "gs://x"}) == "gs://x"
    assert resolve_artifacts_url("/local", config, env={}) == "/local"
    assert isinstance(Store.open(tmp_path / "r.db", artifacts_root=tmp_path), SQLiteStore)


def test_store_info_shows_backend_and_artifacts(pg_url, tmp_path):
    result = run_cli("store", "info", "--json", "--state-path", pg_url, "--artifacts", str(tmp_path / "art"))
    assert result.returncode == 0, result.stderr
    assert '"backend": "postgresql"' in result.stdout and str(tmp_path / "art") in result.stdout


# ---- the headless face on a team setup -----------------------------------------------------------

TEAM_RUNBOOK = """[runbook]
title = "team check"
description = "written by a test"
version = "0.1.0"
author = "tests"
created_at = "2025-01-01T00:00:00Z"

[hello]
type = "Command"
command_name = "echo hello"
"""


@pytest.mark.slow
def test_headless_run_records_in_postgres_and_files_the_notebook_in_s3(pg_url, s3_env, tmp_path):
    import s3fs

    runbook = tmp_path / "team.playbook.toml"
    runbook.write_text(TEAM_RUNBOOK)
    env = {
        **S3_ENV,
        "PLAYBOOK_S3_ENDPOINT_URL": s3_env,
        "PLAYBOOK_DB_URL": pg_url,
        "PLAYBOOK_ARTIFACTS_URL": "s3://team-runs/headless",
        "PLAYBOOK_DB_PATH": "",
    }
    result = run_cli("run", str(runbook), "--headless", env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    with Store.open(pg_url) as store:
        [run] = store.list_runs()
        assert (run.status, run.trigger) == ("OK", "papermill")
        assert run.notebook_path == f"s3://team-runs/headless/{run.id}/notebook.ipynb"
        assert [n.state for n in store.node_states(run.id)] == ["OK"]
        assert store.verify_events(run.id) == []
        with store.open_artifact(run.notebook_path) as f:
            assert b"hello" in f.read()
    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": s3_env}, skip_instance_cache=True)
    assert fs.exists(run.notebook_path)
    assert not (tmp_path / "runs.db").exists()
