"""An index holding 100,000 runs: insert rate, then the 95th percentile of the queries behind `runs list`
and `show`.

Inserting: a first slice of runs goes through the Store API (`create_run`, per node `start_attempt` /
`finish_attempt` / `set_node_state`, `set_run_status`: one committed transaction each, as a real run writes
them) to measure its rate; the rest goes in through a bulk path, plain `executemany` INSERTs into the same
tables of the same schema (opened and migrated by `Store.open`), in one transaction per 5,000 runs, with the
same shape of rows (5 nodes, 5 attempts, 3 events a run; events in the bulk path are not hash-chained, which
no query timed here reads).

Queries (what `runs list` and `show` call): `list_runs(limit=50)` with no filter, a workflow filter, a status
filter and both; `get_run` + `node_states` + `attempts` of a random run.

Then `info` (issue 18.4): every run is moved into one workflow, and what `playbook-nb info --workflow W`
computes is timed, best of 3: `stats(W)` (SQL aggregates: counts by status, runs per workflow, mean run
duration, per-node attempts and mean durations), the latest run, and the KPI attainment of W (success rate,
p50/p95 duration, `Store.kpi_figures`: SQL aggregates too) over its 100,000 runs. Also `stats()` of the whole
index alone. The full run (not `--quick`) then loads the same rows by COPY into a private PostgreSQL server
(tests/pg_server.py) and times the same `info` there.
"""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_common import Row, ms, percentile

WORKFLOWS = [f"workflow {i:02d}" for i in range(20)]
NODES = ["check", "drain", "deploy", "verify", "notify"]
STATUSES = ["OK"] * 14 + ["NOK", "ABORTED"]  # mostly OK, some failures, few RUNNING added separately
RUNBOOK_TEXT = "[runbook]\ntitle = 'x'\n" + "\n".join(
    f"[{n}]\ntype = 'Command'\ncommand_name = 'true'\n" for n in NODES
)


def _api_runs(store, count: int) -> float:
    """Record `count` small runs through the Store API; returns the seconds it took."""
    start = time.perf_counter()
    for i in range(count):
        run = store.create_run(
            workflow=WORKFLOWS[i % len(WORKFLOWS)],
            title="api run",
            runbook_text=RUNBOOK_TEXT,
            runbook_sha256="0" * 64,
            runbook_version="1",
            variables={"ENV": "prod"},
            params={},
            trigger="terminal",
            actor="bench",
            host="bench",
            mode="headless",
            node_ids=NODES,
        )
        for node in NODES:
            store.start_attempt(run.id, node, 1)
            store.finish_attempt(run.id, node, 1, status="OK", exit_code=0, stdout="ok\n", stderr="")
            store.set_node_state(run.id, node, "OK", attempts=1, failed=False)
        store.set_run_status(run.id, "OK")
    return time.perf_counter() - start


def _time_info(store, total: int | None = None) -> float:
    """What `info --workflow W --runbook R` computes, with every run of the index in workflow W; best of 3.
    `total`: the runs already moved into W (the PostgreSQL index below); else they are moved here."""
    from playbook_nb.domain.kpis import kpi_attainment
    from playbook_nb.domain.model import Kpis

    if total is None:
        conn = store.conn
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE runs SET workflow = 'one workflow', number = id")
        conn.execute("COMMIT")
        total = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    kpis = Kpis(max_duration=60.0, target_success_rate=0.9)

    def info() -> None:  # as `info --workflow W` does: stats(W), the latest run, then KPI attainment
        store.stats("one workflow")
        store.latest_run("one workflow")
        result = kpi_attainment(store, "one workflow", kpis)
        assert result["runs"] == total, result["runs"]

    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        info()
        times.append(time.perf_counter() - t0)
    return min(times)


class _Rows:
    """Stands in for a connection: keeps what `_bulk_runs` would insert, table by table, for a COPY."""

    def __init__(self) -> None:
        self.tables: dict[str, tuple[str, list[tuple]]] = {}

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        table, columns = sql.split("INSERT INTO ", 1)[1].split(" (", 1)
        self.tables.setdefault(table, (columns.split(")", 1)[0], []))[1].extend(rows)


