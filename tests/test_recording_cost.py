"""What a run writes to its index stays O(changed) (issue 18.4): the runbook text is written once, the engine
snapshot is kept one row a node and a flush writes the nodes that changed, so the rows and bytes a node costs
do not grow with the size of the runbook. Counts, not timings (the timings are in benchmarks/)."""

from __future__ import annotations

import json
import sqlite3

from playbook_nb.adapters.plugins.registry import INSTALLED
from playbook_nb.adapters.store import Store
from playbook_nb.adapters.store.migrate import load_migrations, split_statements
from playbook_nb.app.ports import AttemptResult, NodeCall
from playbook_nb.app.session import RunOptions, RunSession
from playbook_nb.domain.engine import RunState
from playbook_nb.domain.validation import parse_runbook


def chain(n: int) -> str:
    nodes = "".join(f'\n[n{i:04d}]\ntype = "Command"\ncommand_name = "true"\n' for i in range(n))
    return f'[runbook]\ntitle = "chain {n}"\n' + nodes


class Answering:
    plugins = INSTALLED  # the installed plugins, as the real executor has

    def run(self, call: NodeCall) -> AttemptResult:
        return AttemptResult(ok=True, stdout="", started_at=1.0, ended_at=1.5)


def _run_chain(tmp_path, n: int) -> tuple[Store, int, int, int]:
    """(store, run id, rows changed, pages written) of a whole run of an n-node chain. The pages are the
    WAL frames the run appended (automatic checkpoints off, so none is folded back meanwhile)."""
    db = tmp_path / f"runs{n}.db"
    store = Store.open(db)
    store.conn.execute("PRAGMA wal_autocheckpoint = 0")
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = store.conn.total_changes
    session = RunSession.start(
        parse_runbook(chain(n)), {}, store, RunOptions(headless=True, actor="t"), executor=Answering()
    )
    assert session.drive(lambda *_: None) is RunState.OK
    session.close()
    changes = store.conn.total_changes - before
    _busy, frames, _done = store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return store, session.run_id, changes, frames


def test_rows_and_bytes_a_node_costs_do_not_grow_with_the_runbook(tmp_path):
    small, small_id, small_rows, small_pages = _run_chain(tmp_path, 20)
    large, large_id, large_rows, large_pages = _run_chain(tmp_path, 200)
    assert large_rows / 200 <= small_rows / 20 * 1.1, (small_rows, large_rows)
    # pages written a node: flat (the whole snapshot and the text rewritten at each write made them grow)
    assert large_pages / 200 <= small_pages / 20 * 1.3, (small_pages, large_pages)
    # what a user sees of the record is whole: the text, the states, the snapshot a resume reads
    run = large.get_run(large_id)
    assert run.runbook_text == chain(200)
    assert {s.state for s in large.node_states(large_id)} == {"OK"}
    snapshot = large.load_snapshot(large_id)
    assert len(snapshot["nodes"]) == 200 and snapshot["run_state"] == "OK"
    assert run.snapshot == snapshot
    # the runs row holds neither the text nor the nodes' snapshot; a node's entry is its own row
    conn = sqlite3.connect(large.path)
    columns = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    assert "runbook_text" not in columns
    (row_snapshot,) = conn.execute("SELECT snapshot FROM runs WHERE id = ?", (large_id,)).fetchone()
    assert json.loads(row_snapshot)["nodes"] == {}
    assert (
        conn.execute("SELECT COUNT(*) FROM node_snapshots WHERE run_id = ?", (large_id,)).fetchone()[0] == 200
    )
    # the listing does not read snapshots
    assert large.list_runs(limit=1)[0].snapshot is None
    small.close()
    large.close()