def info_postgres(total: int) -> tuple[float, str] | None:
    """`info --workflow W` over `total` runs of one workflow in a PostgreSQL index (a private server,
    tests/pg_server.py; the same rows as the SQLite index, loaded by COPY); best of 3. None without
    PostgreSQL."""
    import os
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from pg_server import TEST_URL_ENV, pg_bindir, pg_server

    if not os.environ.get(TEST_URL_ENV) and pg_bindir() is None:
        return None
    from playbook_nb.adapters.store import Store

    rows = _Rows()
    _bulk_runs(rows, 1, total, {w: 0 for w in WORKFLOWS})
    with pg_server() as server:
        url = server.create_database("bench")
        store = Store.open(url)
        try:
            with store.conn.cursor() as cur:
                for table, (columns, values) in rows.tables.items():
                    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in values:
                            copy.write_row(row)
                cur.execute("UPDATE runs SET workflow = 'one workflow', number = id")
            store.conn.commit()
            with store.conn.cursor() as cur:
                cur.execute("ANALYZE")
                cur.execute("SHOW server_version")
                version = cur.fetchone()[0]
            store.conn.commit()
            took = _time_info(store, total)
        finally:
            store.close()
            server.drop_database(url)
    return took, version


def _bulk_runs(conn, first_id: int, count: int, numbers: dict[str, int]) -> None:
    base = datetime(2024, 1, 1, tzinfo=UTC)
    rng = random.Random(first_id)
    runs, states, attempts, events = [], [], [], []
    for run_id in range(first_id, first_id + count):
        workflow = WORKFLOWS[run_id % len(WORKFLOWS)]
        numbers[workflow] += 1
        status = rng.choice(STATUSES)
        started = base + timedelta(seconds=run_id * 30)
        s = started.isoformat(timespec="microseconds")
        e = (started + timedelta(seconds=20)).isoformat(timespec="microseconds")
        runs.append(
            (run_id, workflow, numbers[workflow], workflow, status, s, e, "terminal", "bench", "bench",
             "headless", '{"ENV":"prod"}', "{}", "0" * 64, "1",
             json.dumps({status if status != "ABORTED" else "PENDING": len(NODES)}), 3, "h")
        )  # fmt: skip
        for pos, node in enumerate(NODES):
            state = "OK" if status == "OK" else ("NOK" if pos == 2 and status == "NOK" else "OK")
            states.append((run_id, node, pos, state, 1, e))
            attempts.append((run_id, node, 1, state, s, e, 4.0, 0, "ok\n", "", None))
        for seq, kind in enumerate(("run_started", "node_state", "run_state"), start=1):
            events.append((run_id, seq, s, kind, "{}", "p", "h"))
    conn.executemany(
        "INSERT INTO runs (id, workflow, number, title, status, started_at, ended_at, trigger, actor, host,"
        " mode, variables, params, runbook_sha256, runbook_version, counts, event_count,"
        " event_head) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        runs,
    )
    conn.executemany(
        "INSERT INTO run_texts (run_id, runbook_text) VALUES (?, ?)", [(r[0], RUNBOOK_TEXT) for r in runs]
    )
    conn.executemany(
        "INSERT INTO node_states (run_id, node_id, position, state, attempts, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        states,
    )
    conn.executemany(
        "INSERT INTO attempts (run_id, node_id, attempt, status, started_at, ended_at, duration, exit_code,"
        " stdout, stderr, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        attempts,
    )
    conn.executemany(
        "INSERT INTO events (run_id, seq, at, kind, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        events,
    )