def test_an_index_of_schema_4_moves_text_and_snapshot_out_of_the_run_row(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    for migration in load_migrations()[:4]:
        for statement in split_statements(migration.sql):
            conn.execute(statement)
    conn.execute("PRAGMA user_version = 4")
    old_snapshot = {
        "run_state": "ABORTED",
        "run_reason": "x",
        "failing": None,
        "nodes": {"a": {"state": "OK"}},
    }
    conn.execute(
        "INSERT INTO runs (id, workflow, number, title, status, started_at, trigger, mode, runbook_text,"
        " runbook_sha256, snapshot) VALUES (1, 'w', 1, 'w', 'ABORTED', '2026-01-01T00:00:00+00:00',"
        " 'terminal', 'terminal', 'the text', ?, ?)",
        ("0" * 64, json.dumps(old_snapshot)),
    )
    conn.commit()
    conn.close()
    store = Store.open(db)
    run = store.get_run(1)
    assert run.runbook_text == "the text"
    assert store.load_snapshot(1) == old_snapshot == run.snapshot
    dump = store.dump_run(1)
    assert dump["run"]["runbook_text"] == "the text" and dump["run"]["snapshot"] == old_snapshot
    copy = Store.open(tmp_path / "copy.db")
    copy.load_run(dump)
    assert copy.get_run(1).runbook_text == "the text" and copy.load_snapshot(1) == old_snapshot
    store.close()
    copy.close()


def test_a_node_costs_two_transactions_and_a_bounded_number_of_statements(tmp_path):
    """Issue 18.2: an attempt's start (the transition, the attempt row, what it runs) is one transaction and
    its end (the attempt row, the transition) another; inside each the run row is read once. Counted on the
    session's connection with SQLite's statement trace, over the middle nodes of a chain. The record stays
    whole: every node OK with its attempt and what it ran, the counts summary, an intact event chain."""
    store = Store.open(tmp_path / "runs.db")
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    session = RunSession.start(
        parse_runbook(chain(30)), {}, store, RunOptions(headless=True, actor="t"), executor=Answering()
    )
    assert session.drive(lambda *_: None) is RunState.OK
    session.close()
    store.conn.set_trace_callback(None)
    # the statements between the start of node n0010 and the start of node n0020: ten whole nodes
    first = next(i for i, s in enumerate(statements) if "'n0010'" in s and "UPDATE node_states" in s)
    last = next(i for i, s in enumerate(statements) if "'n0020'" in s and "UPDATE node_states" in s)
    begins = [i for i, s in enumerate(statements[:first]) if s == "BEGIN IMMEDIATE"]
    stop = max(i for i, s in enumerate(statements[:last]) if s == "BEGIN IMMEDIATE")
    ten_nodes = statements[begins[-1] : stop]
    assert sum(s == "BEGIN IMMEDIATE" for s in ten_nodes) == 20, ten_nodes[:40]
    assert sum(s == "COMMIT" for s in ten_nodes) == 20
    assert sum(s.startswith("SELECT") and "FROM runs " in s for s in ten_nodes) == 20  # once a transaction
    # the run row written once a transaction (the attempt's row reading the run's revision no longer
    # writes it a second time in the attempt's start)
    assert sum(s.startswith("UPDATE runs ") for s in ten_nodes) == 20, [
        s for s in ten_nodes if s.startswith("UPDATE runs ")
    ][:6]
    # 20 a node; 44 before issue 18.2's cuts, 27 before the run row was written once a transaction
    assert len(ten_nodes) <= 10 * 21, len(ten_nodes)
    run_id = session.run_id
    assert {s.state for s in store.node_states(run_id)} == {"OK"}
    assert store.get_run(run_id).counts == {"OK": 30}
    assert [a.status for a in store.attempts(run_id)] == ["OK"] * 30
    assert {a.revision for a in store.attempts(run_id)} == {1}
    ran = [e.node_id for e in store.events(run_id) if e.kind == "attempt_ran"]
    assert ran == [f"n{i:04d}" for i in range(30)]
    assert store.verify_events(run_id) == []
    store.close()


def _traced_run(tmp_path, n: int) -> tuple[list[int], list[str]]:
    """(rows changed by each committed transaction after the run was created, the statements that wrote
    the runbook text) of a whole run of an n-node chain, from the store connection's statement trace."""
    store = Store.open(tmp_path / f"traced{n}.db")
    conn = store.conn
    per_commit: list[int] = []
    text_writes: list[str] = []
    created = False
    opened = conn.total_changes

    def trace(sql: str) -> None:
        nonlocal opened
        word = sql.lstrip().split(None, 1)[0].upper()
        if word == "BEGIN":
            opened = conn.total_changes
        elif word == "COMMIT" and created:
            per_commit.append(conn.total_changes - opened)
        elif "run_texts" in sql and word in ("INSERT", "UPDATE", "REPLACE"):
            text_writes.append(sql)

    conn.set_trace_callback(trace)
    session = RunSession.start(
        parse_runbook(chain(n)), {}, store, RunOptions(headless=True, actor="t"), executor=Answering()
    )
    created = True
    assert session.drive(lambda *_: None) is RunState.OK
    session.close()
    conn.set_trace_callback(None)
    assert store.get_run(session.run_id).runbook_text == chain(n)
    store.close()
    return per_commit, text_writes


def test_each_flush_writes_only_what_changed_and_the_text_is_written_once(tmp_path):
    small, small_texts = _traced_run(tmp_path, 20)
    large, large_texts = _traced_run(tmp_path, 200)
    # every transaction once the run exists (engine flushes, attempt starts and ends) writes the rows of
    # what changed: the largest is the same at 20 and at 200 nodes (a whole snapshot would be 2 rows a node);
    # two transactions a node: an attempt's start and its end (issue 18.2)
    assert len(large) >= 2 * 200 and max(large) == max(small) < 20, (max(small), max(large))
    # the runbook text: one INSERT when the run is created, never again
    assert len(small_texts) == 1 and len(large_texts) == 1, large_texts
    assert large_texts[0].lstrip().upper().startswith("INSERT INTO RUN_TEXTS")


def _logged_run_on_postgres(url: str, n: int) -> tuple[list[int], int]:
    """(rows changed by each transaction after the run was created, rows written into run_texts) of a whole
    run of an n-node chain into a PostgreSQL index, counted by a row trigger on every table of the schema."""
    store = Store.open(url)
    conn = store.conn  # autocommit
    conn.execute("CREATE TABLE write_log (txid bigint, tbl text)")
    conn.execute(
        "CREATE FUNCTION log_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " INSERT INTO write_log VALUES (txid_current(), TG_TABLE_NAME); RETURN NULL; END $$"
    )
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            " AND table_type = 'BASE TABLE' AND table_name <> 'write_log'"
        ).fetchall()
    ]
    assert {"runs", "run_texts", "node_snapshots", "node_states", "events"} <= set(tables)
    for table in tables:
        conn.execute(
            f"CREATE TRIGGER log_{table} AFTER INSERT OR UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION log_write()"
        )
    session = RunSession.start(
        parse_runbook(chain(n)), {}, store, RunOptions(headless=True, actor="t"), executor=Answering()
    )
    (created,) = conn.execute("SELECT COALESCE(MAX(txid), 0) FROM write_log").fetchone()
    assert session.drive(lambda *_: None) is RunState.OK
    session.close()
    per_tx = [
        count
        for (count,) in conn.execute(
            "SELECT COUNT(*) FROM write_log WHERE txid > %s GROUP BY txid", (created,)
        ).fetchall()
    ]
    (texts,) = conn.execute("SELECT COUNT(*) FROM write_log WHERE tbl = 'run_texts'").fetchone()
    assert store.get_run(session.run_id).runbook_text == chain(n)
    store.close()
    return per_tx, texts


def test_on_postgresql_each_flush_writes_only_what_changed_and_the_text_is_written_once(pg):
    urls = [pg.create_database(), pg.create_database()]
    try:
        small, small_texts = _logged_run_on_postgres(urls[0], 20)
        large, large_texts = _logged_run_on_postgres(urls[1], 200)
    finally:
        for url in urls:
            pg.drop_database(url)
    assert len(large) >= 2 * 200 and max(large) == max(small) < 20, (max(small), max(large))
    assert small_texts == large_texts == 1