def run(quick: bool, workdir: Path) -> list[Row]:
    from playbook_nb.adapters.store import Store

    total = 20_000 if quick else 100_000
    api_count = 200 if quick else 1000
    db = workdir / "store" / "runs.db"
    store = Store.open(db)
    api_s = _api_runs(store, api_count)

    conn = store.conn
    numbers = {w: 0 for w in WORKFLOWS}
    for w, n in conn.execute("SELECT workflow, MAX(number) FROM runs GROUP BY workflow"):
        numbers[w] = n
    first = conn.execute("SELECT MAX(id) FROM runs").fetchone()[0] + 1
    bulk = total - api_count
    start = time.perf_counter()
    chunk = 5000
    for offset in range(0, bulk, chunk):
        conn.execute("BEGIN IMMEDIATE")
        _bulk_runs(conn, first + offset, min(chunk, bulk - offset), numbers)
        conn.execute("COMMIT")
    bulk_s = time.perf_counter() - start
    conn.execute("ANALYZE")
    (count,) = conn.execute("SELECT COUNT(*) FROM runs").fetchone()
    assert count == total, count

    rng = random.Random(7)
    samples = 100 if quick else 300
    ids = [rng.randint(1, total) for _ in range(samples)]
    queries = {
        "list_runs(limit=50)": lambda i: store.list_runs(limit=50),
        "list_runs(workflow=..., limit=50)": lambda i: store.list_runs(workflow=WORKFLOWS[i % 20], limit=50),
        "list_runs(status='NOK', limit=50)": lambda i: store.list_runs(status="NOK", limit=50),
        "list_runs(workflow=..., status='ABORTED')": lambda i: store.list_runs(
            workflow=WORKFLOWS[i % 20], status="ABORTED", limit=50
        ),
        "show: get_run + node_states + attempts": lambda i: (
            store.get_run(ids[i]),
            store.node_states(ids[i]),
            store.attempts(ids[i]),
        ),
    }
    p95: dict[str, float] = {}
    for name, query in queries.items():
        times = []
        for i in range(samples):
            t0 = time.perf_counter()
            query(i)
            times.append(time.perf_counter() - t0)
        p95[name] = percentile(times, 95)
    info_s = _time_info(store)
    store.close()
    size_mb = db.stat().st_size / 1e6
    rows = [
        Row(
            f"insert runs through the Store API ({api_count} runs, 5 nodes each)",
            f"{api_count / api_s:,.0f} runs/s",
            f"bulk executemany into the same schema: {bulk / bulk_s:,.0f} runs/s "
            f"({bulk:,} runs in {bulk_s:.1f} s)",
            "",
            None,
            f"API: {2 + 3 * len(NODES) + 1} committed transactions a run; index {size_mb:.0f} MB at {total:,} runs",
        )
    ]
    rows.append(
        Row(
            f"`info --workflow W` with KPI attainment, one workflow of {total:,} runs",
            f"{info_s:.3f} s",
            "stats(W), latest_run(W), kpi_attainment(W): SQL aggregates"
            " (KPIs: counts, p50/p95 by ORDER BY LIMIT 1 OFFSET)",
            "< 1 s",
            info_s < 1.0,
            "best of 3",
        )
    )
    pg = None if quick else info_postgres(total)  # about 25 s more on a quiet machine: the full run only
    if pg is None:
        rows.append(
            Row(
                f"`info --workflow W` with KPI attainment, one workflow of {total:,} runs, PostgreSQL",
                "not measured: --quick" if quick else "not measured: no PostgreSQL",
                "PostgreSQL binaries (initdb, postgres) or PLAYBOOK_TEST_PG_URL",
                "< 1 s",
                None,
            )
        )
    else:
        rows.append(
            Row(
                f"`info --workflow W` with KPI attainment, one workflow of {total:,} runs, PostgreSQL",
                f"{pg[0]:.3f} s",
                "the same calls and rows (COPY) on a private PostgreSQL server (tests/pg_server.py)",
                "< 1 s",
                pg[0] < 1.0,
                f"best of 3; PostgreSQL {pg[1].split()[0]}; wall time, the server on the same cores",
            )
        )
    for name, value in p95.items():
        rows.append(
            Row(
                f"p95 of {name} over {total:,} runs", ms(value), f"{samples} samples", "< 50 ms", value < 0.05
            )
        )
    return rows
